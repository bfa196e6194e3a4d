//! `/api/admin/users/`: the accounts an admin can notify.
use actix_web::{HttpResponse, web};
use entity::user;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::json;

use crate::{auth::AdminUser, error::ApiError, state::AppState};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/users/").route(web::get().to(users)));
}

async fn users(state: web::Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let users = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(&state.db)
        .await?;
    let items: Vec<_> = users
        .iter()
        .map(|u| json!({ "id": u.id, "username": u.username, "role": u.role }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "count": items.len(), "users": items })))
}
