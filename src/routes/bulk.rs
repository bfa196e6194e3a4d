//! `POST /api/notifications/bulk/`: an admin notifies a list of users, a role, or everyone.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth::AdminUser,
    domain::{self, Role},
    error::ApiError,
    routes::typed,
    services::{
        bulk::{self, Content, Target},
        idempotency::{self, Answer},
    },
    state::AppState,
};

/// Registered before `/api/notifications/{id}/...`, whose `{id}` would otherwise take `bulk`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/notifications/bulk/").route(web::post().to(create)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    title: String,
    message: String,
    notification_type: String,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    user_ids: Option<Vec<i64>>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    all: Option<bool>,
}

fn target(body: &BulkBody) -> Result<Target, ApiError> {
    let exactly_one = || ApiError::BadRequest("send exactly one target: user_ids, role or \"all\": true".into());
    match (&body.user_ids, &body.role, body.all) {
        (Some(ids), None, None) => Target::users(ids),
        (None, Some(role), None) => match Role::parse_registrable(role) {
            Ok(role) => Ok(Target::Role(role)),
            Err(_) => Err(ApiError::BadRequest("role must be 'jobseeker' or 'employer'".into())),
        },
        (None, None, Some(true)) => Ok(Target::All),
        (None, None, Some(false)) => Err(ApiError::BadRequest("all must be true".into())),
        _ => Err(exactly_one()),
    }
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: AdminUser,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (target, content) = {
        let body: BulkBody = typed(&body)?;
        let content = Content {
            title: domain::required_text("title", &body.title, domain::TITLE_MAX_CHARS)?,
            message: domain::required_text("message", &body.message, domain::MESSAGE_MAX_CHARS)?,
            notification_type: domain::notification_type(&body.notification_type)?,
            link: domain::optional_text("link", body.link.as_deref().unwrap_or(""), domain::LINK_MAX_CHARS)?,
        };
        (target(&body)?, content)
    };
    let db = state.db.clone();
    idempotency::once(&db, &req, admin.0.user().id, &body, move || async move {
        let created = bulk::notify(&state.db, target, content).await?;
        Answer::created(&json!({ "created": created }))
    })
    .await
}
