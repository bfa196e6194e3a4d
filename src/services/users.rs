//! Accounts as admins list them (`/api/admin/users/`): every user, by id.
use entity::user;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryOrder};

/// Every account, oldest (lowest id) first.
pub async fn all(db: &DatabaseConnection) -> Result<Vec<user::Model>, DbErr> {
    user::Entity::find().order_by_asc(user::Column::Id).all(db).await
}
