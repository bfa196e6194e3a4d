//! Fuzzing of every JSON body against the running server: arbitrary JSON values (some shaped
//! like the endpoint's own fields) and arbitrary bytes. Whatever arrives, the answer is never a
//! 5xx, a 4xx always carries a JSON error, and a refused request changes nothing.
//!
//! A fixed number of cases per endpoint keeps this inside plain `cargo test`; each run draws
//! new cases. Any input that ever failed belongs in `REGRESSIONS`, which runs every time.
use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use reqwest::{Method, StatusCode};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Map, Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// Cases per endpoint and kind (JSON values, raw bytes).
const CASES: usize = 48;

/// Inputs that once failed (or are known to be sharp), sent before the random ones.
const REGRESSIONS: &[&[u8]] = &[
    b"",
    b"null",
    b"{}",
    b"[]",
    // NUL in text: PostgreSQL refused it and the server answered 500 (login, titles, messages).
    b"{\"username\":\"\\u0000\",\"password\":\"\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\"}",
    b"{\"user_id\":1,\"title\":\"\\u0000\",\"message\":\"m\",\"notification_type\":\"system\"}",
    b"{\"title\":\"t\",\"message\":\"a\\u0000\",\"level\":\"info\"}",
    b"{\"user_id\":1e400}",
    b"{\"user_id\":-1,\"title\":\"t\",\"message\":\"m\",\"notification_type\":\"system\"}",
    b"{\"user_id\":9223372036854775808,\"title\":\"t\",\"message\":\"m\",\"notification_type\":\"system\"}",
    b"{\"title\":\"t\",\"message\":\"m\",\"level\":\"info\",\"expires_at\":\"+275760-09-13T00:00:00Z\"}",
    b"{\"title\":\"t\",\"message\":\"m\",\"level\":\"info\",\"expires_at\":\"9999-12-31T23:59:59-14:00\"}",
    b"{\"link\":\"/\\\\evil.example/\"}",
    b"\xff\xfe{",
    b"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
];

fn any_json(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        "[a-zA-Z0-9_.-]{0,12}".prop_map(Value::from),
        Just(Value::from("x".repeat(20_000))),
    ];
    let value = leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(".{0,8}", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let key = prop_oneof![3 => proptest::sample::select(fields).prop_map(str::to_string), 1 => ".{0,10}"];
    prop_oneof![
        1 => value.clone(),
        // Objects with the endpoint's own keys reach deeper than random ones.
        3 => btree_map(key, value, 0..7).prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
    ]
}

/// What a refused request must leave alone.
async fn snapshot(app: &TestApp) -> Value {
    let users = entity::user::Entity::find().count(&app.db).await.unwrap();
    let notifications = entity::notification::Entity::find().count(&app.db).await.unwrap();
    let globals = app
        .get("/api/admin/global-notifications/", Some(&app.admin_token))
        .await
        .1;
    json!({ "users": users, "notifications": notifications, "globals": globals })
}

async fn send(app: &TestApp, method: &Method, path: &str, token: Option<&str>, body: &[u8]) -> (StatusCode, String) {
    let mut req = app
        .http
        .request(method.clone(), app.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

/// Sends every input; checks the answer and that refused ones changed nothing.
async fn fuzz_endpoint(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    fields: &'static [&'static str],
) {
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let values = any_json(fields);
    let bytes = vec(any::<u8>(), 0..200);
    let mut inputs: Vec<Vec<u8>> = REGRESSIONS.iter().map(|r| r.to_vec()).collect();
    for _ in 0..CASES {
        let value = values.new_tree(&mut runner).expect("a case").current();
        inputs.push(serde_json::to_vec(&value).expect("JSON"));
        inputs.push(bytes.new_tree(&mut runner).expect("a case").current());
    }

    let mut before = snapshot(app).await;
    for input in inputs {
        let (status, text) = send(app, &method, path, token, &input).await;
        let shown = String::from_utf8_lossy(&input);
        assert!(
            !status.is_server_error(),
            "{method} {path} {shown:?} -> {status} {text}"
        );
        let after = snapshot(app).await;
        if status.is_client_error() {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path} {shown:?} -> {status}, not JSON: {text:?}"));
            assert!(
                body["error"].is_string(),
                "{method} {path} {shown:?} -> {status} {text}"
            );
            assert_eq!(
                before, after,
                "{method} {path} {shown:?} was refused ({status}) but changed something"
            );
        } else {
            assert!(status.is_success(), "{method} {path} {shown:?} -> {status} {text}");
        }
        before = after;
    }
}

async fn every_json_body_survives_arbitrary_input(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let announcement = app
        .announce(json!({ "title": "kept", "message": "m", "level": "info" }))
        .await;
    let patch_path = format!("/api/global-notifications/{}/", announcement["id"]);
    let token = app.admin_token.clone();
    fuzz_endpoint(
        &app,
        Method::POST,
        "/api/auth/register/",
        None,
        &["username", "password", "role"],
    )
    .await;
    fuzz_endpoint(&app, Method::POST, "/api/auth/login/", None, &["username", "password"]).await;
    fuzz_endpoint(
        &app,
        Method::POST,
        "/api/notifications/",
        Some(&token),
        &["user_id", "title", "message", "notification_type", "link"],
    )
    .await;
    let global_fields = &["title", "message", "level", "expires_at", "is_active", "show_on_site"];
    fuzz_endpoint(
        &app,
        Method::POST,
        "/api/global-notifications/",
        Some(&token),
        global_fields,
    )
    .await;
    fuzz_endpoint(&app, Method::PATCH, &patch_path, Some(&token), global_fields).await;
}

both_backends!(every_json_body_survives_arbitrary_input);
