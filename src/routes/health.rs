//! `/healthz` (the process serves) and `/readyz` (the database and the channel layer answer).
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::table::RouteTable;
use crate::state::AppState;

pub fn routes(table: &mut RouteTable) {
    table.api(__path_healthz, healthz).api(__path_readyz, readyz);
}

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
struct Alive {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `{"database": bool, "channel_layer": bool}`: which dependency answers.
#[derive(Serialize, ToSchema)]
struct Readiness {
    database: bool,
    channel_layer: bool,
}

/// The process serves (liveness).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Serving", body = Alive))
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok" })
}

/// The database and the channel layer answer (readiness).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency does not answer", body = Readiness),
    )
)]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.db.ping().await.is_ok();
    let layer = state.layer.is_ready();
    let body = Readiness {
        database,
        channel_layer: layer,
    };
    if database && layer {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
