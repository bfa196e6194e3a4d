//! Double-submit CSRF for cookie-authenticated unsafe requests.
//!
//! The `csrftoken` cookie (readable by page script) must be echoed in `X-CSRFToken`, and both
//! must equal the value bound to the session at login, so a forged cookie alone does not pass.
use actix_web::{HttpRequest, http::Method};

use super::Credential;

/// The cookie holding the session token.
pub const SESSION_COOKIE: &str = "sessionid";
/// The cookie holding the CSRF value.
pub const CSRF_COOKIE: &str = "csrftoken";
/// The header a page sends it back in.
pub const CSRF_HEADER: &str = "X-CSRFToken";

/// Methods that change state and so need the check.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether the request carries the session's CSRF value in both cookie and header.
pub fn passes(req: &HttpRequest, credential: &Credential) -> bool {
    let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let cookie = req.cookie(CSRF_COOKIE);
    match (header, cookie) {
        (Some(header), Some(cookie)) => header == cookie.value() && header == credential.csrf_token,
        _ => false,
    }
}
