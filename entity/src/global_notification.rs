//! A site-wide announcement, pushed to every socket when saved live (active, shown, unexpired),
//! and withdrawn from every socket when an edit or a delete takes it off the site.
use sea_orm::{ActiveValue::Set, entity::prelude::*};

use crate::outbox::{self, CreatedNotification, Saved};

/// The seed's levels; anything else is refused.
pub const LEVELS: [&str; 3] = ["info", "warning", "danger"];

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "global_notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub title: String,
    pub message: String,
    pub level: String,
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
