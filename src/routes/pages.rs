//! The browser pages and `herald.js`, embedded in the binary (no files to deploy beside it).
use actix_web::{HttpResponse, http::header, web};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(index)))
        .service(web::resource("/admin/").route(web::get().to(admin)))
        .service(web::resource("/static/{path:.*}").route(web::get().to(asset)));
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
