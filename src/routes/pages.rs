//! The browser pages and `herald.js`, embedded in the binary (no files to deploy beside it).
use actix_web::{HttpResponse, http::header, web};
use rust_embed::RustEmbed;

use super::table::RouteTable;
use crate::error::ApiError;

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
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    Ok(HttpResponse::Ok()
        .content_type(mime.as_ref())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
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
