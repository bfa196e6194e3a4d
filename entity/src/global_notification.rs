//! A site-wide announcement, pushed to every socket when saved live (active, shown, unexpired),
//! and withdrawn from every socket when an edit or a delete takes it off the site.
use sea_orm::{ActiveValue::Set, entity::prelude::*};
use serde::{Deserialize, Serialize};

use crate::outbox::{self, CreatedNotification, Saved};

/// How urgent an announcement is: the seed's three levels, and nothing else. Stored, and
/// written in JSON, as its snake_case name (`info`, `warning`, `danger`): the same strings the
/// column held before it was typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Danger,
}

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "global_notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub title: String,
    pub message: String,
    pub level: Level,
    pub is_active: bool,
    pub show_on_site: bool,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
}

impl Model {
    /// Whether the announcement is visible to users at `now`.
    pub fn is_live(&self, now: DateTimeUtc) -> bool {
        self.is_active && self.show_on_site && self.expires_at.is_none_or(|at| at > now)
    }
}

#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if insert {
            if self.created_at.is_not_set() {
                self.created_at = Set(chrono::Utc::now());
            }
            if self.is_active.is_not_set() {
                self.is_active = Set(true);
            }
            if self.show_on_site.is_not_set() {
                self.show_on_site = Set(true);
            }
            if self.expires_at.is_not_set() {
                self.expires_at = Set(None);
            }
        }
        Ok(self)
    }

    /// A new announcement is pushed only when users would see it (the seed's troubleshooting
    /// list). An edit pushes the whole announcement again when it is live after it, and its
    /// withdrawal otherwise; a client not showing that id ignores the withdrawal.
    async fn after_save<C>(model: Model, _db: &C, insert: bool) -> Result<Model, DbErr>
    where
        C: ConnectionTrait,
    {
        let message = if model.is_live(chrono::Utc::now()) {
            Some(if insert {
                CreatedNotification::Global(model.clone())
            } else {
                CreatedNotification::GlobalEdited(model.clone())
            })
        } else {
            // A new announcement that is not live changes nothing users see.
            (!insert).then_some(CreatedNotification::GlobalRemoved(model.id))
        };
        outbox::publish::<C>(message.map(Saved::Push));
        Ok(model)
    }

    /// Only `ActiveModel::delete` runs this (`Entity::delete_many` does not): delete through it.
    async fn after_delete<C>(self, _db: &C) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if let Some(id) = self.id.try_as_ref() {
            outbox::publish::<C>([Saved::Push(CreatedNotification::GlobalRemoved(*id))]);
        }
        Ok(self)
    }
}
