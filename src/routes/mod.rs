//! The HTTP surface: one file per resource, each with its own `config`.
pub mod admin;
pub mod auth;
pub mod global_notifications;
pub mod health;
pub mod notifications;
pub mod pages;
pub mod preferences;

use actix_web::web;

/// Every route of the API, the WebSocket endpoint and the pages.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::config)
        .configure(notifications::config)
        .configure(preferences::config)
        .configure(global_notifications::config)
        .configure(admin::config)
        .configure(health::config)
        .configure(crate::ws::upgrade::config)
        .configure(pages::config);
}
