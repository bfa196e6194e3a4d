//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every REST endpoint, built from the
//! route table (`table`) and the `#[utoipa::path]` of each handler, and the sets of error
//! replies those attributes share.
use actix_web::{HttpResponse, mime, web};
use utoipa::{
    IntoResponses, Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::table::RouteTable;
use crate::error::ErrorBody;

/// Security scheme names, as the operations' `security(...)` attributes spell them.
pub const BEARER: &str = "bearer";
pub const SESSION: &str = "session";
pub const CSRF: &str = "csrf";

const DESCRIPTION: &str = "\
Herald's REST API. Every error is JSON `{\"error\": \"...\"}`.

**Authentication**: `Authorization: Bearer <token>` (the token from `POST /api/auth/login/`), or \
the `sessionid` cookie the same login sets. A cookie-authenticated unsafe request (POST, PUT, \
PATCH, DELETE) must also echo the `csrftoken` cookie in the `X-CSRFToken` header, or it answers 403.

**Conventions**: the API's paths end with `/` (this document's and the health checks' do \
not); a known path asked without it answers 308 to the slashed one. A known path asked with a method it does not serve answers 405 \
`{\"error\": \"method not allowed\"}`. JSON bodies are limited in size (413) and must be sent \
as `application/json` (415).

**WebSocket** (OpenAPI cannot describe a socket): `GET /ws/notifications/` upgrades, \
authenticated by `Authorization: Bearer` on the handshake or by the session cookie from an \
allowed `Origin`; refusals come before the upgrade as the JSON errors above (401, 403). The \
server sends `{\"type\": \"notification\", \"notification\": {...}}` (a notification as listed \
below), `{\"type\": \"global_notification\", \"notification\": {...}}` (a live announcement), \
`{\"type\": \"global_notification_removed\", \"id\": N}`, \
`{\"type\": \"notification_read\" | \"notification_unread\" | \"notification_deleted\", \
\"notification_ids\": [...], \"unread_count\": N}` and \
`{\"type\": \"error\", \"error\": \"...\"}`; the client may send \
`{\"action\": \"mark_read\", \"notification_id\": N}`. Close codes (the README has them all): \
1001 shutdown, 1007 a text frame that is not UTF-8, 1008 too many invalid messages or too slow, \
1009 frame too large, 4001 login revoked.

**Not in this document**: the pages (`/`, `/admin/`, `/static/...`), the WebSocket above, and \
`/metrics`, which is served on its own listener.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald", description = DESCRIPTION),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes)
)]
struct Base;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token `POST /api/auth/login/` returns."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sessionid",
                "The session cookie `POST /api/auth/login/` sets.",
            ))),
        );
        components.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRFToken",
                "The `csrftoken` cookie's value; required with the session cookie on unsafe methods.",
            ))),
        );
    }
}

/// The refusals of every endpoint that reads a JSON body, made before its handler runs
/// (`error::json_error`, `limits::request_timeout`). An attribute names the set once:
/// `responses((status = 200, ...), BodyErrors)`.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only the document reads it: `ApiError` makes these replies.
pub enum BodyErrors {
    #[response(status = 408, description = "The body did not arrive within the request timeout")]
    Timeout(ErrorBody),
    #[response(status = 413, description = "Body too large")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "Body is not `application/json`")]
    NotJson(ErrorBody),
}

/// The refusals every admin create shares (a notification, a bulk notification, an
/// announcement): who may call it, and its `Idempotency-Key`. Each names its own 201 and 400,
/// and [`BodyErrors`].
#[derive(IntoResponses)]
#[allow(dead_code)] // Only the document reads it: `ApiError` makes these replies.
pub enum AdminCreateErrors {
    #[response(status = 401, description = "Not logged in")]
    NotLoggedIn(ErrorBody),
    #[response(
        status = 403,
        description = "Not an admin, or cookie request without a matching `X-CSRFToken`"
    )]
    NotAdmin(ErrorBody),
    #[response(
        status = 409,
        description = "The first request with this `Idempotency-Key` is still running"
    )]
    KeyInProgress(ErrorBody),
    #[response(
        status = 422,
        description = "This `Idempotency-Key` was used with a different request"
    )]
    KeyReused(ErrorBody),
}

/// The document of the routes in `table`.
pub fn document(table: &RouteTable) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.paths.paths.extend(table.paths().paths.clone());
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(table.schemas().iter().cloned());
    doc
}

/// The document serialized once per worker, as `GET /api/openapi.json` sends it.
pub struct OpenApiJson(pub Vec<u8>);

impl OpenApiJson {
    /// Serializes `document` (plain maps and strings: cannot fail in practice).
    pub fn new(document: &utoipa::openapi::OpenApi) -> Self {
        Self(crate::http_conventions::json_line(document))
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(doc.0.clone())
}

#[cfg(test)]
mod tests {
    use entity::{global_notification::Level, notification::NotificationType};
    use sea_orm::ActiveEnum;
    use serde_json::Value;

    use crate::domain;

    fn schema(doc: &Value, name: &str, field: &str) -> Value {
        doc["components"]["schemas"][name]["properties"][field].clone()
    }

    /// The limits written in the attributes are the ones the handlers enforce.
    #[test]
    fn documented_limits_match_the_domain() {
        let doc = serde_json::to_value(super::document(&crate::routes::table())).expect("serializes");
        for name in ["NewNotification", "NewAnnouncement"] {
            assert_eq!(schema(&doc, name, "title")["maxLength"], domain::TITLE_MAX_CHARS);
            assert_eq!(schema(&doc, name, "message")["maxLength"], domain::MESSAGE_MAX_CHARS);
        }
        assert_eq!(
            schema(&doc, "NewNotification", "link")["maxLength"],
            domain::LINK_MAX_CHARS
        );
        let types = schema(&doc, "NewNotification", "notification_type")["pattern"].to_string();
        assert!(NotificationType::values().iter().all(|t| types.contains(t)), "{types}");
        let levels = schema(&doc, "NewAnnouncement", "level")["pattern"].to_string();
        assert!(Level::values().iter().all(|l| levels.contains(l)), "{levels}");
    }
}
