//! `/api/notifications/`: the caller's notifications (listed, marked, deleted); admins create them.
use actix_web::{HttpRequest, HttpResponse, mime, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth::{AdminUser, CurrentUser},
    domain,
    error::ApiError,
    payloads::NotificationView,
    routes::typed,
    services::{
        group_commit::{self, NewNotification},
        idempotency::{self, Answer},
        notifications::{self, ListFilter},
    },
    state::AppState,
    type_set::TypeSet,
};

/// The most items a client may ask for in one page (without `limit` it gets them all).
const MAX_PAGE: u64 = 1000;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/notifications/")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .route(web::delete().to(delete_read)),
    )
    .service(web::resource("/api/notifications/mark-all-read/").route(web::post().to(mark_all_read)))
    .service(web::resource("/api/notifications/{id}/mark-read/").route(web::post().to(mark_read)))
    .service(web::resource("/api/notifications/{id}/mark-unread/").route(web::post().to(mark_unread)))
    // Digits only, so that named paths beside it (`mark-all-read/`, others' `bulk/`) stay theirs.
    .service(web::resource("/api/notifications/{id:\\d+}/").route(web::delete().to(delete)));
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

async fn mark_read(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::mark_read(&state.db, &state.hub, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Notification marked as read" })))
}

async fn mark_unread(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::mark_unread(&state.db, &state.hub, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Notification marked as unread" })))
}

async fn delete(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    notifications::delete(&state.db, &state.hub, current.user().id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Notification deleted" })))
}

/// `DELETE /api/notifications/?read=true`: only the read ones may go in bulk, and the client
/// must say so; any other query is 400, so nothing is deleted by accident.
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
    let count = notifications::delete_read(&state.db, &state.hub, current.user().id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": format!("{count} notifications deleted"),
        "count": count,
    })))
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
    req: HttpRequest,
    admin: AdminUser,
    raw: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body: CreateBody = typed(&raw)?;
    let new = NewNotification {
        // An id beyond the column's range names no user either.
        user_id: i32::try_from(body.user_id).map_err(|_| group_commit::no_such_user())?,
        title: domain::required_text("title", &body.title, domain::TITLE_MAX_CHARS)?,
        message: domain::required_text("message", &body.message, domain::MESSAGE_MAX_CHARS)?,
        notification_type: domain::notification_type(&body.notification_type)?,
        link: domain::link(body.link.as_deref().unwrap_or(""))?,
    };
    let db = state.db.clone();
    idempotency::once(&db, &req, admin.0.user().id, &raw, move || async move {
        let model = state.notification_writer.create(new).await?;
        Answer::created(&NotificationView::from(&model))
    })
    .await
}
