//! A personal notification, pushed to its user's sockets when inserted.
use sea_orm::{ActiveValue::Set, entity::prelude::*};
use serde::{Deserialize, Serialize};

use crate::outbox::{self, CreatedNotification, Saved};

/// What a notification is about: the seed's seven types, and nothing else. Stored, and written
/// in JSON, as its snake_case name (`job_application`, ..., `system`): the same strings the
/// column held before it was typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    JobApplication,
    JobPost,
    Message,
    ProfileView,
    PostLike,
    Connection,
    /// The operator's own messages (the one type no user can mute).
    System,
}

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub title: String,
    pub message: String,
    pub notification_type: NotificationType,
    pub is_read: bool,
    pub link: String,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::user::Entity>,
}

impl ActiveModel {
    /// What a new row leaves unset: unread, no link (`""`), created at `now`. One place for
    /// both ways in: a single save (`before_save`) and [`insert_many_and_push`], which
    /// `before_save` does not see.
    fn with_insert_defaults(mut self, now: DateTimeUtc) -> Self {
        if self.created_at.is_not_set() {
            self.created_at = Set(now);
        }
        if self.is_read.is_not_set() {
            self.is_read = Set(false);
        }
        if self.link.is_not_set() {
            self.link = Set(String::new());
        }
        self
    }
}

#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    async fn before_save<C>(self, _db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        Ok(if insert {
            self.with_insert_defaults(chrono::Utc::now())
        } else {
            self
        })
    }

    /// The `post_save` signal: only a new row is pushed, as in the seed; an edit only tells the
    /// server that the user's notifications changed.
    async fn after_save<C>(model: Model, _db: &C, insert: bool) -> Result<Model, DbErr>
    where
        C: ConnectionTrait,
    {
        let saved = if insert {
            Saved::Push(CreatedNotification::User(model.clone()))
        } else {
            Saved::Edited(model.user_id)
        };
        outbox::publish::<C>([saved]);
        Ok(model)
    }
}

/// Inserts many notifications in one statement and pushes each of them.
///
/// `insert_many` bypasses the `after_save` hook (as Django's `bulk_create` skips `post_save`),
/// so this bulk path publishes explicitly.
pub async fn insert_many_and_push<C>(db: &C, rows: Vec<ActiveModel>) -> Result<Vec<Model>, DbErr>
where
    C: ConnectionTrait,
{
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let now = chrono::Utc::now();
    let rows = rows.into_iter().map(|row| row.with_insert_defaults(now));
    let mut models = Entity::insert_many(rows).exec_with_returning(db).await?;
    // RETURNING's order is not guaranteed: a user's pushes go out in id order (clients resume
    // from the newest id they have seen).
    models.sort_by_key(|model| model.id);
    outbox::publish::<C>(
        models
            .iter()
            .map(|model| Saved::Push(CreatedNotification::User(model.clone()))),
    );
    Ok(models)
}
