//! `/api/auth/`: register, login, logout, me.
use actix_web::{
    HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::header::{CACHE_CONTROL, HeaderValue},
    web,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{openapi::BodyErrors, table::RouteTable};
use crate::{
    auth::{AuthUser, CurrentUser, csrf},
    domain::{self, Password, Username},
    error::{ApiError, ErrorBody},
    hub::messages::RevokeCredential,
    limits::{ClientAddr, keyed::Decision, login::name_key, too_many},
    state::AppState,
};

/// Replies carrying a token or the account must not be stored by browsers or proxies.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

pub fn routes(table: &mut RouteTable) {
    table
        .api(__path_register, register)
        .api(__path_login, login)
        .api(__path_logout, logout)
        .api(__path_me, me);
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    /// 3 to 150 letters, digits, `_`, `.` or `-`.
    #[schema(example = "alice", pattern = "^[A-Za-z0-9_.-]{3,150}$")]
    username: String,
    /// 8 to 1024 characters.
    #[schema(example = "alice-pass-123", min_length = 8, max_length = 1024)]
    password: String,
    /// `jobseeker` or `employer` (admins are made with `herald create-admin`).
    #[schema(example = "jobseeker", pattern = "^(jobseeker|employer)$")]
    role: String,
}

/// Creates an account.
#[utoipa::path(
    post,
    path = "/api/auth/register/",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new account", body = AuthUser),
        (status = 400, description = "Invalid username, password, role or JSON", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        BodyErrors,
        (status = 429, description = "Too many registrations from this address",
            headers(("Retry-After" = u64, description = "Seconds to wait")), body = ErrorBody),
    )
)]
async fn register(
    state: web::Data<AppState>,
    client: ClientAddr,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    // Every well-formed attempt counts (a taken name or a bad field too), before any hashing
    // or database work.
    if let Decision::Refused { retry_after } = state.http_limits.registrations.check(&client.0) {
        return Err(too_many(
            retry_after,
            "too many registrations from this address; try again later",
        ));
    }
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let role = domain::registrable_role(&body.role)?;
    let user = state.auth.register(&username, &password, role).await?;
    Ok(HttpResponse::Created().json(AuthUser::from(&user)))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    #[schema(example = "alice", min_length = 1)]
    username: String,
    #[schema(example = "alice-pass-123", min_length = 1)]
    password: String,
}

const LOGIN_LOCKED: &str = "too many failed logins; try again later";

/// Logs in: returns a Bearer token and sets the `sessionid` and `csrftoken` cookies.
#[utoipa::path(
    post,
    path = "/api/auth/login/",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginReply),
        (status = 400, description = "Missing username or password, or invalid JSON", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        BodyErrors,
        (status = 429, description = "Too many failed logins for this username or address",
            headers(("Retry-After" = u64, description = "Seconds to wait")), body = ErrorBody),
    )
)]
async fn login(
    state: web::Data<AppState>,
    client: ClientAddr,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::BadRequest("username and password are required".into()));
    }
    let limiter = &state.http_limits.login;
    let name = name_key(&body.username);
    // A locked name or address is refused before Argon2 runs: a flood costs no hashing time,
    // so other users' logins do not queue behind it.
    limiter
        .admit(name.as_deref(), client.0)
        .map_err(|wait| too_many(wait, LOGIN_LOCKED))?;
    let login = match state.auth.login(&body.username, &body.password).await {
        Err(ApiError::Unauthorized) => {
            limiter
                .failed(name.as_deref(), client.0)
                .map_err(|wait| too_many(wait, LOGIN_LOCKED))?;
            return Err(ApiError::Unauthorized);
        }
        other => other?,
    };
    let max_age = CookieDuration::seconds((login.credential.expires_at - chrono::Utc::now()).num_seconds().max(0));
    let secure = state.settings.auth.secure_cookies;
    let session = Cookie::build(csrf::SESSION_COOKIE, login.token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(max_age)
        .finish();
    // Readable by page script, which echoes it in X-CSRFToken.
    let csrf_cookie = Cookie::build(csrf::CSRF_COOKIE, login.credential.csrf_token.clone())
        .path("/")
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(max_age)
        .finish();
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, NO_STORE))
        .cookie(session)
        .cookie(csrf_cookie)
        .json(LoginReply {
            token: &login.token,
            user: &login.credential.user,
        }))
}

#[derive(Serialize, ToSchema)]
struct LoginReply<'a> {
    /// The Bearer token (also the `sessionid` cookie's value).
    token: &'a str,
    user: &'a AuthUser,
}

/// `{"success": true, "message": "..."}`, the seed's reply to an action.
#[derive(Serialize, ToSchema)]
pub struct Success<'a> {
    pub success: bool,
    pub message: &'a str,
}

/// Revokes the credential used (its sockets close with 4001) and clears the cookies.
#[utoipa::path(
    post,
    path = "/api/auth/logout/",
    tag = "auth",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Logged out", body = Success),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Cookie request without a matching `X-CSRFToken`", body = ErrorBody),
    )
)]
async fn logout(state: web::Data<AppState>, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    state.auth.revoke(&current.credential).await?;
    state.hub.do_send(RevokeCredential {
        credential_id: current.credential.id,
        token_hash: current.credential.token_hash.clone(),
    });
    let mut response = HttpResponse::Ok();
    for name in [csrf::SESSION_COOKIE, csrf::CSRF_COOKIE] {
        let mut gone = Cookie::build(name, "").path("/").finish();
        gone.make_removal();
        response.cookie(gone);
    }
    Ok(response.json(Success {
        success: true,
        message: "Logged out",
    }))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/auth/me/",
    tag = "auth",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller", body = AuthUser),
        (status = 401, description = "Not logged in", body = ErrorBody),
    )
)]
async fn me(current: CurrentUser) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, NO_STORE))
        .json(current.user())
}
