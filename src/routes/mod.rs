//! The HTTP surface: one file per resource, each adding its routes to the route table.
//!
//! # Adding a REST route
//! 1. Put `#[utoipa::path(post, path = "/api/things/{id}/", ...)]` on the handler: its request
//!    body (`request_body = T`, `T: ToSchema`), parameters (`params(...)`), every response with
//!    its status (errors as `body = ErrorBody`) and `security(...)` (see `auth::config`).
//! 2. Add it to its module's `routes` function: `table.api(__path_handler, handler);`
//!    (one line: the method and path come from the attribute, so the route is served exactly
//!    where the document says).
//!
//! `tests/api/openapi.rs` fails for any route served but not documented, documented but not
//! served, or a method answered at a path that the document does not list.
pub mod admin;
pub mod auth;
pub mod global_notifications;
pub mod health;
pub mod notifications;
pub mod openapi;
pub mod pages;
pub mod table;

use actix_web::web;

use table::RouteTable;

/// The table of every route: the API, the WebSocket endpoint and the pages.
pub fn table() -> RouteTable {
    let mut table = RouteTable::default();
    auth::routes(&mut table);
    notifications::routes(&mut table);
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
