//! An account: a jobseeker, an employer or an admin.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub username: String,
    /// Argon2 PHC string; the password itself is never stored.
    pub password_hash: String,
    /// `jobseeker`, `employer` or `admin`.
    pub role: String,
    pub created_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub notifications: HasMany<super::notification::Entity>,
    #[sea_orm(has_many)]
    pub auth_tokens: HasMany<super::auth_token::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
