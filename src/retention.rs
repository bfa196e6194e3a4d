//! The retention job: deletes what Herald no longer needs, so the tables stay the same size.
//!
//! Each run deletes, in batches of [`BATCH_ROWS`] (each its own short statement, so no request
//! waits long behind it):
//! - read notifications older than `retention.read_after_days`;
//! - past `retention.max_per_user` notifications of one user, the oldest read ones first, then
//!   the oldest (unread ones go only when a user has more unread than the cap);
//! - `Idempotency-Key`s older than their 24 hours;
//! - expired logins (`auth_tokens`).
//!
//! On PostgreSQL a run first takes a transaction-level advisory lock on a connection of its own
//! and holds that transaction (idle) until the run ends: a node that finds the lock taken skips
//! its run, so one node runs the job at a time, and a node that dies releases the lock with its
//! connection. SQLite is one file on one machine: there is no other node.
use std::{sync::Arc, time::Duration};

use chrono::Utc;
use entity::{auth_token, idempotency_key, notification};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Statement, TransactionTrait, sea_query::Expr,
};

use crate::{cache_versions::CacheVersions, configuration::RetentionSettings, services::idempotency::KEY_LIFETIME};

/// Rows deleted per statement.
pub const BATCH_ROWS: u64 = 1000;
/// The advisory lock's key: "herald retention" in a number.
pub const ADVISORY_LOCK_KEY: i64 = 0x4845_5241_4c44_5245;

/// What one run deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// Read notifications past `read_after_days`.
    pub old_read: u64,
    /// Notifications past a user's cap.
    pub over_cap: u64,
    pub idempotency_keys: u64,
    pub expired_logins: u64,
}

/// Starts the periodic job (unless `interval_secs` is 0) on the current actix arbiter; what it
/// deletes moves `versions`, this server's.
pub fn start(db: DatabaseConnection, settings: RetentionSettings, versions: Arc<CacheVersions>) {
    if settings.interval_secs == 0 {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(settings.interval_secs));
        // A run longer than the interval delays the next, rather than runs back to back.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the first run comes one interval after start.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match run_once(&db, &settings, &versions).await {
                Ok(Some(deleted)) => log::info!("retention: {deleted:?}"),
                Ok(None) => log::debug!("retention: another node is running it"),
                Err(e) => log::warn!("retention: {e}"),
            }
        }
    });
}

/// One run of the job; `None` when another node holds the lock (PostgreSQL). The users whose
/// notifications it trims to the cap are touched in `versions`.
pub async fn run_once(
    db: &DatabaseConnection,
    settings: &RetentionSettings,
    versions: &CacheVersions,
) -> Result<Option<Deleted>, DbErr> {
    let lock = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let txn = db.begin().await?;
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_try_advisory_xact_lock($1) AS locked",
                    [ADVISORY_LOCK_KEY.into()],
                ))
                .await?;
            let locked = row
                .map(|r| r.try_get::<bool>("", "locked"))
                .transpose()?
                .unwrap_or(false);
            if !locked {
                txn.rollback().await?;
                return Ok(None);
            }
            Some(txn)
        }
        _ => None,
    };
    let deleted = delete_all(db, settings, versions).await;
    if let Some(txn) = lock {
        // Ending the transaction releases the lock.
        txn.rollback().await?;
    }
    deleted.map(Some)
}

async fn delete_all(
    db: &DatabaseConnection,
    settings: &RetentionSettings,
    versions: &CacheVersions,
) -> Result<Deleted, DbErr> {
    let now = Utc::now();
    let mut deleted = Deleted::default();
    if settings.read_after_days > 0 {
        let cutoff = now - chrono::Duration::days(i64::from(settings.read_after_days));
        deleted.old_read = in_batches(db, || {
            notification::Entity::find()
                .select_only()
                .column(notification::Column::Id)
                .filter(notification::Column::IsRead.eq(true))
                .filter(notification::Column::CreatedAt.lt(cutoff))
        })
        .await?;
    }
    if settings.max_per_user > 0 {
        deleted.over_cap = trim_to_cap(db, u64::from(settings.max_per_user), versions).await?;
    }
    let key_cutoff = now - chrono::Duration::from_std(KEY_LIFETIME).unwrap_or_default();
    deleted.idempotency_keys = delete_batches(db, || {
        idempotency_key::Entity::delete_many().filter(
            idempotency_key::Column::Id.in_subquery(
                idempotency_key::Entity::find()
                    .select_only()
                    .column(idempotency_key::Column::Id)
                    .filter(idempotency_key::Column::CreatedAt.lt(key_cutoff))
                    .limit(BATCH_ROWS)
                    .into_query(),
            ),
        )
    })
    .await?;
    deleted.expired_logins = delete_batches(db, || {
        auth_token::Entity::delete_many().filter(
            auth_token::Column::Id.in_subquery(
                auth_token::Entity::find()
                    .select_only()
                    .column(auth_token::Column::Id)
                    .filter(auth_token::Column::ExpiresAt.lt(now))
                    .limit(BATCH_ROWS)
                    .into_query(),
            ),
        )
    })
    .await?;
    Ok(deleted)
}

/// Deletes the notifications `select` picks (their ids), [`BATCH_ROWS`] per statement.
async fn in_batches<F>(db: &DatabaseConnection, select: F) -> Result<u64, DbErr>
where
    F: Fn() -> sea_orm::Select<notification::Entity>,
{
    delete_batches(db, || {
        notification::Entity::delete_many()
            .filter(notification::Column::Id.in_subquery(select().limit(BATCH_ROWS).into_query()))
    })
    .await
}

/// Runs `delete` until a statement deletes less than a full batch; answers the rows deleted.
async fn delete_batches<E, F>(db: &DatabaseConnection, delete: F) -> Result<u64, DbErr>
where
    E: EntityTrait,
    F: Fn() -> sea_orm::DeleteMany<E>,
{
    let mut total = 0;
    loop {
        let rows = delete().exec(db).await?.rows_affected;
        total += rows;
        if rows < BATCH_ROWS {
            return Ok(total);
        }
        // Let requests waiting for the database go first.
        tokio::task::yield_now().await;
    }
}

/// Deletes each user's notifications past `cap`: the oldest read ones first, then the oldest.
async fn trim_to_cap(db: &DatabaseConnection, cap: u64, versions: &CacheVersions) -> Result<u64, DbErr> {
    let over: Vec<(i32, i64)> = notification::Entity::find()
        .select_only()
        .column(notification::Column::UserId)
        .column_as(Expr::cust("COUNT(*)"), "total")
        .group_by(notification::Column::UserId)
        .having(Expr::cust(format!("COUNT(*) > {cap}")))
        .into_tuple()
        .all(db)
        .await?;
    let mut total = 0;
    for (user_id, count) in over {
        let mut excess = (count.max(0) as u64).saturating_sub(cap);
        while excess > 0 {
            let batch = excess.min(BATCH_ROWS);
            let doomed = notification::Entity::find()
                .select_only()
                .column(notification::Column::Id)
                .filter(notification::Column::UserId.eq(user_id))
                .order_by_desc(notification::Column::IsRead)
                .order_by_asc(notification::Column::CreatedAt)
                .order_by_asc(notification::Column::Id)
                .limit(batch)
                .into_query();
            let rows = notification::Entity::delete_many()
                .filter(notification::Column::Id.in_subquery(doomed))
                .exec(db)
                .await?
                .rows_affected;
            total += rows;
            if rows < batch {
                break;
            }
            excess -= rows;
            tokio::task::yield_now().await;
        }
        versions.touch_notifications(user_id);
    }
    Ok(total)
}
