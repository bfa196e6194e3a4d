//! The HTTP surface: one file per resource, each adding its routes to the route table.
//!
//! # Adding a REST route
//! 1. Put `#[utoipa::path(post, path = "/api/things/{id}/", ...)]` on the handler: its request
//!    body (`request_body = T`, `T: ToSchema`), parameters (`params(...)`), every response with
//!    its status (errors as `body = ErrorBody`; the sets several endpoints share, such as
//!    `openapi::BodyErrors`, by name) and `security(...)` (the schemes `openapi.rs` defines).
//! 2. Add it to its module's `routes` function: `table.api(__path_handler, handler);`
//!    (one line: the method and path come from the attribute, so the route is served exactly
//!    where the document says). A segment that must only match some values (`{id:\d+}`, so
//!    that a named path beside it stays its own) goes through
//!    `table.api_matching(__path_handler, handler, "/api/things/{id:\\d+}/")`: documented as
//!    `{id}`, served with the regex.
//!
//! `tests/api/openapi.rs` fails for any route served but not documented, documented but not
//! served, or a method answered at a path that the document does not list.
pub mod admin;
pub mod auth;
pub mod bulk;
pub mod global_notifications;
pub mod health;
pub mod notifications;
pub mod openapi;
pub mod pages;
pub mod preferences;
pub mod table;

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use table::RouteTable;

use crate::error::ApiError;

/// The table of every route: the API, the WebSocket endpoint and the pages.
pub fn table() -> RouteTable {
    let mut table = RouteTable::default();
    auth::routes(&mut table);
    bulk::routes(&mut table);
    notifications::routes(&mut table);
    preferences::routes(&mut table);
    global_notifications::routes(&mut table);
    admin::routes(&mut table);
    health::routes(&mut table);
    table.api(openapi::__path_openapi_json, openapi::openapi_json);
    crate::ws::upgrade::routes(&mut table);
    pages::routes(&mut table);
    table
}

/// Serves every route of [`table`], and its document at `/api/openapi.json`.
pub fn config(cfg: &mut web::ServiceConfig) {
    let table = table();
    cfg.app_data(web::Data::new(openapi::OpenApiJson::new(&openapi::document(&table))));
    table.register(cfg);
}

/// A JSON body as a typed one; a mismatch is 400 like any bad body. (The admin creates take the
/// body as a `Value` first: the `Idempotency-Key` fingerprint is computed from it.)
pub(crate) fn typed<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> Result<T, crate::error::ApiError> {
    T::deserialize(body).map_err(|e| crate::error::ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The `Idempotency-Key` header the admin creates accept (`services::idempotency`), as documented.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Only the document reads it: `services::idempotency` reads the header.
pub(crate) struct IdempotencyKey {
    /// 1 to 255 printable ASCII characters. A retry with the same key by the same admin within
    /// 24 hours gets the first answer again and creates nothing; the same key with a different
    /// request is 422; while the first request still runs, 409.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[\\x20-\\x7e]+$"
    )]
    idempotency_key: Option<String>,
}

/// The App's default service: a known path without its slash is redirected, anything else is
/// the JSON 404. 308 keeps the method and body, so a POST is repeated at the right place.
pub async fn redirect_or_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    // `//host` would be a redirect to another site; no route starts that way anyway.
    if !path.ends_with('/') && !path.starts_with("//") {
        let slashed = format!("{path}/");
        if req.resource_map().has_resource(&slashed) {
            let location = match req.query_string() {
                "" => slashed,
                query => format!("{slashed}?{query}"),
            };
            return Ok(HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, location))
                .finish());
        }
    }
    Err(ApiError::NotFound)
}
