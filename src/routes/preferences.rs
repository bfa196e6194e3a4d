//! `/api/preferences/`: the caller's muted notification types.
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::{auth::CurrentUser, error::ApiError, services::preferences, state::AppState, type_set::TypeSet};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/preferences/")
            .route(web::get().to(show))
            .route(web::put().to(update)),
    );
}

fn shape(muted: TypeSet) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "muted_types": muted.names() }))
}

async fn show(state: web::Data<AppState>, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    Ok(shape(preferences::muted(&state.db, current.user().id).await?))
}

#[derive(Deserialize)]
struct Preferences {
    muted_types: Vec<String>,
}

async fn update(
    state: web::Data<AppState>,
    current: CurrentUser,
    body: web::Json<Preferences>,
) -> Result<HttpResponse, ApiError> {
    let muted = preferences::parse_muted(body.muted_types.iter().map(String::as_str))?;
    preferences::set_muted(&state.db, &state.hub, current.user().id, muted).await?;
    Ok(shape(muted))
}
