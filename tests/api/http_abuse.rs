//! Hostile HTTP clients: failed-login and registration limits, who the client is behind a
//! proxy, stalled requests, and the headers that protect the pages.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{ADMIN, ADMIN_PASSWORD, Backend, PASSWORD, TestApp, default_limits, spawn_app_with};

/// A login attempt; answers the status, the `Retry-After` header and the JSON body.
async fn try_login(app: &TestApp, username: &str, password: &str) -> (StatusCode, Option<u64>, Value) {
    let resp = app
        .http
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    reply(resp).await
}

/// A registration, sent with `X-Forwarded-For: forwarded` when given.
async fn try_register(app: &TestApp, username: &str, forwarded: Option<&str>) -> (StatusCode, Option<u64>, Value) {
    let mut req = app
        .http
        .post(app.url("/api/auth/register/"))
        .json(&json!({ "username": username, "password": PASSWORD, "role": "jobseeker" }));
    if let Some(forwarded) = forwarded {
        req = req.header("X-Forwarded-For", forwarded);
    }
    reply(req.send().await.unwrap()).await
}

async fn reply(resp: reqwest::Response) -> (StatusCode, Option<u64>, Value) {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().expect("Retry-After in seconds"));
    let body: Value = resp.json().await.expect("JSON body");
    (status, retry_after, body)
}

async fn failed_logins_lock_the_name_even_for_the_right_password(backend: Backend) {
    let app = spawn_app_with(backend, default_limits).await;
    assert_eq!(app.register("victim", "jobseeker").await.0, StatusCode::CREATED);
    assert_eq!(app.register("bystander", "jobseeker").await.0, StatusCode::CREATED);

    for attempt in 1..=10 {
        let (status, _, body) = try_login(&app, "victim", "wrong-password").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "failure {attempt} is still an ordinary 401"
        );
        assert!(body["error"].is_string());
    }
    let (status, retry_after, body) = try_login(&app, "victim", "wrong-password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the 11th failure is refused");
    assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "{retry_after:?}");
    assert!(body["error"].is_string());

    // Another spelling of the name is the same account, and the same lock.
    for name in ["victim", "VICTIM"] {
        let (status, retry_after, body) = try_login(&app, name, PASSWORD).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "the right password waits out the lock"
        );
        assert!(retry_after.is_some());
        assert!(body.get("token").is_none(), "{body}");
    }

    // Another account from the same address still logs in.
    let (status, _, body) = try_login(&app, "bystander", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"].is_string());
}

