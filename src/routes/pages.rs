//! The browser pages and `herald.js`, embedded in the binary (no files to deploy beside it),
//! served with the headers that keep them from being framed, sniffed or fed foreign script.
use actix_web::{HttpResponse, http::header, web};
use rust_embed::RustEmbed;

use super::table::RouteTable;
use crate::error::ApiError;

/// Only our own files run, load and connect (no inline script, so injected markup cannot run
/// code); nothing may frame a page (clickjacking of a signed-in page).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Pages are HTML for browsers, not part of the REST API: kept out of the OpenAPI document.
const WHY: &str = "a browser page or asset, not REST";

pub fn routes(table: &mut RouteTable) {
    table
        .undocumented("/", WHY, web::get().to(index))
        .undocumented("/admin/", WHY, web::get().to(admin))
        .undocumented("/static/{path:.*}", WHY, web::get().to(asset));
}

fn serve(path: &str) -> Result<HttpResponse, ApiError> {
    let file = Assets::get(path).ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        // For browsers older than `frame-ancestors`.
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Links out of Herald (a notification's) do not tell the other site which page was open.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(file.data.into_owned()))
}

async fn index() -> Result<HttpResponse, ApiError> {
    serve("index.html")
}

async fn admin() -> Result<HttpResponse, ApiError> {
    serve("admin.html")
}

async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&path)
}
