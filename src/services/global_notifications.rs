//! Site-wide announcements: the public list, creation and deactivation by admins.
use chrono::{DateTime, Utc};
use entity::global_notification;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};

use crate::error::ApiError;

/// Active, shown and unexpired announcements, newest first.
pub async fn live(db: &DatabaseConnection) -> Result<Vec<global_notification::Model>, ApiError> {
    let now = Utc::now();
    Ok(global_notification::Entity::find()
        .filter(global_notification::Column::IsActive.eq(true))
        .filter(global_notification::Column::ShowOnSite.eq(true))
        .filter(
            Condition::any()
                .add(global_notification::Column::ExpiresAt.is_null())
                .add(global_notification::Column::ExpiresAt.gt(now)),
        )
        .order_by_desc(global_notification::Column::CreatedAt)
        .order_by_desc(global_notification::Column::Id)
        .all(db)
        .await?)
}

/// Every announcement, newest first (admins).
pub async fn all(db: &DatabaseConnection) -> Result<Vec<global_notification::Model>, ApiError> {
    Ok(global_notification::Entity::find()
        .order_by_desc(global_notification::Column::CreatedAt)
        .order_by_desc(global_notification::Column::Id)
        .all(db)
        .await?)
}

/// A validated announcement.
pub struct NewGlobal {
    pub title: String,
    pub message: String,
    pub level: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub show_on_site: bool,
}

/// Saves an announcement; the entity hook pushes it when it is live.
pub async fn create(db: &DatabaseConnection, new: NewGlobal) -> Result<global_notification::Model, ApiError> {
    Ok(global_notification::ActiveModel {
        title: Set(new.title),
        message: Set(new.message),
        level: Set(new.level),
        is_active: Set(new.is_active),
        show_on_site: Set(new.show_on_site),
        expires_at: Set(new.expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Changes the flags of an announcement (deactivating it hides it from the list).
pub async fn set_flags(
    db: &DatabaseConnection,
    id: i64,
    is_active: Option<bool>,
    show_on_site: Option<bool>,
) -> Result<global_notification::Model, ApiError> {
    let id = i32::try_from(id).map_err(|_| ApiError::NotFound)?;
    let existing = global_notification::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut active: global_notification::ActiveModel = existing.into();
    if let Some(flag) = is_active {
        active.is_active = Set(flag);
    }
    if let Some(flag) = show_on_site {
        active.show_on_site = Set(flag);
    }
    Ok(active.update(db).await?)
}