async fn successful_logins_do_not_count_against_the_name(backend: Backend) {
    let app = spawn_app_with(backend, default_limits).await;
    app.register("regular", "jobseeker").await;
    for _ in 0..12 {
        let (status, _, _) = try_login(&app, "regular", PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "only failures count");
    }
    for _ in 0..9 {
        assert_eq!(
            try_login(&app, "regular", "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(try_login(&app, "regular", PASSWORD).await.0, StatusCode::OK);
}

async fn failed_logins_per_address_lock_every_name_from_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        default_limits(s);
        s.limits.login_failures_per_address_per_minute = 3;
        s.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    app.register("target", "jobseeker").await;
    let login_from = |name: &'static str, forwarded: &'static str, password: &'static str| {
        let req = app
            .http
            .post(app.url("/api/auth/login/"))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({ "username": name, "password": password }));
        async move { reply(req.send().await.unwrap()).await }
    };
    for name in ["nobody1", "nobody2", "this is no valid name"] {
        assert_eq!(login_from(name, "198.51.100.7", "x").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after, _) = login_from("target", "198.51.100.7", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked for every name"
    );
    assert!(retry_after.is_some());
    assert_eq!(login_from("target", "198.51.100.8", PASSWORD).await.0, StatusCode::OK);
}

async fn registrations_per_address_are_limited(backend: Backend) {
    let app = spawn_app_with(backend, default_limits).await;
    for i in 0..20 {
        let (status, _, body) = try_register(&app, &format!("farm{i}"), None).await;
        assert_eq!(status, StatusCode::CREATED, "registration {i}: {body}");
    }
    let (status, retry_after, body) = try_register(&app, "farm20", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "{retry_after:?}");
    assert!(body["error"].is_string());
    // Nothing was created by the refused request.
    let (status, _, _) = try_login(&app, "farm20", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_trusted_proxy_splits_the_limit_per_forwarded_client(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        default_limits(s);
        s.limits.registrations_per_address_per_minute = 2;
        s.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    // The client may write what it likes left of the proxy's entry: only the proxy's is believed.
    for (i, forwarded) in ["1.1.1.1, 203.0.113.1", "2.2.2.2, 203.0.113.1"].iter().enumerate() {
        assert_eq!(
            try_register(&app, &format!("one{i}"), Some(forwarded)).await.0,
            StatusCode::CREATED
        );
    }
    let (status, _, _) = try_register(&app, "one2", Some("3.3.3.3, 203.0.113.1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        try_register(&app, "two0", Some("203.0.113.2")).await.0,
        StatusCode::CREATED
    );
}

async fn an_untrusted_peer_cannot_forward_its_way_around_the_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        default_limits(s);
        s.limits.registrations_per_address_per_minute = 2;
    })
    .await;
    for (i, forwarded) in ["203.0.113.1", "203.0.113.2"].iter().enumerate() {
        assert_eq!(
            try_register(&app, &format!("spoof{i}"), Some(forwarded)).await.0,
            StatusCode::CREATED
        );
    }
    let (status, _, _) = try_register(&app, "spoof2", Some("203.0.113.3")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "X-Forwarded-For from an untrusted peer is ignored"
    );
}

async fn limits_at_zero_are_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        default_limits(s);
        s.limits.login_failures_per_username_per_minute = 0;
        s.limits.registrations_per_address_per_minute = 0;
    })
    .await;
    for _ in 0..12 {
        assert_eq!(
            try_login(&app, ADMIN, "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(try_login(&app, ADMIN, ADMIN_PASSWORD).await.0, StatusCode::OK);
    for i in 0..22 {
        assert_eq!(
            try_register(&app, &format!("free{i}"), None).await.0,
            StatusCode::CREATED
        );
    }
}

both_backends!(
    failed_logins_lock_the_name_even_for_the_right_password,
    successful_logins_do_not_count_against_the_name,
    failed_logins_per_address_lock_every_name_from_it,
    registrations_per_address_are_limited,
    a_trusted_proxy_splits_the_limit_per_forwarded_client,
    an_untrusted_peer_cannot_forward_its_way_around_the_limit,
    limits_at_zero_are_off,
    links_must_stay_on_site_or_be_http,
    usernames_are_unique_regardless_of_case,
);

/// The request timeout used by the stalled-request tests.
const TIMEOUT_SECS: u64 = 2;
/// Generous bound for "closed within the timeout".
const CLOSE_BOUND: Duration = Duration::from_secs(TIMEOUT_SECS + 4);

async fn timed_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        default_limits(s);
        s.limits.request_timeout_secs = TIMEOUT_SECS;
    })
    .await
}

/// Writes `bytes`, then reads until the server closes; answers what it sent, or panics if the
/// connection is still open after `CLOSE_BOUND`.
async fn send_and_wait_for_close(app: &TestApp, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(CLOSE_BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "connection still open after {CLOSE_BOUND:?}");
    String::from_utf8_lossy(&received).into_owned()
}

