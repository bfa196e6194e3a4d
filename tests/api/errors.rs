//! Every failure is a JSON error with the right status; nothing panics or answers HTML.
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

async fn json_error(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"), "{status}");
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    (status, body)
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = spawn_app().await;
    let (status, _) = json_error(app.http.get(app.url("/api/nothing-here/")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_error(app.http.put(app.url("/api/notifications/")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = json_error(app.http.get(app.url("/api/auth/login/")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = json_error(app.http.get(app.url("/static/missing.js")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn bad_bodies_get_400_413_415() {
    let app = spawn_app().await;
    let url = app.url("/api/global-notifications/");
    let auth = format!("Bearer {}", app.admin_token);

    let wrong_type = app
        .http
        .post(&url)
        .header("Authorization", &auth)
        .header("Content-Type", "text/plain")
        .body("{}");
    assert_eq!(
        json_error(wrong_type.send().await.unwrap()).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let malformed = app
        .http
        .post(&url)
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .body("{not json");
    assert_eq!(
        json_error(malformed.send().await.unwrap()).await.0,
        StatusCode::BAD_REQUEST
    );

    let huge = format!(
        r#"{{"title":"t","message":"{}","level":"info"}}"#,
        "x".repeat(70 * 1024)
    );
    let oversized = app
        .http
        .post(&url)
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .body(huge);
    assert_eq!(
        json_error(oversized.send().await.unwrap()).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    assert_eq!(
        app.get("/api/global-notifications/", None).await.1["count"],
        0,
        "nothing was created"
    );
}

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"], true);
}

#[actix_web::test]
async fn pages_and_client_library_are_served() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/admin/", "text/html"),
        ("/static/herald.js", "javascript"),
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.contains(kind), "{path}: {content_type}");
    }
}

#[actix_web::test]
async fn out_of_range_query_values_are_refused_not_fatal() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    for query in [
        "before_id=18446744073709551615",
        "before_id=-1",
        "limit=abc",
        "before_id=1e3",
    ] {
        let (status, body) = app
            .get(&format!("/api/notifications/?{query}"), Some(&user.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, body) = app.get("/api/notifications/?before_id=1", Some(&user.token)).await;
    assert_eq!(
        (status, body["notifications"].clone()),
        (StatusCode::OK, serde_json::json!([]))
    );
}
