//! `/api/admin/users/`: the accounts an admin can notify.
use actix_web::{HttpResponse, web};
use entity::user;
use sea_orm::{EntityTrait, QueryOrder};
use serde::Serialize;

use crate::{
    auth::{AdminUser, AuthUser},
    error::ApiError,
    state::AppState,
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/users/").route(web::get().to(users)));
}

async fn users(state: web::Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let users = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(&state.db)
        .await?;
    let users: Vec<AuthUser> = users.iter().map(AuthUser::from).collect();
    Ok(HttpResponse::Ok().json(UserList {
        count: users.len(),
        users,
    }))
}

#[derive(Serialize)]
struct UserList {
    count: usize,
    users: Vec<AuthUser>,
}