#[actix_web::test]
async fn a_body_that_never_comes_is_closed_with_408() {
    let app = timed_app().await;
    let started = Instant::now();
    let reply = send_and_wait_for_close(
        &app,
        b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(reply.contains("\"error\""), "{reply:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(TIMEOUT_SECS - 1),
        "not before the timeout"
    );
}

#[actix_web::test]
async fn a_body_nobody_reads_does_not_hold_the_connection() {
    let app = timed_app().await;
    let reply = send_and_wait_for_close(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
}

#[actix_web::test]
async fn a_head_that_never_ends_is_closed() {
    let app = timed_app().await;
    let reply = send_and_wait_for_close(&app, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 408"), "{reply:?}");
}

#[actix_web::test]
async fn a_slow_but_complete_request_within_the_limit_is_served() {
    let app = timed_app().await;
    let body = json!({ "username": ADMIN, "password": ADMIN_PASSWORD }).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let head = format!(
        "POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    for part in [first, rest] {
        tokio::time::sleep(Duration::from_millis(600)).await;
        stream.write_all(part.as_bytes()).await.unwrap();
    }
    let mut reply = String::new();
    tokio::time::timeout(CLOSE_BOUND, stream.read_to_string(&mut reply))
        .await
        .expect("answered")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(reply.contains("\"token\""));
}

#[actix_web::test]
async fn pages_and_static_files_carry_the_protective_headers() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    for path in [
        "/",
        "/admin/",
        "/static/app.js",
        "/static/admin.js",
        "/static/common.js",
        "/static/herald.js",
        "/static/style.css",
        "/static/favicon.svg",
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .unwrap_or_else(|| panic!("{path} lacks {name}"))
                .to_str()
                .unwrap()
                .to_string()
        };
        let csp = header("content-security-policy");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(directives.contains(&"script-src 'self'"), "{path}: {csp}");
        assert!(directives.contains(&"frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
}

#[actix_web::test]
async fn pages_hold_no_inline_script() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    for path in ["/", "/admin/"] {
        let html = app.http.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(open.contains("src="), "{path} has an inline script: <script{open}>");
        }
        let lower = html.to_lowercase();
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            " onchange=",
            " oninput=",
            "javascript:",
        ] {
            assert!(!lower.contains(handler), "{path} has an inline handler {handler}");
        }
    }
}

#[actix_web::test]
async fn login_and_me_replies_are_not_stored() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let resp = app
        .http
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let resp = app
        .http
        .get(app.url("/api/auth/me/"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

async fn links_must_stay_on_site_or_be_http(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let create = |link: &str| {
        app.post(
            "/api/notifications/",
            Some(&app.admin_token),
            Some(json!({
                "user_id": user.id, "title": "t", "message": "m",
                "notification_type": "message", "link": link
            })),
        )
    };
    for bad in [
        "/\\evil.example/",
        "//evil.example",
        "javascript:alert(1)",
        "https:/\\evil.example",
        "/\t/evil.example",
    ] {
        let (status, body) = create(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert!(body["error"].is_string());
    }
    let (_, list) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(list["count"], 0, "refused links created nothing");
    for good in ["/jobs/42/", "https://example.com/a", ""] {
        let (status, body) = create(good).await;
        assert_eq!(status, StatusCode::CREATED, "{good:?}: {body}");
        assert_eq!(body["link"], good);
    }
}

async fn usernames_are_unique_regardless_of_case(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    for lookalike in ["Admin", "ADMIN"] {
        let (status, body) = app.register(lookalike, "jobseeker").await;
        assert_eq!(status, StatusCode::CONFLICT, "{lookalike}: {body}");
        assert!(body["error"].is_string());
    }
    // Login ignores case too: the account keeps its own spelling.
    let (status, _, body) = try_login(&app, "AdMiN", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], ADMIN);
}

#[actix_web::test]
async fn the_case_index_migration_names_existing_lookalikes_instead_of_renaming_them() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Database};

    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(format!("sqlite://{}/old.db?mode=rwc", dir.path().display()))
        .await
        .unwrap();
    Migrator::up(&db, Some(1)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES \
         ('bob', 'x', 'jobseeker', '2026-01-01T00:00:00Z'), ('BOB', 'x', 'jobseeker', '2026-01-01T00:00:00Z')",
    )
    .await
    .unwrap();
    let err = Migrator::up(&db, None)
        .await
        .expect_err("lookalikes stop the migration");
    assert!(err.to_string().contains("\"bob\""), "{err}");

    db.execute_unprepared("UPDATE users SET username = 'bob2' WHERE username = 'BOB'")
        .await
        .unwrap();
    Migrator::up(&db, None).await.expect("migrates once renamed");
}
