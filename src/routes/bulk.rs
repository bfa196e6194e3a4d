//! `POST /api/notifications/bulk/`: an admin notifies a list of users, a role, or everyone.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    openapi::{AdminCreateErrors, BodyErrors},
    table::RouteTable,
};

use crate::{
    auth::AdminUser,
    domain,
    error::{ApiError, ErrorBody},
    routes::typed,
    services::{
        bulk::{self, Content, Target},
        idempotency::{self, Answer},
    },
    state::AppState,
};

/// `POST /api/notifications/bulk/`. No route of `notifications` reads `bulk` as an id: the
/// one of the same shape, `DELETE /api/notifications/{id}/`, matches digits only.
pub fn routes(table: &mut RouteTable) {
    table.api(__path_create, create);
}

/// The content, and exactly one target: `user_ids`, `role` or `"all": true`.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewBulkNotification)]
#[serde(deny_unknown_fields)]
struct BulkBody {
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
    /// These users (each must exist).
    #[serde(default)]
    user_ids: Option<Vec<i64>>,
    /// Every user of this role: `jobseeker` or `employer`.
    #[serde(default)]
    #[schema(pattern = "^(jobseeker|employer)$")]
    role: Option<String>,
    /// `true`: every user.
    #[serde(default)]
    all: Option<bool>,
}

/// `{"created": N}`: how many notifications were created.
#[derive(Serialize, ToSchema)]
struct Created {
    created: u64,
}

fn target(body: &BulkBody) -> Result<Target, ApiError> {
    let exactly_one = || ApiError::BadRequest("send exactly one target: user_ids, role or \"all\": true".into());
    match (&body.user_ids, &body.role, body.all) {
        (Some(ids), None, None) => Target::users(ids),
        (None, Some(role), None) => domain::registrable_role(role).map(Target::Role),
        (None, None, Some(true)) => Ok(Target::All),
        (None, None, Some(false)) => Err(ApiError::BadRequest("all must be true".into())),
        _ => Err(exactly_one()),
    }
}

/// Notifies a list of users, a role, or everyone, pushing to their sockets (admins only). With
/// an `Idempotency-Key`, a retry gets the first answer again and creates nothing.
#[utoipa::path(
    post,
    path = "/api/notifications/bulk/",
    tag = "notifications",
    request_body = BulkBody,
    params(super::IdempotencyKey),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "How many were created (or, for a retried `Idempotency-Key`, the first answer)", body = Created),
        (status = 400, description = "Invalid field, not exactly one target, an unknown user, malformed `Idempotency-Key`, or invalid JSON", body = ErrorBody),
        AdminCreateErrors,
        BodyErrors,
    )
)]
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
        Answer::created(&Created { created })
    })
    .await
}
