//! `/api/auth/`: register, login, logout, me.
use actix_web::{
    HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::header::{CACHE_CONTROL, HeaderValue},
    web,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    auth::{AuthUser, CurrentUser, csrf},
    domain::{Password, Role, Username},
    error::ApiError,
    hub::messages::RevokeCredential,
    limits::{ClientAddr, keyed::Decision, login::name_key, too_many},
    state::AppState,
};

/// Replies carrying a token or the account must not be stored by browsers or proxies.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/auth/register/").route(web::post().to(register)))
        .service(web::resource("/api/auth/login/").route(web::post().to(login)))
        .service(web::resource("/api/auth/logout/").route(web::post().to(logout)))
        .service(web::resource("/api/auth/me/").route(web::get().to(me)));
}

#[derive(Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
    role: String,
}

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
    let role = Role::parse_registrable(&body.role)?;
    let user = state.auth.register(&username, &password, role).await?;
    Ok(HttpResponse::Created().json(AuthUser::from(&user)))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

const LOGIN_LOCKED: &str = "too many failed logins; try again later";

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

#[derive(Serialize)]
struct LoginReply<'a> {
    token: &'a str,
    user: &'a AuthUser,
}

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
    Ok(response.json(json!({ "success": true, "message": "Logged out" })))
}

async fn me(current: CurrentUser) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, NO_STORE))
        .json(current.user())
}
