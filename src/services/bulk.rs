//! Notifying many users at once: a list of ids, a role, or everyone.
//!
//! Rows go in batches of [`BATCH_ROWS`], each one INSERT statement committed on its own, so the
//! database is never held for longer than one batch and other requests keep answering while
//! 100,000 rows go in. Each batch goes through the entity's bulk path, which pushes every saved
//! row once its statement has committed: one `notification` push per recipient.
use std::collections::BTreeSet;

use entity::{
    notification::{self, NotificationType},
    user::{self, Role},
};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::error::ApiError;

/// Rows per INSERT (7 bound values each: well inside SQLite's 32,766).
pub const BATCH_ROWS: usize = 500;
/// The most ids one request may name.
pub const MAX_USER_IDS: usize = 10_000;
/// Missing ids named in a 400, at most.
const MISSING_SHOWN: usize = 10;

/// Who receives a bulk notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// These users (distinct, each existing).
    Users(Vec<i32>),
    /// Every account with this role.
    Role(Role),
    /// Every account, admins included.
    All,
}

/// The content every recipient gets.
#[derive(Debug, Clone)]
pub struct Content {
    pub title: String,
    pub message: String,
    pub notification_type: NotificationType,
    pub link: String,
}

impl Target {
    /// Checks a list of ids: 1 to [`MAX_USER_IDS`]; a repeated id counts once (each user gets
    /// one notification). Whether each exists is checked by [`notify`].
    pub fn users(ids: &[i64]) -> Result<Self, ApiError> {
        if ids.is_empty() || ids.len() > MAX_USER_IDS {
            return Err(ApiError::BadRequest(format!(
                "user_ids must name 1 to {MAX_USER_IDS} users"
            )));
        }
        let mut distinct = BTreeSet::new();
        let mut bad = Vec::new();
        for &id in ids {
            match i32::try_from(id) {
                Ok(id) if id > 0 => {
                    distinct.insert(id);
                }
                _ => bad.push(id.to_string()),
            }
        }
        if !bad.is_empty() {
            return Err(unknown_users(&bad));
        }
        Ok(Target::Users(distinct.into_iter().collect()))
    }
}

fn unknown_users(ids: &[String]) -> ApiError {
    let shown: Vec<&str> = ids.iter().take(MISSING_SHOWN).map(String::as_str).collect();
    let more = if ids.len() > MISSING_SHOWN {
        format!(" and {} more", ids.len() - MISSING_SHOWN)
    } else {
        String::new()
    };
    ApiError::BadRequest(format!("user_ids name no user: {}{more}", shown.join(", ")))
}

/// Creates one notification per recipient, batch by batch; answers how many were created.
pub async fn notify(db: &DatabaseConnection, target: Target, content: Content) -> Result<u64, ApiError> {
    match target {
        Target::Users(ids) => {
            // All checked before any is written: a bad list creates nothing.
            let mut missing = Vec::new();
            for chunk in ids.chunks(BATCH_ROWS) {
                let found: BTreeSet<i32> = user::Entity::find()
                    .select_only()
                    .column(user::Column::Id)
                    .filter(user::Column::Id.is_in(chunk.iter().copied()))
                    .into_tuple::<i32>()
                    .all(db)
                    .await?
                    .into_iter()
                    .collect();
                missing.extend(chunk.iter().filter(|id| !found.contains(id)).map(i32::to_string));
            }
            if !missing.is_empty() {
                return Err(unknown_users(&missing));
            }
            let mut created = 0;
            for chunk in ids.chunks(BATCH_ROWS) {
                created += insert_batch(db, chunk, &content).await?;
            }
            Ok(created)
        }
        Target::Role(role) => by_keyset(db, Some(role), &content).await,
        Target::All => by_keyset(db, None, &content).await,
    }
}

/// Walks the users (of `role`, or all) in id order, one page per batch: memory stays bounded
/// and an account made meanwhile with a higher id is included.
async fn by_keyset(db: &DatabaseConnection, role: Option<Role>, content: &Content) -> Result<u64, ApiError> {
    let mut created = 0;
    let mut after = 0;
    loop {
        let mut page = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.gt(after));
        if let Some(role) = role {
            page = page.filter(user::Column::Role.eq(role));
        }
        let ids: Vec<i32> = page
            .order_by_asc(user::Column::Id)
            .limit(BATCH_ROWS as u64)
            .into_tuple()
            .all(db)
            .await?;
        let Some(&last) = ids.last() else {
            return Ok(created);
        };
        created += insert_batch(db, &ids, content).await?;
        if ids.len() < BATCH_ROWS {
            return Ok(created);
        }
        after = last;
    }
}

/// One INSERT, committed alone, then pushed by the entity.
async fn insert_batch(db: &DatabaseConnection, ids: &[i32], content: &Content) -> Result<u64, ApiError> {
    let rows = ids
        .iter()
        .map(|&user_id| notification::ActiveModel {
            user_id: Set(user_id),
            title: Set(content.title.clone()),
            message: Set(content.message.clone()),
            notification_type: Set(content.notification_type),
            link: Set(content.link.clone()),
            ..Default::default()
        })
        .collect();
    let saved = notification::insert_many_and_push(db, rows).await?;
    // Let the requests queued behind this batch run before the next one.
    tokio::task::yield_now().await;
    Ok(saved.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_are_bounded_and_deduplicated() {
        assert!(Target::users(&[]).is_err());
        assert_eq!(Target::users(&[3, 1, 3]).expect("ok"), Target::Users(vec![1, 3]));
        let too_many: Vec<i64> = (1..=MAX_USER_IDS as i64 + 1).collect();
        assert!(Target::users(&too_many).is_err());
        let most: Vec<i64> = (1..=MAX_USER_IDS as i64).collect();
        assert!(Target::users(&most).is_ok());
        assert!(Target::users(&[1, 0]).is_err());
        assert!(Target::users(&[1, i64::MAX]).is_err());
    }
}
