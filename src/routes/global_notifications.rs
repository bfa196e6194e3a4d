//! `/api/global-notifications/`: the public list of live announcements; admins publish, edit and delete.
use actix_web::{HttpRequest, HttpResponse, mime, web};
use chrono::{DateTime, Months, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::{
    auth::AdminUser,
    domain,
    error::ApiError,
    payloads::GlobalAdminView,
    routes::typed,
    services::{
        global_notifications::{self, GlobalChanges, GlobalList, NewGlobal},
        idempotency::{self, Answer},
    },
    state::AppState,
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/global-notifications/")
            .route(web::get().to(list_live))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/global-notifications/{id}/")
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/api/admin/global-notifications/").route(web::get().to(list_all)));
}

async fn list_live(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.live_globals.body(&state.db).await?;
    Ok(HttpResponse::Ok().content_type(mime::APPLICATION_JSON).body(body))
}

async fn list_all(state: web::Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let all = global_notifications::all(&state.db).await?;
    let items: Vec<GlobalAdminView> = all.iter().map(GlobalAdminView::from).collect();
    Ok(HttpResponse::Ok().json(GlobalList {
        count: items.len(),
        notifications: items,
    }))
}

#[derive(Deserialize)]
struct CreateBody {
    title: String,
    message: String,
    level: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<String>>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    show_on_site: Option<bool>,
}

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

async fn delete(state: web::Data<AppState>, _admin: AdminUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    global_notifications::delete(&state.db, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Announcement deleted" })))
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
