//! Site-wide announcements: the public list; admins create, edit and delete them.
//!
//! Every change is saved through the entity, whose hooks push it (or its withdrawal) to every
//! socket; the expiry timer (`announcement_expiry`) withdraws them when `expires_at` passes.
use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity::global_notification::{self, Level};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};

use crate::{cache_versions::CacheVersions, error::ApiError, payloads::GlobalView};

/// How long the cached public list may lag a change made by another node or process.
/// Changes saved through this server refresh it at once (see `cache_versions`).
const LIVE_LIST_TTL: Duration = Duration::from_secs(1);

/// The public list, serialized once and shared by every request while it is fresh.
pub struct LiveListCache {
    versions: Arc<CacheVersions>,
    cached: RwLock<Option<CachedList>>,
}

struct CachedList {
    body: Bytes,
    changes: u64,
    built_at: Instant,
    /// The earliest expiry among the listed announcements: the list changes then.
    valid_until: Option<DateTime<Utc>>,
}

impl LiveListCache {
    /// A cache that is fresh while `versions` says the announcements are unchanged.
    pub fn new(versions: Arc<CacheVersions>) -> Self {
        Self {
            versions,
            cached: RwLock::new(None),
        }
    }

    /// The body of `GET /api/global-notifications/`.
    pub async fn body(&self, db: &DatabaseConnection) -> Result<Bytes, ApiError> {
        let changes = self.versions.announcements();
        if let Some(body) = self.fresh(changes) {
            return Ok(body);
        }
        let live = live(db).await?;
        let items: Vec<GlobalView> = live.iter().map(GlobalView::from).collect();
        let body = Bytes::from(crate::http_conventions::json_line(&GlobalList {
            count: items.len(),
            notifications: items,
        }));
        let valid_until = live.iter().filter_map(|g| g.expires_at).min();
        // `changes` was read before the query: a save racing it leaves the entry stale-marked.
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(CachedList {
            body: body.clone(),
            changes,
            built_at: Instant::now(),
            valid_until,
        });
        Ok(body)
    }

    fn fresh(&self, changes: u64) -> Option<Bytes> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        let entry = cached.as_ref()?;
        let fresh = entry.changes == changes
            && entry.built_at.elapsed() < LIVE_LIST_TTL
            && entry.valid_until.is_none_or(|at| Utc::now() < at);
        fresh.then(|| entry.body.clone())
    }
}

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
    pub level: Level,
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

/// What an edit changes; `None` leaves a field as it is. `expires_at: Some(None)` clears it.
#[derive(Default)]
pub struct GlobalChanges {
    pub title: Option<String>,
    pub message: Option<String>,
    pub level: Option<Level>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub is_active: Option<bool>,
    pub show_on_site: Option<bool>,
}

impl GlobalChanges {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.message.is_none()
            && self.level.is_none()
            && self.expires_at.is_none()
            && self.is_active.is_none()
            && self.show_on_site.is_none()
    }
}

fn id_of(id: i64) -> Result<i32, ApiError> {
    i32::try_from(id).map_err(|_| ApiError::NotFound)
}

/// Edits an announcement; the entity hook pushes it again if it is live after the edit, or
/// its withdrawal if not.
pub async fn update(
    db: &DatabaseConnection,
    id: i64,
    changes: GlobalChanges,
) -> Result<global_notification::Model, ApiError> {
    let existing = global_notification::Entity::find_by_id(id_of(id)?)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut active: global_notification::ActiveModel = existing.into();
    if let Some(title) = changes.title {
        active.title = Set(title);
    }
    if let Some(message) = changes.message {
        active.message = Set(message);
    }
    if let Some(level) = changes.level {
        active.level = Set(level);
    }
    if let Some(expires_at) = changes.expires_at {
        active.expires_at = Set(expires_at);
    }
    if let Some(flag) = changes.is_active {
        active.is_active = Set(flag);
    }
    if let Some(flag) = changes.show_on_site {
        active.show_on_site = Set(flag);
    }
    Ok(active.update(db).await?)
}

/// `{"count": N, "notifications": [...]}`, the announcements lists' shape.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct GlobalList<T> {
    pub count: usize,
    pub notifications: Vec<T>,
}

/// Deletes an announcement; the entity hook withdraws it from every socket.
pub async fn delete(db: &DatabaseConnection, id: i64) -> Result<(), ApiError> {
    let existing = global_notification::Entity::find_by_id(id_of(id)?)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)?;
    // `ActiveModel::delete` runs the `after_delete` hook; `delete_by_id` would not.
    let deleted = global_notification::ActiveModel::from(existing).delete(db).await?;
    if deleted.rows_affected == 0 {
        // Deleted by someone else meanwhile.
        return Err(ApiError::NotFound);
    }
    Ok(())
}
