//! `GET /api/openapi.json` against the routes actually served: no route missing, none invented.
use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// The routes left out of the document on purpose; a new one must be added here knowingly.
const UNDOCUMENTED: [&str; 4] = ["/", "/admin/", "/static/{path:.*}", "/ws/notifications/"];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(app: &TestApp) -> Value {
    let resp = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    resp.json().await.unwrap()
}

/// A concrete path for a pattern: path parameters get ids that exist, so a handler can never
/// answer 404 for them and be mistaken for the router's fallback.
fn concrete(pattern: &str, ids: &BTreeMap<&str, String>) -> String {
    if pattern == "/static/{path:.*}" {
        return "/static/herald.js".into();
    }
    let mut path = pattern.to_owned();
    for (name, id) in ids {
        path = path.replace(&format!("{{{name}}}"), id);
    }
    assert!(!path.contains('{'), "no id to put in {pattern}");
    path
}

/// Sends `method` to `path` as an anonymous client would, with an empty JSON object as body.
async fn call(app: &TestApp, method: &str, path: &str) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(method.clone(), app.url(path));
    if method != Method::GET {
        req = req.json(&json!({}));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Ids that exist for every `{...}` path parameter of the API.
async fn existing_ids(app: &TestApp) -> BTreeMap<&'static str, String> {
    let (status, announcement) = app
        .post(
            "/api/global-notifications/",
            Some(&app.admin_token),
            Some(json!({ "title": "T", "message": "M", "level": "info" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{announcement}");
    let (_, me) = app.get("/api/auth/me/", Some(&app.admin_token)).await;
    let (status, notification) = app
        .post(
            "/api/notifications/",
            Some(&app.admin_token),
            Some(json!({ "user_id": me["id"], "title": "T", "message": "M", "notification_type": "system" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{notification}");
    // Both share `{id}`: the lower of the two exists in both tables.
    let id = announcement["id"]
        .as_i64()
        .unwrap()
        .min(notification["id"].as_i64().unwrap());
    assert_eq!(id, 1);
    BTreeMap::from([("id", id.to_string())])
}

#[actix_web::test]
async fn the_document_is_openapi_3_1_with_security_and_the_error_shape() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "sessionid");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["csrf"]["name"], "X-CSRFToken");
    assert_eq!(doc["components"]["schemas"]["ErrorBody"]["required"], json!(["error"]));
    // The socket is described in prose.
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(description.contains("/ws/notifications/"), "{description}");

    // A cookie-authenticated unsafe method needs the CSRF header as well; a read does not.
    let create = &doc["paths"]["/api/notifications/"]["post"];
    assert_eq!(
        create["security"],
        json!([{ "bearer": [] }, { "session": [], "csrf": [] }])
    );
    assert_eq!(
        doc["paths"]["/api/notifications/"]["get"]["security"],
        json!([{ "bearer": [] }, { "session": [] }])
    );
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewNotification"
    );
    for status in ["400", "401", "403", "413", "415"] {
        assert_eq!(
            create["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{status}"
        );
    }
    let list_params: BTreeSet<&str> = doc["paths"]["/api/notifications/"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(list_params, BTreeSet::from(["limit", "before_id", "unread", "type"]));
    let page = &doc["components"]["schemas"]["NotificationPage"]["properties"];
    assert!(page["next_before_id"].is_object(), "{page}");

    // The admin creates take an `Idempotency-Key` and document its refusals.
    for (path, status) in [
        ("/api/notifications/", "201"),
        ("/api/notifications/bulk/", "201"),
        ("/api/global-notifications/", "201"),
    ] {
        let create = &doc["paths"][path]["post"];
        let headers: Vec<&Value> = create["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .collect();
        assert_eq!(headers.len(), 1, "{path}");
        assert_eq!(headers[0]["name"], "Idempotency-Key", "{path}");
        assert_eq!(headers[0]["required"], false, "{path}");
        for status in [status, "409", "422"] {
            assert!(create["responses"][status].is_object(), "{path} {status}");
        }
    }
    // A limit documents its `Retry-After`.
    for path in ["/api/auth/login/", "/api/auth/register/"] {
        let too_many = &doc["paths"][path]["post"]["responses"]["429"];
        assert!(too_many["headers"]["Retry-After"].is_object(), "{path}");
    }
    let mark_read = &doc["paths"]["/api/notifications/{id}/mark-read/"]["post"];
    assert_eq!(mark_read["parameters"][0]["in"], "path");
}

#[actix_web::test]
async fn every_served_route_is_documented_or_a_named_exception() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let documented: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();

    // The table is what the App registers (`routes::config` serves exactly its routes).
    let table = herald::routes::table();
    let served: BTreeSet<&str> = table.served_paths().into_iter().collect();
    let undocumented: BTreeSet<&str> = table.undocumented_routes().iter().map(|u| u.path).collect();
    assert_eq!(undocumented, BTreeSet::from(UNDOCUMENTED));
    assert!(table.undocumented_routes().iter().all(|u| !u.why.is_empty()));
    assert!(documented.is_disjoint(&undocumented));
    let expected: BTreeSet<&str> = documented.union(&undocumented).copied().collect();
    assert_eq!(served, expected, "served paths vs documented + exceptions");

    // Two types must not share a schema name: one would silently replace the other.
    let mut schemas = BTreeMap::new();
    for (name, schema) in table.schemas() {
        let schema = serde_json::to_value(schema).unwrap();
        if let Some(earlier) = schemas.insert(name.clone(), schema.clone()) {
            assert_eq!(earlier, schema, "two different schemas named {name}");
        }
    }
}

#[actix_web::test]
async fn every_documented_operation_reaches_a_handler_and_nothing_else_is_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ids = existing_ids(&app).await;

    // The probe can tell the fallback apart: it answers 404 and 405 exactly so.
    let (status, body) = call(&app, "GET", "/api/not-a-route/").await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({ "error": "not found" })));

    let mut operations = 0;
    for (pattern, item) in doc["paths"].as_object().unwrap() {
        let path = concrete(pattern, &ids);
        for method in METHODS {
            let (status, body) = call(&app, method, &path).await;
            match item.get(method.to_lowercase()) {
                Some(operation) => {
                    operations += 1;
                    assert!(
                        status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {path}: documented but answered by the fallback ({status} {body})"
                    );
                    let documented = &operation["responses"][status.as_str()];
                    assert!(
                        documented.is_object(),
                        "{method} {path}: {status} is not among its documented responses"
                    );
                }
                None => assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented ({body})"
                ),
            }
        }
    }
    assert!(operations >= 15, "only {operations} operations documented");

    // The exceptions are served too (by a handler, not the fallback).
    for pattern in UNDOCUMENTED {
        let path = concrete(pattern, &ids);
        let (status, body) = call(&app, "GET", &path).await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "GET {path}: {status} {body}"
        );
    }
}
