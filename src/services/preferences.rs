//! Each user's notification preferences: which types are muted (saved and listed, never pushed).
use std::collections::HashMap;

use actix::Addr;
use entity::{notification::NotificationType, notification_preference};
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};

use crate::{
    error::ApiError,
    hub::{NotificationHub, messages::SetMutedTypes},
    type_set::TypeSet,
};

/// The type no one can mute: the operator's own messages.
pub const UNMUTABLE_TYPE: NotificationType = NotificationType::System;

/// `user_id`'s muted types (none if never set).
pub async fn muted(db: &DatabaseConnection, user_id: i32) -> Result<TypeSet, ApiError> {
    let stored = notification_preference::Entity::find_by_id(user_id).one(db).await?;
    Ok(stored.map_or_else(TypeSet::default, |p| TypeSet::from_stored(&p.muted_types)))
}

/// Checks a requested set: known types only, and never `system`.
pub fn parse_muted<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<TypeSet, ApiError> {
    let muted = TypeSet::parse("muted_types", names)?;
    if muted.contains(UNMUTABLE_TYPE) {
        return Err(ApiError::BadRequest(format!(
            "muted_types: {:?} notifications cannot be muted",
            UNMUTABLE_TYPE.to_value()
        )));
    }
    Ok(muted)
}

/// Stores `user_id`'s muted types, then tells the hub, which stops (or resumes) the pushes on
/// every node.
pub async fn set_muted(
    db: &DatabaseConnection,
    hub: &Addr<NotificationHub>,
    user_id: i32,
    muted: TypeSet,
) -> Result<(), ApiError> {
    let row = notification_preference::ActiveModel {
        user_id: Set(user_id),
        muted_types: Set(muted.to_stored()),
    };
    notification_preference::Entity::insert(row)
        .on_conflict(
            OnConflict::column(notification_preference::Column::UserId)
                .update_column(notification_preference::Column::MutedTypes)
                .to_owned(),
        )
        .exec(db)
        .await?;
    hub.do_send(SetMutedTypes { user_id, muted });
    Ok(())
}

/// Every user who mutes something, with their muted types: what the hub filters pushes by.
pub async fn all_muted(db: &DatabaseConnection) -> Result<HashMap<i32, TypeSet>, DbErr> {
    let rows = notification_preference::Entity::find()
        .filter(notification_preference::Column::MutedTypes.ne(""))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|p| (p.user_id, TypeSet::from_stored(&p.muted_types)))
        .filter(|(_, muted)| !muted.is_empty())
        .collect())
}
