//! Personal notifications: the list (and its cache of serialized pages), marking read or
//! unread, deleting.
//!
//! Creating is `group_commit`'s: the entity pushes what it saves. Marking read or unread and
//! deleting tell the hub so every socket of the user updates its list and badge.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use entity::notification;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
    sea_query::{Alias, Expr, Query},
};

use crate::{
    cache_versions::CacheVersions,
    error::ApiError,
    hub::messages::NotificationsChanged,
    outbox::Outbox,
    payloads::{Change, NotificationView},
    type_set::TypeSet,
};

/// How long a cached page may lag a write made outside this process.
const LIST_TTL: Duration = Duration::from_secs(1);
/// Bytes of cached pages kept at most; past it the cache starts over. Pages are bodies of at
/// most `MAX_PAGE` items, so a client walking pages cannot grow memory past this.
const LIST_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// A page larger than this is served but not kept (a few users' long pages would crowd out
/// everyone's first page).
const LIST_CACHE_MAX_PAGE_BYTES: usize = 256 * 1024;

/// Which of a user's notifications a list request wants; the default is all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    /// At most this many, newest first; `None`: no limit.
    pub limit: Option<u64>,
    /// Keyset paging: only ids below this one.
    pub before_id: Option<i64>,
    pub unread_only: bool,
    /// Only these types; empty: every type.
    pub types: TypeSet,
}

/// Serialized list pages per (user, filter), reused while that user's notifications have not
/// changed (`cache_versions`). Only for a single node: with several nodes another node's write
/// would go unseen, so there the cache is off and every request reads the database.
pub struct ListCache {
    enabled: bool,
    versions: Arc<CacheVersions>,
    pages: Mutex<CachedPages>,
}

type PageKey = (i32, ListFilter);

#[derive(Default)]
struct CachedPages {
    by_key: HashMap<PageKey, CachedPage>,
    bytes: usize,
}

