//! Personal notifications: list, create, mark read.
//!
//! Creating goes through the entity (`ActiveModel::insert`), whose hook pushes it; marking read
//! tells the hub so every socket of the user updates its badge.
use actix::Addr;
use entity::{notification, user};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::{
    error::ApiError,
    hub::{NotificationHub, messages::NotificationsRead},
};

/// A user's notifications, newest first, with the total and unread counts.
pub struct Listing {
    pub count: u64,
    pub unread_count: u64,
    pub notifications: Vec<notification::Model>,
}

/// The newest `limit` notifications of `user_id` (after `offset`), with counts over all of them.
pub async fn list(db: &DatabaseConnection, user_id: i32, limit: u64, offset: u64) -> Result<Listing, ApiError> {
    let mine = notification::Entity::find().filter(notification::Column::UserId.eq(user_id));
    // Both counts in one pass over the user's index range.
    let (count, unread): (i64, Option<i64>) = mine
        .clone()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "count")
        .column_as(Expr::cust("SUM(CASE WHEN is_read THEN 0 ELSE 1 END)"), "unread")
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or((0, None));
    let (count, unread_count) = (count.max(0) as u64, unread.unwrap_or(0).max(0) as u64);
    let notifications = mine
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok(Listing {
        count,
        unread_count,
        notifications,
    })
}

pub async fn unread_count(db: &DatabaseConnection, user_id: i32) -> Result<u64, ApiError> {
    Ok(notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::IsRead.eq(false))
        .count(db)
        .await?)
}

/// A validated request to notify one user.
pub struct NewNotification {
    pub user_id: i64,
    pub title: String,
    pub message: String,
    pub notification_type: String,
    pub link: String,
}

/// Saves a notification for an existing user; the entity hook pushes it.
pub async fn create(db: &DatabaseConnection, new: NewNotification) -> Result<notification::Model, ApiError> {
    let user_id =
        i32::try_from(new.user_id).map_err(|_| ApiError::BadRequest("user_id does not name a user".into()))?;
    if user::Entity::find_by_id(user_id).one(db).await?.is_none() {
        return Err(ApiError::BadRequest("user_id does not name a user".into()));
    }
    let model = notification::ActiveModel {
        user_id: Set(user_id),
        title: Set(new.title),
        message: Set(new.message),
        notification_type: Set(new.notification_type),
        link: Set(new.link),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(model)
}

/// Marks one of `user_id`'s notifications read (again fine); 404 for anyone else's or unknown.
pub async fn mark_read(
    db: &DatabaseConnection,
    hub: &Addr<NotificationHub>,
    user_id: i32,
    id: i64,
) -> Result<(), ApiError> {
    let id = i32::try_from(id).map_err(|_| ApiError::NotFound)?;
    // Matching on the owner in the UPDATE itself: another user's id changes nothing.
    let updated = notification::Entity::update_many()
        .col_expr(notification::Column::IsRead, true.into())
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    let unread_count = unread_count(db, user_id).await?;
    hub.do_send(NotificationsRead {
        user_id,
        ids: vec![id],
        unread_count,
    });
    Ok(())
}

/// Marks all of `user_id`'s notifications read; answers how many were unread.
pub async fn mark_all_read(
    db: &DatabaseConnection,
    hub: &Addr<NotificationHub>,
    user_id: i32,
) -> Result<u64, ApiError> {
    let ids: Vec<i32> = notification::Entity::find()
        .select_only()
        .column(notification::Column::Id)
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::IsRead.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let updated = notification::Entity::update_many()
        .col_expr(notification::Column::IsRead, true.into())
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::Id.is_in(ids.clone()))
        .filter(notification::Column::IsRead.eq(false))
        .exec(db)
        .await?;
    let unread_count = unread_count(db, user_id).await?;
    hub.do_send(NotificationsRead {
        user_id,
        ids,
        unread_count,
    });
    Ok(updated.rows_affected)
}
