//! `/api/notifications/`: the caller's notifications (listed, marked, deleted); admins create them.
use actix_web::{HttpRequest, HttpResponse, mime, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::Success,
    openapi::{AdminCreateErrors, BodyErrors},
    table::RouteTable,
};

use crate::{
    auth::{AdminUser, CurrentUser},
    domain::NewNotification,
    error::{ApiError, ErrorBody},
    payloads::NotificationView,
    routes::typed,
    services::{
        idempotency::{self, Answer},
        notifications::{self, ListFilter, NotificationPage},
    },
    state::AppState,
    type_set::TypeSet,
};

/// The most items a client may ask for in one page (without `limit` it gets them all).
const MAX_PAGE: u64 = 1000;

pub fn routes(table: &mut RouteTable) {
    table
        .api(__path_list, list)
        .api(__path_create, create)
        .api(__path_delete_read, delete_read)
        .api(__path_mark_all_read, mark_all_read)
        .api(__path_mark_read, mark_read)
        .api(__path_mark_unread, mark_unread)
        // Digits only, so that named paths beside it (`mark-all-read/`, `bulk/`) stay theirs.
        .api_matching(__path_delete, delete, "/api/notifications/{id:\\d+}/");
}

/// The list's query, as documented; [`list_filter`] reads it (and refuses anything else).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only the document reads the fields: the query is parsed by `list_filter`.
struct ListQuery {
    /// Page size, 1 to 1000; without it, every matching notification.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Keyset paging: only notifications with a lower id (the previous page's `next_before_id`).
    #[param(minimum = 1, maximum = 9_223_372_036_854_775_807_i64)]
    before_id: Option<i64>,
    /// `true`: only unread ones.
    unread: Option<bool>,
    /// Only these types: repeated (`type=a&type=b`) or comma-separated (`type=a,b`).
    #[param(style = Form, explode = true)]
    r#type: Option<Vec<String>>,
}

/// Reads the list's query: `limit`, `before_id`, `unread`, `type` (repeated or comma-separated).
/// Anything else, a repeated single parameter or a bad value is 400: a client sending the old
/// `offset`, or a misspelt filter, would otherwise get a list it did not ask for.
fn list_filter(params: &[(String, String)]) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut types: Vec<&str> = Vec::new();
    for (name, value) in params {
        if name != "type" {
            if seen.contains(&name.as_str()) {
                return Err(ApiError::BadRequest(format!("{name} may be given once")));
            }
            seen.push(name);
        }
        match name.as_str() {
            "limit" => {
                filter.limit = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_PAGE}"))
                        })?,
                );
            }
            "before_id" => {
                filter.before_id = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n: &i64| *n > 0)
                        .ok_or_else(|| ApiError::BadRequest("before_id must be a positive integer".into()))?,
                );
            }
            "unread" => {
                filter.unread_only = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::BadRequest("unread must be true or false".into())),
                };
            }
            "type" => types.extend(value.split(',')),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {name:?}; expected limit, before_id, unread or type"
                )));
            }
        }
    }
    filter.types = TypeSet::parse("type", types)?;
    Ok(filter)
}

/// A page of the caller's notifications, newest first, with the total and unread counts.
/// Any other query parameter (the old `offset` too) is 400.
#[utoipa::path(
    get,
    path = "/api/notifications/",
    tag = "notifications",
    params(ListQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of the caller's notifications", body = NotificationPage),
        (status = 400, description = "Invalid, repeated or unknown query parameter", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
    )
)]
async fn list(
    state: web::Data<AppState>,
    current: CurrentUser,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let filter = list_filter(&params)?;
    let body = state
        .notification_lists
        .body(&state.db, current.user().id, filter)
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
    notifications::mark_read(&state.db, &state.outbox, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Success {
        success: true,
        message: "Notification marked as read",
    }))
}

