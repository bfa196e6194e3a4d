//! `/api/notifications/`: the caller's notifications; admins create them.
use actix_web::{HttpResponse, mime, web};
use serde::Deserialize;
use serde_json::json;

use crate::{
    auth::{AdminUser, CurrentUser},
    domain,
    error::ApiError,
    payloads::NotificationView,
    services::{
        group_commit::{self, NewNotification},
        notifications,
    },
    state::AppState,
};

/// Page size when the client does not ask for one, and the most it may ask for.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/notifications/")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/api/notifications/mark-all-read/").route(web::post().to(mark_all_read)))
    .service(web::resource("/api/notifications/{id}/mark-read/").route(web::post().to(mark_read)));
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn list(
    state: web::Data<AppState>,
    current: CurrentUser,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    // The SQLite binding converts to i64 and panics past it (sea-query-sqlx): refuse here.
    let offset = page.offset.unwrap_or(0);
    if i64::try_from(offset).is_err() {
        return Err(ApiError::BadRequest("offset is too large".into()));
    }
    let body = state
        .notification_lists
        .body(&state.db, current.user().id, limit, offset)
        .await?;
    Ok(HttpResponse::Ok().content_type(mime::APPLICATION_JSON).body(body))
}

async fn mark_read(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::mark_read(&state.db, &state.hub, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Notification marked as read" })))
}

async fn mark_all_read(state: web::Data<AppState>, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    let count = notifications::mark_all_read(&state.db, &state.hub, current.user().id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": format!("{count} notifications marked as read"),
        "count": count,
    })))
}

#[derive(Deserialize)]
struct CreateBody {
    user_id: i64,
    title: String,
    message: String,
    notification_type: String,
    #[serde(default)]
    link: Option<String>,
}

async fn create(
    state: web::Data<AppState>,
    _admin: AdminUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewNotification {
        // An id beyond the column's range names no user either.
        user_id: i32::try_from(body.user_id).map_err(|_| group_commit::no_such_user())?,
        title: domain::required_text("title", &body.title, domain::TITLE_MAX_CHARS)?,
        message: domain::required_text("message", &body.message, domain::MESSAGE_MAX_CHARS)?,
        notification_type: domain::notification_type(&body.notification_type)?,
        link: domain::link(body.link.as_deref().unwrap_or(""))?,
    };
    let model = state.notification_writer.create(new).await?;
    Ok(HttpResponse::Created().json(NotificationView::from(&model)))
}
