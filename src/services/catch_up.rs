//! Catching up from the database: what a client missed before it reconnected (the handshake's
//! replay), and what a node missed while its channel layer was down (the hub's sweeps).
//!
//! Every query here goes through [`replayable`], so a rule about what may be sent again is
//! written once for both.
use chrono::Utc;
use entity::{global_notification, notification};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::Expr,
};

use crate::{error::ApiError, services::notifications};

/// Frames a handshake's replay sends at most (both kinds together); past it the replay is
/// incomplete and the client refetches over REST.
pub const REPLAY_MAX: usize = 500;

/// The notifications that may be sent again, on a replay or a node's catch-up: the one place
/// for such rules. Deleted notifications are gone from the table; a type its user muted was
/// never pushed live, so it is not replayed either. It serves one user's query and the
/// all-users sweep alike, so it compares with the row's own `user_id` (a correlated
/// `NOT EXISTS`; the muted types are stored comma-separated, `TypeSet::to_stored`).
pub fn replayable(query: Select<notification::Entity>) -> Select<notification::Entity> {
    query.filter(Expr::cust(
        r#"NOT EXISTS (SELECT 1 FROM "notification_preferences" AS p WHERE p."user_id" = "notifications"."user_id" AND ',' || p."muted_types" || ',' LIKE '%,' || "notifications"."notification_type" || ',%')"#,
    ))
}

/// Announcements that are live now: active, shown and not expired.
fn live_now() -> Condition {
    Condition::all()
        .add(global_notification::Column::IsActive.eq(true))
        .add(global_notification::Column::ShowOnSite.eq(true))
        .add(
            Condition::any()
                .add(global_notification::Column::ExpiresAt.is_null())
                .add(global_notification::Column::ExpiresAt.gt(Utc::now())),
        )
}

/// Where a client's replay starts: the newest of each kind it has seen; `None` replays nothing
/// of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Since {
    pub last_id: Option<i32>,
    pub last_global_id: Option<i32>,
}

/// One replayed item.
pub enum Missed {
    Personal(notification::Model),
    Global(global_notification::Model),
}

impl Missed {
    fn created_at(&self) -> chrono::DateTime<Utc> {
        match self {
            Missed::Personal(n) => n.created_at,
            Missed::Global(g) => g.created_at,
        }
    }
}

/// What a handshake replays, oldest first, and what its `sync` message says.
pub struct Replay {
    pub items: Vec<Missed>,
    /// Whether `items` holds everything missed (at most `REPLAY_MAX` are sent).
    pub complete: bool,
    pub unread_count: u64,
}

/// What `user_id` missed since `since`: its notifications with a larger id still stored, and the
/// live announcements with a larger id, oldest first, at most `REPLAY_MAX` of them.
pub async fn replay(db: &DatabaseConnection, user_id: i32, since: Since) -> Result<Replay, ApiError> {
    // One more than fits tells whether anything was left out.
    let fetch = REPLAY_MAX as u64 + 1;
    let personal = match since.last_id {
        Some(after) => {
            replayable(notification::Entity::find())
                .filter(notification::Column::UserId.eq(user_id))
                .filter(notification::Column::Id.gt(after))
                .order_by_asc(notification::Column::Id)
                .limit(fetch)
                .all(db)
                .await?
        }
        None => Vec::new(),
    };
    let global = match since.last_global_id {
        Some(after) => {
            global_notification::Entity::find()
                .filter(live_now())
                .filter(global_notification::Column::Id.gt(after))
                .order_by_asc(global_notification::Column::Id)
                .limit(fetch)
                .all(db)
                .await?
        }
        None => Vec::new(),
    };
    let unread_count = notifications::unread_count(db, user_id).await?;
    let missed = personal.len() + global.len();
    let items = merge_oldest_first(personal, global, REPLAY_MAX);
    Ok(Replay {
        complete: missed <= REPLAY_MAX,
        items,
        unread_count,
    })
}

/// Both kinds in one list by creation time (each already in id order), the first `max` of it.
fn merge_oldest_first(
    personal: Vec<notification::Model>,
    global: Vec<global_notification::Model>,
    max: usize,
) -> Vec<Missed> {
    let mut personal = personal.into_iter().map(Missed::Personal).peekable();
    let mut global = global.into_iter().map(Missed::Global).peekable();
    let mut items = Vec::with_capacity(max.min(personal.len() + global.len()));
    while items.len() < max {
        let next = match (personal.peek(), global.peek()) {
            (Some(p), Some(g)) if g.created_at() < p.created_at() => global.next(),
            (Some(_), _) => personal.next(),
            (None, _) => global.next(),
        };
        match next {
            Some(item) => items.push(item),
            None => break,
        }
    }
    items
}

/// Every user's replayable notifications with an id above `after`, ascending, at most `limit`:
/// a node's catch-up after its channel layer failed (the hub keeps those of its own users).
pub async fn notifications_after(
    db: &DatabaseConnection,
    after: i32,
    limit: u64,
) -> Result<Vec<notification::Model>, DbErr> {
    replayable(notification::Entity::find())
        .filter(notification::Column::Id.gt(after))
        .order_by_asc(notification::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The live announcements with an id above `after`, ascending.
pub async fn announcements_after(
    db: &DatabaseConnection,
    after: i32,
) -> Result<Vec<global_notification::Model>, DbErr> {
    global_notification::Entity::find()
        .filter(live_now())
        .filter(global_notification::Column::Id.gt(after))
        .order_by_asc(global_notification::Column::Id)
        .all(db)
        .await
}

/// The largest notification and announcement ids stored (0 for none): where a node starting
/// up begins to watch.
pub async fn newest_ids(db: &DatabaseConnection) -> Result<(i32, i32), DbErr> {
    let personal: Option<Option<i32>> = notification::Entity::find()
        .select_only()
        .column_as(notification::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    let global: Option<Option<i32>> = global_notification::Entity::find()
        .select_only()
        .column_as(global_notification::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    Ok((personal.flatten().unwrap_or(0), global.flatten().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone};

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 10, 30, second)
            .single()
            .expect("a valid time")
    }

    fn personal(id: i32, second: u32) -> notification::Model {
        notification::Model {
            id,
            user_id: 1,
            title: String::new(),
            message: String::new(),
            notification_type: notification::NotificationType::System,
            is_read: false,
            link: String::new(),
            created_at: at(second),
        }
    }

    fn global(id: i32, second: u32) -> global_notification::Model {
        global_notification::Model {
            id,
            title: String::new(),
            message: String::new(),
            level: global_notification::Level::Info,
            is_active: true,
            show_on_site: true,
            created_at: at(second),
            expires_at: None,
        }
    }

    fn ids(items: &[Missed]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Missed::Personal(n) => format!("n{}", n.id),
                Missed::Global(g) => format!("g{}", g.id),
            })
            .collect()
    }

    #[test]
    fn both_kinds_are_merged_oldest_first_and_cut_at_the_bound() {
        let merged = merge_oldest_first(
            vec![personal(10, 1), personal(11, 3), personal(12, 3)],
            vec![global(1, 2), global(2, 3), global(3, 9)],
            10,
        );
        assert_eq!(ids(&merged), ["n10", "g1", "n11", "n12", "g2", "g3"]);
        let cut = merge_oldest_first(vec![personal(10, 1), personal(11, 3)], vec![global(1, 2)], 2);
        assert_eq!(ids(&cut), ["n10", "g1"]);
    }
}
