//! Accounts, logins, cookies, CSRF and logout.
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN, ADMIN_PASSWORD, Backend, PASSWORD, spawn_app_with};

async fn register_creates_an_account_once(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;

    let (status, body) = app.register("alice", "employer").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["role"], "employer");
    assert!(body["id"].as_i64().is_some());
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());

    let (status, body) = app.register("alice", "jobseeker").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].is_string());
}

async fn register_rejects_bad_input(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let cases = [
        json!({ "username": "ab", "password": PASSWORD, "role": "jobseeker" }),
        json!({ "username": "bad name", "password": PASSWORD, "role": "jobseeker" }),
        json!({ "username": "bob", "password": "short", "role": "jobseeker" }),
        json!({ "username": "bob", "password": PASSWORD, "role": "admin" }),
        json!({ "username": "bob", "password": PASSWORD }),
        json!({ "username": 5, "password": PASSWORD, "role": "jobseeker" }),
        json!([1, 2]),
    ];
    for body in cases {
        let (status, reply) = app.post("/api/auth/register/", None, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply["error"].is_string());
    }
    // Nothing was created: the name is still free.
    let (status, _) = app.register("bob", "jobseeker").await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn login_gives_a_token_and_browser_cookies(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.register("carol", "jobseeker").await;

    let resp = app
        .http
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "username": "carol", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("sessionid="))
        .expect("sessionid cookie");
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("csrftoken="))
        .expect("csrftoken cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"), "{csrf}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["username"], "carol");
    assert_eq!(body["user"]["role"], "jobseeker");
    assert_eq!(body["token"].as_str().unwrap().len(), 64);

    let (status, _) = app
        .post(
            "/api/auth/login/",
            None,
            Some(json!({ "username": "carol", "password": "wrong-password" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/api/auth/login/",
            None,
            Some(json!({ "username": "nobody", "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post("/api/auth/login/", None, Some(json!({ "username": "carol" })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn me_answers_for_bearer_and_cookie(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;

    let (status, body) = app.get("/api/auth/me/", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "id": user.id, "username": user.username, "role": "jobseeker" })
    );

    let resp = app.as_browser(Method::GET, "/api/auth/me/", &user, None).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, body) = app.get("/api/auth/me/", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string());
    let (status, _) = app.get("/api/auth/me/", Some(&"0".repeat(64))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/auth/me/", Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn logout_revokes_the_credential_at_once(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let other_login = app.login(&user.username, PASSWORD).await;
    // Warm the credential cache: revocation must still be immediate.
    assert_eq!(app.get("/api/auth/me/", Some(&user.token)).await.0, StatusCode::OK);

    let (status, _) = app.post("/api/auth/logout/", Some(&user.token), None).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        app.get("/api/auth/me/", Some(&user.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post("/api/auth/logout/", Some(&user.token), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Only the credential used is revoked.
    assert_eq!(
        app.get("/api/auth/me/", Some(&other_login.token)).await.0,
        StatusCode::OK
    );
}

async fn cookie_requests_need_the_csrf_header(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mark_all = "/api/notifications/mark-all-read/";

    let no_header = app.as_browser(Method::POST, mark_all, &user, None).await;
    assert_eq!(no_header.status(), StatusCode::FORBIDDEN);

    let wrong = app
        .as_browser(Method::POST, mark_all, &user, Some(&"f".repeat(64)))
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    // A forged pair (cookie and header agree, but not with the session) fails too.
    let forged = app
        .http
        .post(app.url(mark_all))
        .header(
            "Cookie",
            format!("sessionid={}; csrftoken={}", user.session_cookie, "a".repeat(64)),
        )
        .header("X-CSRFToken", "a".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let right = app
        .as_browser(Method::POST, mark_all, &user, Some(&user.csrf_cookie))
        .await;
    assert_eq!(right.status(), StatusCode::OK);

    // Bearer clients are not subject to CSRF, and GET with a cookie needs no header.
    assert_eq!(
        app.post("/api/notifications/mark-all-read/", Some(&user.token), None)
            .await
            .0,
        StatusCode::OK
    );
    let get = app.as_browser(Method::GET, "/api/notifications/", &user, None).await;
    assert_eq!(get.status(), StatusCode::OK);
}

async fn cookie_logout_clears_the_session(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let resp = app
        .as_browser(Method::POST, "/api/auth/logout/", &user, Some(&user.csrf_cookie))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cleared = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("sessionid=;"));
    assert!(cleared, "logout expires the session cookie");
    let again = app.as_browser(Method::GET, "/api/auth/me/", &user, None).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

async fn bootstrap_admin_exists_with_the_admin_role(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let (status, body) = app.get("/api/auth/me/", Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["username"], ADMIN);
    assert_eq!(body["role"], "admin");
    let user = app.new_user().await;
    let (status, _) = app
        .request(Method::GET, "/api/admin/users/", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.get("/api/admin/users/", Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 2);
    let _ = ADMIN_PASSWORD;
}

async fn expired_logins_are_refused_and_pruned(backend: Backend) {
    use entity::auth_token;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    // A login that expired an hour ago, with a token we know.
    let token = "e".repeat(64);
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    auth_token::ActiveModel {
        user_id: Set(user.id),
        token_hash: Set(herald::auth::token::hash(&token)),
        csrf_token: Set("c".repeat(64)),
        created_at: Set(hour_ago - chrono::Duration::hours(1)),
        expires_at: Set(hour_ago),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    assert_eq!(app.get("/api/auth/me/", Some(&token)).await.0, StatusCode::UNAUTHORIZED);

    let mine = || auth_token::Entity::find().filter(auth_token::Column::UserId.eq(user.id));
    assert_eq!(mine().count(&app.db).await.unwrap(), 2);
    app.login(&user.username, PASSWORD).await;
    assert_eq!(
        mine().count(&app.db).await.unwrap(),
        2,
        "the expired login was pruned, the new one added"
    );
    assert_eq!(app.get("/api/auth/me/", Some(&user.token)).await.0, StatusCode::OK);
}

both_backends!(
    expired_logins_are_refused_and_pruned,
    register_creates_an_account_once,
    register_rejects_bad_input,
    login_gives_a_token_and_browser_cookies,
    me_answers_for_bearer_and_cookie,
    logout_revokes_the_credential_at_once,
    cookie_requests_need_the_csrf_header,
    cookie_logout_clears_the_session,
    bootstrap_admin_exists_with_the_admin_role,
);
