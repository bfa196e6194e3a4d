//! A user's notification preferences: the types never pushed live to them.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    /// Comma-separated `notification_type`s, in `notification::NotificationType` order; empty
    /// for none.
    pub muted_types: String,
}

impl ActiveModelBehavior for ActiveModel {}
