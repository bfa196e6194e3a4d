//! Extractors yielding the authenticated caller: `CurrentUser`, and `AdminUser` for admin routes.
use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest,
    cookie::Cookie,
    dev::Payload,
    http::header::{self, HeaderMap},
    web,
};

use super::{AuthUser, Credential, csrf};
use crate::{error::ApiError, state::AppState};

/// How a request presented its credential.
pub enum Presented {
    Bearer(String),
    Cookie(String),
    Nothing,
}

/// The credential in the request headers: a Bearer header wins over the session cookie.
pub fn presented(headers: &HeaderMap) -> Presented {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        return Presented::Bearer(token);
    }
    let session_cookie = headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse_encoded(pair.trim()).ok())
        .find(|c| c.name() == csrf::SESSION_COOKIE);
    match session_cookie {
        Some(cookie) => Presented::Cookie(cookie.value().to_string()),
        None => Presented::Nothing,
    }
}

/// The authenticated caller of a request: the credential it presented.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub credential: Credential,
}

impl CurrentUser {
    /// The account behind the credential.
    pub fn user(&self) -> &AuthUser {
        &self.credential.user
    }

    async fn from_request(req: HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
        let (token, via_cookie) = match presented(req.headers()) {
            Presented::Bearer(token) => (token, false),
            Presented::Cookie(token) => (token, true),
            Presented::Nothing => return Err(ApiError::Unauthorized),
        };
        let credential = state.auth.authenticate(&token).await?.ok_or(ApiError::Unauthorized)?;
        if via_cookie && csrf::is_unsafe(req.method()) && !csrf::passes(&req, &credential) {
            return Err(ApiError::Forbidden(
                "CSRF check failed: send the csrftoken cookie's value in X-CSRFToken".into(),
            ));
        }
        Ok(Self { credential })
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(Self::from_request(req.clone()))
    }
}

/// An authenticated caller with the admin role; others get 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let current = CurrentUser::from_request(req).await?;
            if current.user().is_admin() {
                Ok(AdminUser(current))
            } else {
                Err(ApiError::Forbidden("this action needs the admin role".into()))
            }
        })
    }
}