/// Marks one of the caller's notifications unread (the caller's sockets get `notification_unread`).
#[utoipa::path(
    post,
    path = "/api/notifications/{id}/mark-unread/",
    tag = "notifications",
    params(("id" = i64, Path, description = "The notification's id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Marked unread", body = Success),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 404, description = "No such notification of the caller's", body = ErrorBody),
    )
)]
async fn mark_unread(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::mark_unread(&state.db, &state.outbox, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Success {
        success: true,
        message: "Notification marked as unread",
    }))
}

/// Deletes one of the caller's notifications (the caller's sockets get `notification_deleted`).
#[utoipa::path(
    delete,
    path = "/api/notifications/{id}/",
    tag = "notifications",
    params(("id" = i64, Path, minimum = 0, description = "The notification's id (digits only)")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 404, description = "No such notification of the caller's", body = ErrorBody),
    )
)]
async fn delete(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::delete(&state.db, &state.outbox, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Success {
        success: true,
        message: "Notification deleted",
    }))
}

/// `DELETE /api/notifications/?read=true`: only the read ones may go in bulk, and the client
/// must say so; any other query is 400, so nothing is deleted by accident.
/// The query `DELETE /api/notifications/` requires.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only the document reads it: `delete_read` checks the query as a whole.
struct DeleteReadQuery {
    /// Must be `true` (and the only parameter).
    #[param(pattern = "^true$")]
    read: String,
}

/// `{"success": true, "message": "N notifications <done>", "count": N}`.
#[derive(Serialize, ToSchema)]
struct Counted {
    success: bool,
    message: String,
    count: u64,
}

/// Deletes the caller's read notifications (the caller's sockets get one `notification_deleted`).
#[utoipa::path(
    delete,
    path = "/api/notifications/",
    tag = "notifications",
    params(DeleteReadQuery),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "How many were deleted", body = Counted),
        (status = 400, description = "The query is not exactly `read=true`", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
    )
)]
async fn delete_read(
    state: web::Data<AppState>,
    current: CurrentUser,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    if params.as_slice() != [("read".to_string(), "true".to_string())] {
        return Err(ApiError::BadRequest(
            "only read notifications can be deleted together: DELETE /api/notifications/?read=true".into(),
        ));
    }
    let count = notifications::delete_read(&state.db, &state.outbox, current.user().id).await?;
    Ok(HttpResponse::Ok().json(Counted {
        success: true,
        message: format!("{count} notifications deleted"),
        count,
    }))
}

/// Marks all the caller's notifications read.
#[utoipa::path(
    post,
    path = "/api/notifications/mark-all-read/",
    tag = "notifications",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "How many were marked read", body = Counted),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
    )
)]
async fn mark_all_read(state: web::Data<AppState>, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    let count = notifications::mark_all_read(&state.db, &state.outbox, current.user().id).await?;
    Ok(HttpResponse::Ok().json(Counted {
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
    /// Up to 500 characters: empty, a path on this site (`/` then neither `/` nor `\\`), or an
    /// absolute `http(s)` URL with a host.
    #[serde(default)]
    #[schema(max_length = 500)]
    link: Option<String>,
}

/// Creates a notification for a user and pushes it to their sockets (admins only). With an
/// `Idempotency-Key`, a retry gets the first answer again and creates nothing.
#[utoipa::path(
    post,
    path = "/api/notifications/",
    tag = "notifications",
    request_body = CreateBody,
    params(super::IdempotencyKey),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The new notification (or, for a retried `Idempotency-Key`, the first answer)", body = NotificationView),
        (status = 400, description = "Invalid field, unknown user_id, malformed `Idempotency-Key`, or invalid JSON", body = ErrorBody),
        AdminCreateErrors,
        BodyErrors,
    )
)]

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: AdminUser,
    raw: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body: CreateBody = typed(&raw)?;
    let new = NewNotification::parse(
        body.user_id,
        &body.title,
        &body.message,
        &body.notification_type,
        body.link.as_deref().unwrap_or(""),
    )?;
    let db = state.db.clone();
    idempotency::once(&db, &req, admin.0.user().id, &raw, move || async move {
        let model = state.notification_writer.create(new).await?;
        Answer::created(&NotificationView::from(&model))
    })
    .await
}
