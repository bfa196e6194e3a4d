//! The seed's habits every reply follows: 308 to the slashed path, a newline after JSON, and
//! one key order per object wherever it appears.
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode, redirect::Policy};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, PASSWORD, WsClient, spawn_app, spawn_app_with};

/// The next text frame as sent, bytes and key order intact.
async fn next_text(socket: &mut WsClient) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.stream.next())
            .await
            .expect("a push in time")
            .expect("socket open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return text.to_string();
        }
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

#[actix_web::test]
async fn a_known_path_without_its_slash_redirects_with_308_keeping_the_query() {
    let app = spawn_app().await;
    let client = no_redirects();
    for (method, path, location) in [
        (Method::GET, "/api/global-notifications", "/api/global-notifications/"),
        (
            Method::GET,
            "/api/notifications?limit=5&before_id=9",
            "/api/notifications/?limit=5&before_id=9",
        ),
        (Method::POST, "/api/auth/login", "/api/auth/login/"),
        (
            Method::POST,
            "/api/notifications/7/mark-read",
            "/api/notifications/7/mark-read/",
        ),
        (Method::GET, "/admin", "/admin/"),
    ] {
        let resp = client.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT, "{method} {path}");
        assert_eq!(resp.headers()["location"], location, "{method} {path}");
    }
    // A client that follows redirects gets the list (308 keeps the method).
    let (status, body) = app.get("/api/global-notifications", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 0);
    let resp = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": "admin-pass-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Unknown paths, with or without a slash, stay JSON 404s.
    for path in [
        "/api/nothing",
        "/api/nothing/",
        "/api/global-notifications/x/y",
        "//api/auth/me",
    ] {
        let resp = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "not found", "{path}");
    }
}

/// Method, path, Bearer token, JSON body, expected status.
type Case<'a> = (Method, &'a str, Option<&'a str>, Option<serde_json::Value>, StatusCode);

#[actix_web::test]
async fn every_json_reply_ends_with_a_newline() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    app.notify(user.id, "first").await;
    let admin = app.admin_token.clone();
    let requests: Vec<Case> = vec![
        (
            Method::GET,
            "/api/notifications/",
            Some(&user.token),
            None,
            StatusCode::OK,
        ),
        (Method::GET, "/api/global-notifications/", None, None, StatusCode::OK),
        (
            Method::GET,
            "/api/admin/global-notifications/",
            Some(&admin),
            None,
            StatusCode::OK,
        ),
        (Method::GET, "/api/admin/users/", Some(&admin), None, StatusCode::OK),
        (Method::GET, "/api/auth/me/", Some(&user.token), None, StatusCode::OK),
        (
            Method::POST,
            "/api/notifications/",
            Some(&admin),
            Some(json!({"user_id": user.id, "title": "t", "message": "m", "notification_type": "system"})),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            "/api/auth/login/",
            None,
            Some(json!({"username": user.username, "password": PASSWORD})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/notifications/mark-all-read/",
            Some(&user.token),
            None,
            StatusCode::OK,
        ),
        (Method::GET, "/healthz", None, None, StatusCode::OK),
        (Method::GET, "/readyz", None, None, StatusCode::OK),
        (Method::GET, "/api/nothing/", None, None, StatusCode::NOT_FOUND),
        (Method::GET, "/api/notifications/", None, None, StatusCode::UNAUTHORIZED),
        (
            Method::PUT,
            "/api/notifications/",
            Some(&user.token),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/ws/notifications/", None, None, StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/api/auth/register/",
            None,
            Some(json!({"username": "x"})),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, token, body, expected) in requests {
        let mut req = app.http.request(method.clone(), app.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), expected, "{method} {path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        let text = resp.text().await.unwrap();
        assert!(text.ends_with("}\n"), "{method} {path}: {text:?}");
        assert_eq!(text.matches('\n').count(), 1, "{method} {path}: {text:?}");
    }
    // A refused WebSocket handshake (written outside the App) too.
    let resp = app
        .http
        .get(app.url("/ws/notifications/"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.text().await.unwrap(),
        "{\"error\":\"authentication credentials were not provided or are invalid\"}\n"
    );
}

async fn raw(
    app: &crate::helpers::TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> String {
    let mut req = app.http.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let text = req.send().await.unwrap().text().await.unwrap();
    text.trim_end().to_string()
}

both_backends!(an_object_has_the_same_key_order_wherever_it_appears);

async fn an_object_has_the_same_key_order_wherever_it_appears(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let admin = app.admin_token.clone();

    // A user: registered, logged in, `me`, in the admin's list.
    let registered = raw(
        &app,
        Method::POST,
        "/api/auth/register/",
        None,
        Some(json!({"username": "order-user", "password": PASSWORD, "role": "employer"})),
    )
    .await;
    assert!(registered.starts_with(r#"{"id":"#), "{registered}");
    let login = raw(
        &app,
        Method::POST,
        "/api/auth/login/",
        None,
        Some(json!({"username": "order-user", "password": PASSWORD})),
    )
    .await;
    assert!(
        login.ends_with(&format!(r#""user":{registered}}}"#)),
        "{login} vs {registered}"
    );
    let token = serde_json::from_str::<serde_json::Value>(&login).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        raw(&app, Method::GET, "/api/auth/me/", Some(&token), None).await,
        registered
    );
    let users = raw(&app, Method::GET, "/api/admin/users/", Some(&admin), None).await;
    assert!(users.contains(&registered), "{users} lacks {registered}");

    // A notification: the create reply, the list, the push.
    let user_id = serde_json::from_str::<serde_json::Value>(&registered).unwrap()["id"].clone();
    let user = app.login("order-user", PASSWORD).await;
    let mut socket = app.ws(&user).await;
    let created = raw(
        &app,
        Method::POST,
        "/api/notifications/",
        Some(&admin),
        Some(json!({"user_id": user_id, "title": "t", "message": "m", "notification_type": "system", "link": "/x/"})),
    )
    .await;
    let list = raw(&app, Method::GET, "/api/notifications/", Some(&token), None).await;
    assert!(list.contains(&created), "{list} lacks {created}");
    let push = next_text(&mut socket).await;
    assert!(push.contains(&created), "{push} lacks {created}");

    // An announcement: the create reply and the admin list; the public list and the push.
    let created = raw(
        &app,
        Method::POST,
        "/api/global-notifications/",
        Some(&admin),
        Some(json!({"title": "t", "message": "m", "level": "info"})),
    )
    .await;
    let all = raw(
        &app,
        Method::GET,
        "/api/admin/global-notifications/",
        Some(&admin),
        None,
    )
    .await;
    assert!(all.contains(&created), "{all} lacks {created}");
    let public = raw(&app, Method::GET, "/api/global-notifications/", None, None).await;
    let push = next_text(&mut socket).await;
    let pushed = push
        .strip_prefix(r#"{"type":"global_notification","notification":"#)
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("unexpected push {push}"));
    assert!(public.contains(pushed), "{public} lacks {pushed}");
}
