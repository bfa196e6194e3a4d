//! One error type for the whole API, mapped to a status code and a JSON body in one place.
use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    body::MessageBody,
    dev::ServiceResponse,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{StatusCode, header},
    middleware::ErrorHandlerResponse,
    mime,
};
use serde::Serialize;

/// The body of every error reply.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    #[schema(example = "not found")]
    pub error: String,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication credentials were not provided or are invalid")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but refused as it stands (an `Idempotency-Key` reused with another request).
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The request body did not arrive within the request timeout; the connection is closed.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// An abuse limit was reached; the client may try again after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests { retry_after_secs: u64, message: String },
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error")]
    Internal(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // Details of unexpected failures go to the log, never to the client.
        match self {
            ApiError::Database(e) => log::error!("database error: {e}"),
            ApiError::Internal(e) => log::error!("internal error: {e}"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::TooManyRequests { retry_after_secs, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.max(&1).to_string()));
            }
            ApiError::RequestTimeout => {
                response.force_close();
            }
            _ => {}
        }
        // Ends with a newline itself: WebSocket refusals are written without the App's middleware.
        response
            .content_type(mime::APPLICATION_JSON)
            .body(crate::http_conventions::json_line(&ErrorBody {
                error: self.to_string(),
            }))
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Body errors of `web::Json`: wrong content type 415, too large 413, otherwise 400.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::Payload(e) if crate::limits::request_timeout::is_timeout(&e) => ApiError::RequestTimeout,
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        other => ApiError::BadRequest(format!("invalid JSON body: {other}")),
    }
    .into()
}

/// A path segment that does not parse (a non-numeric or out-of-range id) names nothing: 404.
pub fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound.into()
}

/// A malformed query string.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

/// Unknown routes.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Rewrites any error response that is not already JSON (405 from routing, 400 from a bad
/// WebSocket handshake, ...) into `{"error": ...}`, so no client ever sees an empty or HTML body.
pub fn ensure_json_body<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed".to_string(),
        StatusCode::NOT_FOUND => "not found".to_string(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (req, res) = res.into_parts();
    let mut builder = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    let new = builder.json(ErrorBody { error: message });
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}
