//! The expiry timer: withdraws a live announcement from this node's sockets when its
//! `expires_at` passes.
//!
//! One timer, armed for the next expiry among live announcements (one query), re-armed whenever
//! an announcement changes: the hub wakes it for changes made here and for those other nodes
//! publish through the channel layer. It never publishes: every node's timer tells only its
//! own sockets, so each socket hears of an expiry once. A long fallback sleep re-reads the table
//! now and then in case a change from another node was missed (a Redis outage).
use std::{sync::Arc, time::Duration};

use actix::WeakAddr;
use chrono::{DateTime, Utc};
use entity::global_notification;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::Notify;

use crate::hub::{NotificationHub, messages::AnnouncementsExpired};

/// The longest the timer sleeps without re-reading the table.
const FALLBACK_SLEEP: Duration = Duration::from_secs(60);
/// After a database error, the wait before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// Starts the timer on the current actix arbiter; it ends with the hub.
pub fn start(db: DatabaseConnection, hub: WeakAddr<NotificationHub>, changed: Arc<Notify>) {
    actix_web::rt::spawn(run(db, hub, changed));
}

async fn run(db: DatabaseConnection, hub: WeakAddr<NotificationHub>, changed: Arc<Notify>) {
    // Expiries before this instant have been dealt with (or passed before this node started,
    // when no socket of it could be showing them).
    let mut since = Utc::now();
    loop {
        let wait = match next_expiry(&db, since).await {
            Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(FALLBACK_SLEEP),
            Ok(None) => FALLBACK_SLEEP,
            Err(e) => {
                log::warn!("announcement expiry timer: {e}");
                RETRY_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.notified() => continue,
        }
        let now = Utc::now();
        match expired_between(&db, since, now).await {
            Ok(ids) => {
                let Some(hub) = hub.upgrade() else { return };
                if !ids.is_empty() {
                    hub.do_send(AnnouncementsExpired { ids });
                }
                since = now;
            }
            Err(e) => log::warn!("announcement expiry timer: {e}"),
        }
        if hub.upgrade().is_none() {
            return;
        }
    }
}

fn live_until_expiry() -> sea_orm::Select<global_notification::Entity> {
    global_notification::Entity::find()
        .filter(global_notification::Column::IsActive.eq(true))
        .filter(global_notification::Column::ShowOnSite.eq(true))
}

/// The earliest expiry after `since` among active, shown announcements.
async fn next_expiry(db: &DatabaseConnection, since: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(live_until_expiry()
        .filter(global_notification::Column::ExpiresAt.gt(since))
        .order_by_asc(global_notification::Column::ExpiresAt)
        .one(db)
        .await?
        .and_then(|g| g.expires_at))
}

/// Active, shown announcements that expired in `(since, now]`.
async fn expired_between(db: &DatabaseConnection, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<i32>, DbErr> {
    live_until_expiry()
        .select_only()
        .column(global_notification::Column::Id)
        .filter(global_notification::Column::ExpiresAt.gt(since))
        .filter(global_notification::Column::ExpiresAt.lte(now))
        .into_tuple()
        .all(db)
        .await
}
