//! The closed sets (an account's role, a notification's type, an announcement's level) are enums
//! stored as the strings their columns held before they were typed: what the API writes reads
//! back as those strings in SQL and in JSON, a stored string reads back as its variant, and an
//! unknown value in a request is refused with the documented 400.
use entity::{
    global_notification::{self, Level},
    notification::{self, NotificationType},
    user::{self, Role},
};
use reqwest::{Method, StatusCode};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement, sea_query::Value as SqlValue,
};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// The text in `column` of row `id` of `table`, read with plain SQL (no enum involved).
async fn stored(app: &TestApp, table: &str, column: &str, id: i64) -> String {
    let backend = app.db.get_database_backend();
    let sql = format!(r#"SELECT "{column}" AS v FROM "{table}" WHERE "id" = {id}"#);
    let row = app
        .db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .expect("the row exists");
    row.try_get::<String>("", "v").unwrap()
}

/// Writes `text` into `column` of row `id` of `table` with plain SQL.
async fn store(app: &TestApp, table: &str, column: &str, id: i64, text: &str) {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!(r#"UPDATE "{table}" SET "{column}" = $1 WHERE "id" = $2"#),
        _ => format!(r#"UPDATE "{table}" SET "{column}" = ? WHERE "id" = ?"#),
    };
    let values: [SqlValue; 2] = [text.into(), id.into()];
    let done = app
        .db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

async fn stored_strings_round_trip(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;

    // Written through the API: JSON and column say the same string.
    let (status, account) = app.register("typed", "employer").await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["role"], "employer");
    let user_id = account["id"].as_i64().unwrap();
    assert_eq!(stored(&app, "users", "role", user_id).await, "employer");

    let (status, created) = app
        .post(
            "/api/notifications/",
            Some(&app.admin_token),
            Some(json!({ "user_id": user_id, "title": "T", "message": "M", "notification_type": "post_like" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["notification_type"], "post_like");
    let notification_id = created["id"].as_i64().unwrap();
    assert_eq!(
        stored(&app, "notifications", "notification_type", notification_id).await,
        "post_like"
    );

    let announcement = app
        .announce(json!({ "title": "T", "message": "M", "level": "warning" }))
        .await;
    assert_eq!(announcement["level"], "warning");
    let announcement_id = announcement["id"].as_i64().unwrap();
    assert_eq!(
        stored(&app, "global_notifications", "level", announcement_id).await,
        "warning"
    );

    // Written as plain strings: each reads back as its variant, and filters match it.
    store(&app, "users", "role", user_id, "jobseeker").await;
    let account = user::Entity::find_by_id(user_id as i32)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.role, Role::Jobseeker);
    let jobseekers = user::Entity::find()
        .filter(user::Column::Role.eq(Role::Jobseeker))
        .filter(user::Column::Id.eq(user_id as i32))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(jobseekers, 1);

    store(
        &app,
        "notifications",
        "notification_type",
        notification_id,
        "connection",
    )
    .await;
    let saved = notification::Entity::find()
        .filter(notification::Column::NotificationType.eq(NotificationType::Connection))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        saved.iter().map(|n| i64::from(n.id)).collect::<Vec<_>>(),
        [notification_id]
    );
    let user = app.login("typed", crate::helpers::PASSWORD).await;
    let (status, list) = app.get("/api/notifications/?type=connection", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["notifications"][0]["notification_type"], "connection", "{list}");

    store(&app, "global_notifications", "level", announcement_id, "danger").await;
    let saved = global_notification::Entity::find_by_id(announcement_id as i32)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.level, Level::Danger);
}

/// A request naming a value outside a closed set, and the exact error it answers.
struct Refused<'a> {
    method: Method,
    path: String,
    token: Option<&'a str>,
    body: Option<Value>,
    error: String,
}

/// Requests naming an unknown role, type or level get their 400, word for word (the
/// messages are part of the contract: clients show them), and changes nothing.
async fn unknown_values_are_refused_with_the_documented_400(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let announcement = app
        .announce(json!({ "title": "T", "message": "M", "level": "info" }))
        .await;
    let announcement_path = format!("/api/global-notifications/{}/", announcement["id"]);
    let types = "job_application, job_post, message, profile_view, post_like, connection, system";
    let admin = Some(app.admin_token.as_str());
    let cases = vec![
        Refused {
            method: Method::POST,
            path: "/api/notifications/".into(),
            token: admin,
            body: Some(json!({ "user_id": user.id, "title": "T", "message": "M", "notification_type": "spam" })),
            error: format!("notification_type must be one of: {types}"),
        },
        Refused {
            method: Method::POST,
            path: "/api/notifications/bulk/".into(),
            token: admin,
            body: Some(json!({ "title": "T", "message": "M", "notification_type": "System", "all": true })),
            error: format!("notification_type must be one of: {types}"),
        },
        Refused {
            method: Method::POST,
            path: "/api/global-notifications/".into(),
            token: admin,
            body: Some(json!({ "title": "T", "message": "M", "level": "critical" })),
            error: "level must be one of: info, warning, danger".into(),
        },
        Refused {
            method: Method::PATCH,
            path: announcement_path,
            token: admin,
            body: Some(json!({ "level": "" })),
            error: "level must be one of: info, warning, danger".into(),
        },
        Refused {
            method: Method::POST,
            path: "/api/auth/register/".into(),
            token: None,
            body: Some(json!({ "username": "would_be_admin", "password": "password-123", "role": "admin" })),
            error: "role must be 'jobseeker' or 'employer'".into(),
        },
        Refused {
            method: Method::POST,
            path: "/api/notifications/bulk/".into(),
            token: admin,
            body: Some(json!({ "title": "T", "message": "M", "notification_type": "system", "role": "moderator" })),
            error: "role must be 'jobseeker' or 'employer'".into(),
        },
        Refused {
            method: Method::GET,
            path: "/api/notifications/?type=message,spam".into(),
            token: Some(user.token.as_str()),
            body: None,
            error: format!("type: unknown notification type \"spam\"; expected one of: {types}"),
        },
        Refused {
            method: Method::PUT,
            path: "/api/preferences/".into(),
            token: Some(user.token.as_str()),
            body: Some(json!({ "muted_types": ["message", "spam"] })),
            error: format!("muted_types: unknown notification type \"spam\"; expected one of: {types}"),
        },
        Refused {
            method: Method::PUT,
            path: "/api/preferences/".into(),
            token: Some(user.token.as_str()),
            body: Some(json!({ "muted_types": ["system"] })),
            error: "muted_types: \"system\" notifications cannot be muted".into(),
        },
    ];
    for Refused {
        method,
        path,
        token,
        body,
        error,
    } in cases
    {
        let (status, reply) = app.request(method.clone(), &path, token, body).await;
        assert_eq!(
            (status, reply),
            (StatusCode::BAD_REQUEST, json!({ "error": error })),
            "{method} {path}"
        );
    }

    // Nothing was written by any of them.
    assert_eq!(
        notification::Entity::find().count(&app.db).await.unwrap(),
        0,
        "a refused create saved a notification"
    );
    let (_, preferences) = app.get("/api/preferences/", Some(&user.token)).await;
    assert_eq!(preferences, json!({ "muted_types": [] }));
    let (_, announcement) = app.get("/api/admin/global-notifications/", admin).await;
    assert_eq!(announcement["notifications"][0]["level"], "info");
}

both_backends!(
    stored_strings_round_trip,
    unknown_values_are_refused_with_the_documented_400
);