impl CachedPages {
    /// Keeps `page` unless it is too large; starts over when the byte budget would be exceeded.
    fn insert(&mut self, key: PageKey, page: CachedPage) {
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
    /// A cache whose pages are good while `versions` says their user's notifications are
    /// unchanged; `enabled: false` keeps nothing.
    pub fn new(enabled: bool, versions: Arc<CacheVersions>) -> Self {
        Self {
            enabled,
            versions,
            pages: Mutex::new(CachedPages::default()),
        }
    }

    /// The body of `GET /api/notifications/` for this user and filter.
    pub async fn body(&self, db: &DatabaseConnection, user_id: i32, filter: ListFilter) -> Result<Bytes, ApiError> {
        let key = (user_id, filter);
        // Read before the query: a write racing it leaves the entry with an outdated version.
        let version = self.versions.notifications(user_id);
        if self.enabled
            && let Some(page) = self.pages.lock().unwrap_or_else(|e| e.into_inner()).by_key.get(&key)
            && page.version == version
            && page.built_at.elapsed() < LIST_TTL
        {
            return Ok(page.body.clone());
        }
        let listing = list(db, user_id, filter).await?;
        let items: Vec<NotificationView> = listing.notifications.iter().map(NotificationView::from).collect();
        let body = Bytes::from(crate::http_conventions::json_line(&NotificationPage {
            count: listing.count,
            unread_count: listing.unread_count,
            notifications: items,
            next_before_id: listing.next_before_id,
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

/// A page of a user's notifications, newest first, with the user's total and unread counts.
pub struct Listing {
    pub count: u64,
    pub unread_count: u64,
    pub notifications: Vec<notification::Model>,
    /// Set when `limit` cut the page: the `before_id` of the next one.
    pub next_before_id: Option<i32>,
}

/// `GET /api/notifications/`'s shape: the totals, then the page, and where the next page starts
/// when `limit` cut this one.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct NotificationPage<'a> {
    /// All the user's notifications, whatever the filters.
    count: u64,
    /// Those not read yet.
    unread_count: u64,
    notifications: Vec<crate::payloads::NotificationView<'a>>,
    /// Present when `limit` cut the page: the `before_id` of the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before_id: Option<i32>,
}

/// A row of the page with the user's totals alongside (one round trip).
#[derive(sea_orm::FromQueryResult)]
struct ListedRow {
    #[sea_orm(nested)]
    notification: notification::Model,
    total: i64,
    unread: i64,
}

/// The page's query: the rows `filter` selects, newest first, with the user's totals.
fn page_query(backend: DbBackend, user_id: i32, filter: ListFilter) -> Select<notification::Entity> {
    // With `user_id = ?`, PostgreSQL may walk the primary key backwards and filter by user,
    // reading every newer row of everyone else (its estimate assumes a user's rows are spread
    // evenly). A one-value range leaves (user_id, id) the only index giving `user_id, id DESC`.
    // SQLite takes that index either way, and only with `=` does it bound the scan by `id < ?`.
    let user = match backend {
        DbBackend::Postgres => notification::Column::UserId.between(user_id, user_id),
        _ => notification::Column::UserId.eq(user_id),
    };
    // The totals ignore the filters: the user's row of `notification_counts`, which triggers keep
    // (migration m20261201_200001). `user_id` is an integer, safe to write into the SQL.
    let total = format!("COALESCE((SELECT total FROM notification_counts WHERE user_id = {user_id}), 0)");
    let unread = format!("COALESCE((SELECT unread FROM notification_counts WHERE user_id = {user_id}), 0)");
    let mut page = notification::Entity::find()
        .filter(user)
        .column_as(Expr::cust(total), "total")
        .column_as(Expr::cust(unread), "unread")
        .order_by_desc(notification::Column::UserId)
        .order_by_desc(notification::Column::Id);
    if let Some(before_id) = filter.before_id {
        page = page.filter(notification::Column::Id.lt(before_id));
    }
    if filter.unread_only {
        page = page.filter(notification::Column::IsRead.eq(false));
    }
    if !filter.types.is_empty() {
        page = page.filter(notification::Column::NotificationType.is_in(filter.types.iter()));
    }
    if let Some(limit) = filter.limit {
        // One more than asked tells whether a next page exists.
        page = page.limit(limit + 1);
    }
    page
}

/// The notifications of `user_id` that `filter` selects, newest (highest id) first, with the
/// counts over all of theirs. Ordering by id alone makes the keyset exact; both counts and the
/// page are served by the indexes on (user_id, id) and (user_id, is_read, id).
pub async fn list(db: &DatabaseConnection, user_id: i32, filter: ListFilter) -> Result<Listing, ApiError> {
    let page = page_query(db.get_database_backend(), user_id, filter);
    let mut rows: Vec<ListedRow> = page.into_model().all(db).await?;
    let (count, unread_count) = match rows.first() {
        Some(first) => (first.total, first.unread),
        None => counts(db, user_id).await?,
    };
    let mut next_before_id = None;
    if let Some(limit) = filter.limit
        && rows.len() as u64 > limit
    {
        rows.truncate(limit as usize);
        next_before_id = rows.last().map(|r| r.notification.id);
    }
    Ok(Listing {
        count: count.max(0) as u64,
        unread_count: unread_count.max(0) as u64,
        notifications: rows.into_iter().map(|r| r.notification).collect(),
        next_before_id,
    })
}

/// The user's total and unread counts (`notification_counts`; a user with none has no row).
async fn counts(db: &DatabaseConnection, user_id: i32) -> Result<(i64, i64), ApiError> {
    let select = Query::select()
        .columns([Alias::new("total"), Alias::new("unread")])
        .from(Alias::new("notification_counts"))
        .and_where(sea_orm::sea_query::ExprTrait::eq(
            Expr::col(Alias::new("user_id")),
            user_id,
        ))
        .to_owned();
    Ok(match db.query_one(&select).await? {
        Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
        None => (0, 0),
    })
}

pub async fn unread_count(db: &DatabaseConnection, user_id: i32) -> Result<u64, ApiError> {
    Ok(counts(db, user_id).await?.1.max(0) as u64)
}

/// Marks one of `user_id`'s notifications read (again fine); 404 for anyone else's or unknown.
pub async fn mark_read(db: &DatabaseConnection, outbox: &Outbox, user_id: i32, id: i64) -> Result<(), ApiError> {
    set_read(db, outbox, user_id, id, true).await
}

/// Marks all of `user_id`'s notifications read; answers how many were unread.
///
/// One `UPDATE ... RETURNING id` on both backends: no id list is bound into the statement, so
/// any number of unread notifications works (SQLite refuses more than 32,766 bound values), and
/// the ids pushed are exactly the rows this statement changed.
pub async fn mark_all_read(db: &DatabaseConnection, outbox: &Outbox, user_id: i32) -> Result<u64, ApiError> {
    let update = Query::update()
        .table(notification::Entity)
        .value(notification::Column::IsRead, true)
        .and_where(notification::Column::UserId.eq(user_id))
        .and_where(notification::Column::IsRead.eq(false))
        .returning_col(notification::Column::Id)
        .to_owned();
    let mut ids = db
        .query_all(&update)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<i32>(0))
        .collect::<Result<Vec<i32>, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    ids.sort_unstable();
    let marked = ids.len() as u64;
    tell(db, outbox, user_id, Change::Read, ids).await?;
    Ok(marked)
}

/// Marks one of `user_id`'s notifications unread (again fine); 404 for anyone else's or unknown.
pub async fn mark_unread(db: &DatabaseConnection, outbox: &Outbox, user_id: i32, id: i64) -> Result<(), ApiError> {
    set_read(db, outbox, user_id, id, false).await
}

/// Sets one notification's `is_read`, matching on the owner in the UPDATE itself: another user's
/// id changes nothing and answers 404, as an unknown one does.
async fn set_read(db: &DatabaseConnection, outbox: &Outbox, user_id: i32, id: i64, read: bool) -> Result<(), ApiError> {
    let id = i32::try_from(id).map_err(|_| ApiError::NotFound)?;
    let updated = notification::Entity::update_many()
        .col_expr(notification::Column::IsRead, read.into())
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    let change = if read { Change::Read } else { Change::Unread };
    tell(db, outbox, user_id, change, vec![id]).await
}

/// Deletes one of `user_id`'s notifications; 404 for anyone else's or unknown.
pub async fn delete(db: &DatabaseConnection, outbox: &Outbox, user_id: i32, id: i64) -> Result<(), ApiError> {
    let id = i32::try_from(id).map_err(|_| ApiError::NotFound)?;
    let deleted = notification::Entity::delete_many()
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    tell(db, outbox, user_id, Change::Deleted, vec![id]).await
}

/// Deletes `user_id`'s read notifications; answers how many.
pub async fn delete_read(db: &DatabaseConnection, outbox: &Outbox, user_id: i32) -> Result<u64, ApiError> {
    // RETURNING names exactly the rows deleted, however many, in one statement.
    let deleted = notification::Entity::delete_many()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::IsRead.eq(true))
        .exec_with_returning(db)
        .await?;
    if deleted.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<i32> = deleted.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    tell(db, outbox, user_id, Change::Deleted, ids).await?;
    Ok(deleted.len() as u64)
}

/// After a change to `user_id`'s notifications has committed: this server's cached lists learn
/// they are stale, and every socket of the user gets the change with the unread count after it.
async fn tell(
    db: &DatabaseConnection,
    outbox: &Outbox,
    user_id: i32,
    change: Change,
    ids: Vec<i32>,
) -> Result<(), ApiError> {
    outbox.versions().touch_notifications(user_id);
    let unread_count = unread_count(db, user_id).await?;
    outbox.hub().do_send(NotificationsChanged {
        user_id,
        change,
        ids,
        unread_count,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::QueryTrait;

    use super::*;

    fn page(len: usize) -> CachedPage {
        CachedPage {
            body: Bytes::from(vec![b'x'; len]),
            version: 0,
            built_at: Instant::now(),
        }
    }

    fn filter(limit: u64, before_id: i64) -> ListFilter {
        ListFilter {
            limit: Some(limit),
            before_id: Some(before_id),
            ..ListFilter::default()
        }
    }

    #[test]
    fn the_page_query_lets_each_database_take_the_user_id_index() {
        let filter = ListFilter {
            limit: Some(50),
            before_id: Some(1000),
            ..ListFilter::default()
        };
        let sql = |backend| page_query(backend, 7, filter).build(backend).to_string();
        let postgres = sql(DbBackend::Postgres);
        assert!(postgres.contains(r#""user_id" BETWEEN 7 AND 7"#), "{postgres}");
        let sqlite = sql(DbBackend::Sqlite);
        assert!(sqlite.contains(r#""user_id" = 7"#), "{sqlite}");
        for sql in [postgres, sqlite] {
            assert!(
                sql.contains(r#"ORDER BY "notifications"."user_id" DESC, "notifications"."id" DESC LIMIT 51"#),
                "{sql}"
            );
        }
    }

    #[test]
    fn the_page_cache_stays_within_its_byte_budget() {
        let mut pages = CachedPages::default();
        pages.insert((1, filter(100, 0)), page(1000));
        pages.insert((1, filter(100, 0)), page(400));
        assert_eq!(
            (pages.by_key.len(), pages.bytes),
            (1, 400),
            "a replaced page gives its bytes back"
        );

        pages.insert((2, filter(1000, 0)), page(LIST_CACHE_MAX_PAGE_BYTES + 1));
        assert_eq!(pages.by_key.len(), 1, "oversized pages are not kept");

        let per_page = LIST_CACHE_MAX_PAGE_BYTES;
        for before_id in 0..(2 * LIST_CACHE_MAX_BYTES / per_page) as i64 {
            pages.insert((3, filter(1000, before_id)), page(per_page));
            assert!(pages.bytes <= LIST_CACHE_MAX_BYTES);
        }
    }
}
