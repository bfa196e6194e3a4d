//! `/api/global-notifications/`: the public list of live announcements; admins publish, edit and delete.
use actix_web::{HttpRequest, HttpResponse, mime, web};
use chrono::{DateTime, Months, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    auth::Success,
    openapi::{AdminCreateErrors, BodyErrors},
    table::RouteTable,
};

use crate::{
    auth::AdminUser,
    domain,
    error::{ApiError, ErrorBody},
    payloads::{GlobalAdminView, GlobalView},
    routes::typed,
    services::{
        global_notifications::{self, GlobalChanges, GlobalList, NewGlobal},
        idempotency::{self, Answer},
    },
    state::AppState,
};

pub fn routes(table: &mut RouteTable) {
    table
        .api(__path_list_live, list_live)
        .api(__path_create, create)
        .api(__path_update, update)
        .api(__path_delete, delete)
        .api(__path_list_all, list_all);
}

/// The live announcements (active, shown on the site, not expired); no login needed.
#[utoipa::path(
    get,
    path = "/api/global-notifications/",
    tag = "announcements",
    responses((status = 200, description = "The live announcements, newest first", body = GlobalList<GlobalView>))
)]
async fn list_live(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.live_globals.body(&state.db).await?;
    Ok(HttpResponse::Ok().content_type(mime::APPLICATION_JSON).body(body))
}

/// Every announcement, live or not, with its flags (admins only).
#[utoipa::path(
    get,
    path = "/api/admin/global-notifications/",
    tag = "announcements",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "All announcements", body = GlobalList<GlobalAdminView>),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
async fn list_all(state: web::Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let all = global_notifications::all(&state.db).await?;
    let items: Vec<GlobalAdminView> = all.iter().map(GlobalAdminView::from).collect();
    Ok(HttpResponse::Ok().json(GlobalList {
        count: items.len(),
        notifications: items,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewAnnouncement)]
struct CreateBody {
    /// 1 to 255 characters, not only spaces.
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    title: String,
    /// 1 to 10000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    message: String,
    /// `info`, `warning` or `danger`.
    #[schema(example = "info", pattern = "^(info|warning|danger)$")]
    level: String,
    /// RFC 3339 (a time without an offset is UTC), at most 10 years ahead; `null` or absent:
    /// never expires.
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// `true` by default.
    #[serde(default)]
    is_active: Option<bool>,
    /// `true` by default.
    #[serde(default)]
    show_on_site: Option<bool>,
}

/// How far ahead an `expires_at` may be. Far larger ones are mistakes (and past year 9999 the
/// stored value no longer reads back as RFC 3339).
const MAX_EXPIRY_MONTHS: u32 = 12 * 10;

/// RFC 3339; a time without an offset is taken as UTC (as the seed's Django does). At most ten
/// years ahead; one in the past is accepted (the announcement is simply not live).
fn parse_expiry(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let at = parse_time(raw)
        .ok_or_else(|| ApiError::BadRequest("expires_at must be an RFC 3339 timestamp or null".into()))?;
    let latest = Utc::now().checked_add_months(Months::new(MAX_EXPIRY_MONTHS));
    if latest.is_none_or(|latest| at > latest) {
        return Err(ApiError::BadRequest("expires_at must be at most 10 years ahead".into()));
    }
    Ok(Some(at))
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|naive| naive.and_utc())
}

/// Publishes an announcement; if live, every socket gets it (admins only). With an
/// `Idempotency-Key`, a retry gets the first answer again and creates nothing.
#[utoipa::path(
    post,
    path = "/api/global-notifications/",
    tag = "announcements",
    request_body = CreateBody,
    params(super::IdempotencyKey),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The new announcement (or, for a retried `Idempotency-Key`, the first answer)", body = GlobalAdminView),
        (status = 400, description = "Invalid field, malformed `Idempotency-Key`, or invalid JSON", body = ErrorBody),
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
    let new = {
        let body: CreateBody = typed(&body)?;
        NewGlobal {
            title: domain::required_text("title", &body.title, domain::TITLE_MAX_CHARS)?,
            message: domain::required_text("message", &body.message, domain::MESSAGE_MAX_CHARS)?,
            level: domain::level(&body.level)?,
            expires_at: parse_expiry(body.expires_at.as_deref())?,
            is_active: body.is_active.unwrap_or(true),
            show_on_site: body.show_on_site.unwrap_or(true),
        }
    };
    let db = state.db.clone();
    idempotency::once(&db, &req, admin.0.user().id, &body, move || async move {
        let model = global_notifications::create(&state.db, new).await?;
        Answer::created(&GlobalAdminView::from(&model))
    })
    .await
}

