//! `/api/global-notifications/`: the public list of live announcements; admins publish and deactivate.
use actix_web::{HttpResponse, mime, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::{
    auth::AdminUser,
    domain,
    error::ApiError,
    payloads::GlobalAdminView,
    services::global_notifications::{self, GlobalList, NewGlobal},
    state::AppState,
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/global-notifications/")
            .route(web::get().to(list_live))
            .route(web::post().to(create)),
    )
    .service(web::resource("/api/global-notifications/{id}/").route(web::patch().to(update)))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
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
