//! The HTTP surface: one file per resource, each with its own `config`.
pub mod admin;
pub mod auth;
pub mod bulk;
pub mod global_notifications;
pub mod health;
pub mod notifications;
pub mod pages;
pub mod preferences;

use actix_web::web;

/// Every route of the API, the WebSocket endpoint and the pages.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::config)
        // Before `notifications`: its `{id}` segment would match `bulk`.
        .configure(bulk::config)
        .configure(notifications::config)
        .configure(preferences::config)
        .configure(global_notifications::config)
        .configure(admin::config)
        .configure(health::config)
        .configure(crate::ws::upgrade::config)
        .configure(pages::config);
}

/// A JSON body as a typed one; a mismatch is 400 like any bad body. (The admin creates take the
/// body as a `Value` first: the `Idempotency-Key` fingerprint is computed from it.)
pub(crate) fn typed<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> Result<T, crate::error::ApiError> {
    T::deserialize(body).map_err(|e| crate::error::ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
