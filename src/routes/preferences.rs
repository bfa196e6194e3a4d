//! `/api/preferences/`: the caller's muted notification types.
use actix_web::{HttpResponse, web};
use entity::notification::NotificationType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{openapi::BodyErrors, table::RouteTable};
use crate::{
    auth::CurrentUser,
    error::{ApiError, ErrorBody},
    services::preferences,
    state::AppState,
    type_set::TypeSet,
};

pub fn routes(table: &mut RouteTable) {
    table.api(__path_show, show).api(__path_update, update);
}

/// `{"muted_types": [...]}`: the types whose notifications are stored but not pushed live.
#[derive(Serialize, ToSchema)]
struct MutedTypes {
    #[schema(value_type = Vec<String>)]
    muted_types: Vec<NotificationType>,
}

fn shape(muted: TypeSet) -> HttpResponse {
    HttpResponse::Ok().json(MutedTypes {
        muted_types: muted.iter().collect(),
    })
}

/// The caller's preferences.
#[utoipa::path(
    get,
    path = "/api/preferences/",
    tag = "preferences",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller's muted types", body = MutedTypes),
        (status = 401, description = "Not logged in", body = ErrorBody),
    )
)]

async fn show(state: web::Data<AppState>, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    Ok(shape(preferences::muted(&state.db, current.user().id).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = PreferencesUpdate)]
struct Preferences {
    /// The types to mute (the others are unmuted): `job_application`, `job_post`, `message`,
    /// `profile_view`, `post_like`, `connection` (`system` cannot be muted: 400).
    #[schema(inline, value_type = Vec<String>)]
    muted_types: Vec<String>,
}

/// Replaces the caller's muted types.
#[utoipa::path(
    put,
    path = "/api/preferences/",
    tag = "preferences",
    request_body = Preferences,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The caller's muted types, as stored", body = MutedTypes),
        (status = 400, description = "An unknown type, or invalid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
        BodyErrors,
    )
)]

async fn update(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<Preferences>,
) -> Result<HttpResponse, ApiError> {
    let muted = preferences::parse_muted(body.muted_types.iter().map(String::as_str))?;
    preferences::set_muted(&state.db, &state.hub, current.user().id, muted).await?;
    Ok(shape(muted))
}
