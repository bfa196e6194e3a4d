//! Personal notifications: list, create, mark read.
//!
//! Creating is `group_commit`'s: the entity pushes what it saves. Marking read tells the hub so
//! every socket of the user updates its badge.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix::Addr;
use bytes::Bytes;
use entity::notification;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::{
    error::ApiError,
    hub::{NotificationHub, messages::NotificationsRead},
    payloads::NotificationView,
};

/// How long a cached page may lag a write made outside this process.
const LIST_TTL: Duration = Duration::from_secs(1);
/// Bytes of cached pages kept at most; past it the cache starts over. Pages are bodies of at
/// most `MAX_PAGE` items, so a client walking offsets cannot grow memory past this.
const LIST_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// A page larger than this is served but not kept (a few users' long pages would crowd out
/// everyone's first page).
const LIST_CACHE_MAX_PAGE_BYTES: usize = 256 * 1024;

/// Serialized list pages per (user, limit, offset), reused while that user's notifications have
/// not changed (`entity::changes`). Only for a single node: with several nodes another node's
/// write would go unseen, so there the cache is off and every request reads the database.
pub struct ListCache {
    enabled: bool,
    pages: Mutex<CachedPages>,
}

#[derive(Default)]
struct CachedPages {
    by_key: HashMap<(i32, u64, u64), CachedPage>,
    bytes: usize,
}

impl CachedPages {
    /// Keeps `page` unless it is too large; starts over when the byte budget would be exceeded.
    fn insert(&mut self, key: (i32, u64, u64), page: CachedPage) {
        if page.body.len() > LIST_CACHE_MAX_PAGE_BYTES {
            return;
        }
        if self.bytes + page.body.len() > LIST_CACHE_MAX_BYTES {
            *self = CachedPages::default();
        }
        self.bytes += page.body.len();
        if let Some(replaced) = self.by_key.insert(key, page) {
            self.bytes -= replaced.body.len();
        }
    }
}

struct CachedPage {
    body: Bytes,
    version: u64,
    built_at: Instant,
}

impl ListCache {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            pages: Mutex::new(CachedPages::default()),
        }
    }

    /// The body of `GET /api/notifications/` for this user and page.
    pub async fn body(
        &self,
        db: &DatabaseConnection,
        user_id: i32,
        limit: u64,
        offset: u64,
    ) -> Result<Bytes, ApiError> {
        let key = (user_id, limit, offset);
        // Read before the query: a write racing it leaves the entry with an outdated version.
        let version = entity::changes::notifications_version(user_id);
        if self.enabled
            && let Some(page) = self.pages.lock().unwrap_or_else(|e| e.into_inner()).by_key.get(&key)
            && page.version == version
            && page.built_at.elapsed() < LIST_TTL
        {
            return Ok(page.body.clone());
        }
        let listing = list(db, user_id, limit, offset).await?;
        let items: Vec<NotificationView> = listing.notifications.iter().map(NotificationView::from).collect();
        let body = Bytes::from(crate::http_conventions::json_line(&NotificationPage {
            count: listing.count,
            unread_count: listing.unread_count,
            notifications: items,
        }));
        if self.enabled {
            let page = CachedPage {
                body: body.clone(),
                version,
                built_at: Instant::now(),
            };
            self.pages.lock().unwrap_or_else(|e| e.into_inner()).insert(key, page);
        }
        Ok(body)
    }
}

/// A user's notifications, newest first, with the total and unread counts.
pub struct Listing {
    pub count: u64,
    pub unread_count: u64,
    pub notifications: Vec<notification::Model>,
}

/// `GET /api/notifications/`'s shape: the totals, then the page.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct NotificationPage<'a> {
    /// All the user's notifications.
    count: u64,
    /// Those not read yet.
    unread_count: u64,
    notifications: Vec<crate::payloads::NotificationView<'a>>,
}

/// A row of the list with the user's totals alongside (window functions: one round trip).
#[derive(sea_orm::FromQueryResult)]
struct ListedRow {
    #[sea_orm(nested)]
    notification: notification::Model,
    total: i64,
    unread: i64,
}

/// The newest `limit` notifications of `user_id` (after `offset`), with counts over all of them.
pub async fn list(db: &DatabaseConnection, user_id: i32, limit: u64, offset: u64) -> Result<Listing, ApiError> {
    let mine = notification::Entity::find().filter(notification::Column::UserId.eq(user_id));
    // Each database round trip is a thread hand-off in sqlx's SQLite driver: the page carries
    // the counts with it, and only an empty page needs a second query.
    let rows: Vec<ListedRow> = mine
        .clone()
        .column_as(Expr::cust("COUNT(*) OVER ()"), "total")
        .column_as(Expr::cust("SUM(CASE WHEN is_read THEN 0 ELSE 1 END) OVER ()"), "unread")
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(limit)
        .offset(offset)
        .into_model()
        .all(db)
        .await?;
    let (count, unread_count) = match rows.first() {
        Some(first) => (first.total, first.unread),
        None => mine
            .select_only()
            .column_as(Expr::cust("COUNT(*)"), "total")
            .column_as(
                Expr::cust("COALESCE(SUM(CASE WHEN is_read THEN 0 ELSE 1 END), 0)"),
                "unread",
            )
            .into_tuple()
            .one(db)
            .await?
            .unwrap_or((0, 0)),
    };
    Ok(Listing {
        count: count.max(0) as u64,
        unread_count: unread_count.max(0) as u64,
        notifications: rows.into_iter().map(|r| r.notification).collect(),
    })
}

pub async fn unread_count(db: &DatabaseConnection, user_id: i32) -> Result<u64, ApiError> {
    Ok(notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::IsRead.eq(false))
        .count(db)
        .await?)
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
    entity::changes::touch_notifications(user_id);
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
    entity::changes::touch_notifications(user_id);
    let unread_count = unread_count(db, user_id).await?;
    hub.do_send(NotificationsRead {
        user_id,
        ids,
        unread_count,
    });
    Ok(updated.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(len: usize) -> CachedPage {
        CachedPage {
            body: Bytes::from(vec![b'x'; len]),
            version: 0,
            built_at: Instant::now(),
        }
    }

    #[test]
    fn the_page_cache_stays_within_its_byte_budget() {
        let mut pages = CachedPages::default();
        pages.insert((1, 100, 0), page(1000));
        pages.insert((1, 100, 0), page(400));
        assert_eq!(
            (pages.by_key.len(), pages.bytes),
            (1, 400),
            "a replaced page gives its bytes back"
        );

        pages.insert((2, 1000, 0), page(LIST_CACHE_MAX_PAGE_BYTES + 1));
        assert_eq!(pages.by_key.len(), 1, "oversized pages are not kept");

        let per_page = LIST_CACHE_MAX_PAGE_BYTES;
        for offset in 0..(2 * LIST_CACHE_MAX_BYTES / per_page) as u64 {
            pages.insert((3, 1000, offset), page(per_page));
            assert!(pages.bytes <= LIST_CACHE_MAX_BYTES);
        }
    }
}