/// `Some(None)` for an explicit `null`, so `"expires_at": null` (clear it) differs from absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The fields to change: at least one; the others keep their value.
#[derive(Deserialize, ToSchema)]
#[schema(as = AnnouncementChanges, min_properties = 1)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    /// 1 to 255 characters, not only spaces.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    title: Option<String>,
    /// 1 to 10000 characters, not only spaces.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    message: Option<String>,
    /// `info`, `warning` or `danger`.
    #[serde(default)]
    #[schema(pattern = "^(info|warning|danger)$")]
    level: Option<String>,
    /// RFC 3339 (a time without an offset is UTC), at most 10 years ahead; `null` clears it
    /// (never expires); one in the past withdraws the announcement now.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<String>>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    show_on_site: Option<bool>,
}

/// Edits an announcement (admins only); live sockets see the change.
#[utoipa::path(
    patch,
    path = "/api/global-notifications/{id}/",
    tag = "announcements",
    params(("id" = i64, Path, description = "The announcement's id")),
    request_body = UpdateBody,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The announcement as updated", body = GlobalAdminView),
        (status = 400, description = "No field given, an invalid or unknown field, or invalid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an admin, or cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 404, description = "No such announcement", body = ErrorBody),
        BodyErrors,
    )
)]
async fn update(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let changes = GlobalChanges {
        title: body
            .title
            .map(|t| domain::required_text("title", &t, domain::TITLE_MAX_CHARS))
            .transpose()?,
        message: body
            .message
            .map(|m| domain::required_text("message", &m, domain::MESSAGE_MAX_CHARS))
            .transpose()?,
        level: body.level.map(|l| domain::level(&l)).transpose()?,
        expires_at: body.expires_at.map(|e| parse_expiry(e.as_deref())).transpose()?,
        is_active: body.is_active,
        show_on_site: body.show_on_site,
    };
    if changes.is_empty() {
        return Err(ApiError::BadRequest(
            "send at least one of title, message, level, expires_at, is_active, show_on_site".into(),
        ));
    }
    let model = global_notifications::update(&state.db, id.into_inner(), changes).await?;
    Ok(HttpResponse::Ok().json(GlobalAdminView::from(&model)))
}

/// Deletes an announcement (admins only); live sockets are told it is gone.
#[utoipa::path(
    delete,
    path = "/api/global-notifications/{id}/",
    tag = "announcements",
    params(("id" = i64, Path, description = "The announcement's id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an admin, or cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 404, description = "No such announcement", body = ErrorBody),
    )
)]
async fn delete(state: web::Data<AppState>, _admin: AdminUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    global_notifications::delete(&state.db, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Success {
        success: true,
        message: "Announcement deleted",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_rfc3339_and_naive_utc() {
        let a = parse_expiry(Some("2026-01-06T10:30:00Z")).expect("ok").expect("some");
        let b = parse_expiry(Some("2026-01-06T12:30:00+02:00"))
            .expect("ok")
            .expect("some");
        let c = parse_expiry(Some("2026-01-06T10:30:00")).expect("ok").expect("some");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(parse_expiry(Some("tomorrow")).is_err());
        assert!(parse_expiry(None).expect("ok").is_none());
    }

    #[test]
    fn expiry_is_at_most_ten_years_ahead_and_may_be_past() {
        assert!(parse_expiry(Some("9999-12-31T23:59:59-14:00")).is_err());
        let nine_years = (Utc::now() + chrono::Duration::days(9 * 365)).to_rfc3339();
        assert!(parse_expiry(Some(&nine_years)).is_ok());
        let eleven_years = (Utc::now() + chrono::Duration::days(11 * 365)).to_rfc3339();
        assert!(parse_expiry(Some(&eleven_years)).is_err());
        assert!(parse_expiry(Some("2001-01-01T00:00:00Z")).is_ok());
    }
}
