//! The conventions every HTTP reply follows: JSON bodies end with a newline (a known path asked
//! without its trailing slash answers 308 to the slashed one: `routes::redirect_or_not_found`).
use actix_web::{
    Error,
    body::{BodySize, BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
};
use bytes::{BufMut, Bytes, BytesMut};

/// A JSON body as bytes ending with a newline (one copy only when it lacks one).
pub fn with_newline(body: Bytes) -> Bytes {
    if body.ends_with(b"\n") {
        return body;
    }
    let mut out = BytesMut::with_capacity(body.len() + 1);
    out.put_slice(&body);
    out.put_u8(b'\n');
    out.freeze()
}

/// JSON serialized for a reply body: the value and a newline.
pub fn json_line<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our reply types are plain structs of strings and numbers: serializing cannot fail.
    let mut body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    body
}

/// Middleware: every `application/json` reply ends with a newline, whichever handler built it
/// (bodies that already end with one, like the cached lists, pass untouched).
pub async fn json_ends_with_newline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?.map_into_boxed_body();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let body = match body.try_into_bytes() {
        Ok(bytes) => with_newline(bytes),
        // Wrapped by another middleware: read it (a JSON reply is one small buffer).
        Err(body) => match body.size() {
            BodySize::Sized(_) => actix_web::body::to_bytes(body)
                .await
                .map(with_newline)
                .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?,
            _ => return Ok(ServiceResponse::new(req, head.set_body(body))),
        },
    };
    Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_is_added_once() {
        assert_eq!(with_newline(Bytes::from_static(b"{}")), Bytes::from_static(b"{}\n"));
        assert_eq!(with_newline(Bytes::from_static(b"{}\n")), Bytes::from_static(b"{}\n"));
        assert_eq!(json_line(&serde_json::json!({"a": 1})), b"{\"a\":1}\n".to_vec());
    }
}
