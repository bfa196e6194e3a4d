//! `/api/notifications/`: the caller's notifications; admins create them.
use actix_web::{HttpResponse, mime, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{auth::Success, table::RouteTable};
use crate::{
    auth::{AdminUser, CurrentUser},
    domain,
    error::{ApiError, ErrorBody},
    payloads::NotificationView,
    services::{
        group_commit::{self, NewNotification},
        notifications::{self, NotificationPage},
    },
    state::AppState,
};

/// Page size when the client does not ask for one, and the most it may ask for.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

pub fn routes(table: &mut RouteTable) {
    table
        .api(__path_list, list)
        .api(__path_create, create)
        .api(__path_mark_all_read, mark_all_read)
        .api(__path_mark_read, mark_read);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Page size, 1 to 1000 (clamped); 100 by default.
    limit: Option<u64>,
    /// How many of the newest to skip; 0 by default.
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    offset: Option<u64>,
}

/// The caller's notifications, newest first, with the total and unread counts.
#[utoipa::path(
    get,
    path = "/api/notifications/",
    tag = "notifications",
    params(Page),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of the caller's notifications", body = NotificationPage),
        (status = 400, description = "Invalid query string", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
    )
)]
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

/// Marks one of the caller's notifications read (the caller's sockets get `notification_read`).
#[utoipa::path(
    post,
    path = "/api/notifications/{id}/mark-read/",
    tag = "notifications",
    params(("id" = i64, Path, description = "The notification's id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Marked read", body = Success),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 404, description = "No such notification of the caller's", body = ErrorBody),
    )
)]
async fn mark_read(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::mark_read(&state.db, &state.hub, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Success {
        success: true,
        message: "Notification marked as read",
    }))
}

/// `{"success": true, "message": "N notifications marked as read", "count": N}`.
#[derive(Serialize, ToSchema)]
struct MarkedAll {
    success: bool,
    message: String,
    count: u64,
}

/// Marks all the caller's notifications read.
#[utoipa::path(
    post,
    path = "/api/notifications/mark-all-read/",
    tag = "notifications",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "How many were marked read", body = MarkedAll),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
    )
)]
async fn mark_all_read(state: web::Data<AppState>, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    let count = notifications::mark_all_read(&state.db, &state.hub, current.user().id).await?;
    Ok(HttpResponse::Ok().json(MarkedAll {
        success: true,
        message: format!("{count} notifications marked as read"),
        count,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewNotification)]
struct CreateBody {
    /// The recipient.
    user_id: i64,
    /// 1 to 255 characters, not only spaces.
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    title: String,
    /// 1 to 10000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    message: String,
    /// `job_application`, `job_post`, `message`, `profile_view`, `post_like`, `connection` or `system`.
    #[schema(
        example = "system",
        pattern = "^(job_application|job_post|message|profile_view|post_like|connection|system)$"
    )]
    notification_type: String,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    link: Option<String>,
}

/// Creates a notification for a user and pushes it to their sockets (admins only).
#[utoipa::path(
    post,
    path = "/api/notifications/",
    tag = "notifications",
    request_body = CreateBody,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The new notification", body = NotificationView),
        (status = 400, description = "Invalid field, unknown user_id, or invalid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an admin, or cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = ErrorBody),
    )
)]
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
        link: domain::optional_text("link", body.link.as_deref().unwrap_or(""), domain::LINK_MAX_CHARS)?,
    };
    let model = state.notification_writer.create(new).await?;
    Ok(HttpResponse::Created().json(NotificationView::from(&model)))
}
