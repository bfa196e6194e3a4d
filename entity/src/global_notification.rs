//! A site-wide announcement, pushed to every socket when inserted active, shown and unexpired.
use sea_orm::{ActiveValue::Set, entity::prelude::*};

use crate::{
    broadcast::{self, CreatedNotification},
    changes,
};

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

    /// Pushed only when users would see it: as the seed's troubleshooting list says.
    async fn after_save<C>(model: Model, _db: &C, insert: bool) -> Result<Model, DbErr>
    where
        C: ConnectionTrait,
    {
        changes::touch_announcements();
        if insert && model.is_live(chrono::Utc::now()) {
            broadcast::publish::<C>(CreatedNotification::Global(model.clone()));
        }
        Ok(model)
    }
}
