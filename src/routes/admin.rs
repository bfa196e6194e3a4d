//! `/api/admin/users/`: the accounts an admin can notify.
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::table::RouteTable;
use crate::{
    auth::{AdminUser, AuthUser},
    error::{ApiError, ErrorBody},
    services::users,
    state::AppState,
};

pub fn routes(table: &mut RouteTable) {
    table.api(__path_users, users);
}

/// Every account, by id (admins only).
#[utoipa::path(
    get,
    path = "/api/admin/users/",
    tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "All accounts", body = UserList),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
async fn users(state: web::Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let users: Vec<AuthUser> = users::all(&state.db).await?.iter().map(AuthUser::from).collect();
    Ok(HttpResponse::Ok().json(UserList {
        count: users.len(),
        users,
    }))
}

#[derive(Serialize, ToSchema)]
struct UserList {
    count: usize,
    users: Vec<AuthUser>,
}
