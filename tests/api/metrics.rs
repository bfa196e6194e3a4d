//! `/metrics`: Prometheus text on the metrics listener only, with the series of the README.
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Backend, PrivateRedis, READINESS_WITHIN, TestApp, spawn_app_with, unique_channel_prefix};

/// The value of the sample written exactly as `series` (name and labels), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub async fn scrape(app: &TestApp) -> String {
    let port = app.metrics_port.expect("a metrics listener");
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    resp.text().await.unwrap()
}

both_backends!(a_push_and_a_refused_handshake_show_on_the_metrics_port_only);

async fn a_push_and_a_refused_handshake_show_on_the_metrics_port_only(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.metrics_bind = "127.0.0.1:0".into()).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let n = app.notify(user.id, "counted").await;
    assert_eq!(socket.json().await["notification"]["id"], n["id"]);
    let (status, _) = app
        .post(
            &format!("/api/notifications/{}/mark-read/", n["id"]),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(socket.json().await["type"], "notification_read");
    // No credentials: refused with 401.
    assert_eq!(app.ws_with(|_| {}).await.err(), Some(401));

    let text = scrape(&app).await;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    };
    expect(r#"herald_pushes_total{type="notification"}"#, 1.0);
    expect(r#"herald_pushes_total{type="notification_read"}"#, 1.0);
    expect("herald_push_deliveries_total", 2.0);
    expect("herald_websocket_connections", 1.0);
    expect("herald_websocket_slow_closed_total", 0.0);
    expect(
        r#"herald_websocket_handshakes_refused_total{reason="unauthorized"}"#,
        1.0,
    );
    expect(
        r#"herald_http_requests_total{method="POST",route="/api/notifications/",status="201"}"#,
        1.0,
    );
    // The route pattern, not the raw path with its id.
    expect(
        r#"herald_http_requests_total{method="POST",route="/api/notifications/{id}/mark-read/",status="200"}"#,
        1.0,
    );
    expect(
        r#"herald_http_request_duration_seconds_count{method="POST",route="/api/notifications/{id}/mark-read/"}"#,
        1.0,
    );
    expect(
        r#"herald_http_requests_total{method="GET",route="/ws/notifications/",status="101"}"#,
        1.0,
    );
    assert!(
        sample(&text, "herald_db_pool_connections").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(sample(&text, "herald_db_pool_idle_connections").is_some(), "{text}");
    assert!(!text.contains("herald_redis_connected"), "no Redis configured: {text}");

    // Another server in the same process counts on its own.
    let other = spawn_app_with(backend, |s| s.metrics_bind = "127.0.0.1:0".into()).await;
    let theirs = scrape(&other).await;
    assert_eq!(
        sample(&theirs, r#"herald_pushes_total{type="notification"}"#),
        None,
        "{theirs}"
    );
    assert_eq!(sample(&theirs, "herald_push_deliveries_total"), Some(0.0), "{theirs}");

    // The socket closing is seen by the gauge.
    drop(socket);
    app.wait_for_sessions(0, Duration::from_secs(10)).await;
    assert_eq!(sample(&scrape(&app).await, "herald_websocket_connections"), Some(0.0));

    // The public port does not serve metrics; the metrics port serves nothing else.
    let (status, body) = app.get("/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not found");
    let port = app.metrics_port.unwrap();
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/api/global-notifications/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn without_metrics_bind_there_is_no_metrics_listener() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    assert_eq!(app.metrics_port, None);
    let (status, _) = app.get("/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Scrapes until `series` has `value` (the Redis link follows an outage within seconds).
async fn wait_for_sample(app: &TestApp, series: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + READINESS_WITHIN;
    loop {
        let text = scrape(app).await;
        if sample(&text, series) == Some(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn the_redis_link_gauge_follows_an_outage() {
    let mut redis = PrivateRedis::start().await;
    let url = redis.url.clone();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.metrics_bind = "127.0.0.1:0".into();
        s.redis_url = url;
        s.redis_channel_prefix = unique_channel_prefix();
    })
    .await;
    wait_for_sample(&app, "herald_redis_connected", 1.0).await;
    redis.stop();
    wait_for_sample(&app, "herald_redis_connected", 0.0).await;
    redis.restart().await;
    wait_for_sample(&app, "herald_redis_connected", 1.0).await;
}
