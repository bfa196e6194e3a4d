//! `/api/global-notifications/`: the public list of live announcements; admins publish and deactivate.
use actix_web::{HttpResponse, mime, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::table::RouteTable;
use crate::{
    auth::AdminUser,
    domain,
    error::{ApiError, ErrorBody},
    payloads::{GlobalAdminView, GlobalView},
    services::global_notifications::{self, GlobalList, NewGlobal},
    state::AppState,
};

pub fn routes(table: &mut RouteTable) {
    table
        .api(__path_list_live, list_live)
        .api(__path_create, create)
        .api(__path_update, update)
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
    /// RFC 3339 (a time without an offset is UTC); `null` or absent: never expires.
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

/// RFC 3339; a time without an offset is taken as UTC (as the seed's Django does).
fn parse_expiry(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(raw, format) {
            return Ok(Some(naive.and_utc()));
        }
    }
    Err(ApiError::BadRequest(
        "expires_at must be an RFC 3339 timestamp or null".into(),
    ))
}

/// Publishes an announcement; if live, every socket gets it (admins only).
#[utoipa::path(
    post,
    path = "/api/global-notifications/",
    tag = "announcements",
    request_body = CreateBody,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The new announcement", body = GlobalAdminView),
        (status = 400, description = "Invalid field or JSON", body = ErrorBody),
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
    let new = NewGlobal {
        title: domain::required_text("title", &body.title, domain::TITLE_MAX_CHARS)?,
        message: domain::required_text("message", &body.message, domain::MESSAGE_MAX_CHARS)?,
        level: domain::level(&body.level)?,
        expires_at: parse_expiry(body.expires_at.as_deref())?,
        is_active: body.is_active.unwrap_or(true),
        show_on_site: body.show_on_site.unwrap_or(true),
    };
    let model = global_notifications::create(&state.db, new).await?;
    Ok(HttpResponse::Created().json(GlobalAdminView::from(&model)))
}

/// At least one of the two flags.
#[derive(Deserialize, ToSchema)]
#[schema(as = AnnouncementFlags)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    show_on_site: Option<bool>,
}

/// Sets an announcement's flags (admins only).
#[utoipa::path(
    patch,
    path = "/api/global-notifications/{id}/",
    tag = "announcements",
    params(("id" = i64, Path, description = "The announcement's id")),
    request_body = UpdateBody,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The announcement as updated", body = GlobalAdminView),
        (status = 400, description = "No flag given, an unknown field, or invalid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not an admin, or cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        (status = 404, description = "No such announcement", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = ErrorBody),
    )
)]
async fn update(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    if body.is_active.is_none() && body.show_on_site.is_none() {
        return Err(ApiError::BadRequest("send is_active and/or show_on_site".into()));
    }
    let model = global_notifications::set_flags(&state.db, id.into_inner(), body.is_active, body.show_on_site).await?;
    Ok(HttpResponse::Ok().json(GlobalAdminView::from(&model)))
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
}
