//! An account and its role: a jobseeker, an employer or an admin.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An account's role. Stored, and written in JSON, as its snake_case name (`jobseeker`,
/// `employer`, `admin`): the same strings the column held before it was typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Jobseeker,
    Employer,
    /// Made by the operator only (`herald create-admin`), never by registering.
    Admin,
}

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
    pub role: Role,
    pub created_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub notifications: HasMany<super::notification::Entity>,
    #[sea_orm(has_many)]
    pub auth_tokens: HasMany<super::auth_token::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
