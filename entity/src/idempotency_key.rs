//! The first answer to an admin create sent with an `Idempotency-Key`, replayed to its retries.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The admin who sent the key: keys of different admins never meet.
    pub admin_id: i32,
    pub key: String,
    /// Hex SHA-256 of the method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    /// The first answer's status; `None` while that request is still running.
    pub status: Option<i16>,
    /// The first answer's JSON body.
    pub body: Option<String>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
