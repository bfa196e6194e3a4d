//! `/api/notifications/`: listing, marking read, admin creation, and isolation between users.
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, spawn_app_with};

async fn list_has_the_seed_shape_newest_first(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let first = app.notify(user.id, "first").await;
    let second = app.notify(user.id, "second").await;
    let third = app.notify(user.id, "third").await;
    app.post(
        &format!("/api/notifications/{}/mark-read/", second["id"]),
        Some(&user.token),
        None,
    )
    .await;

    let (status, body) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 3);
    assert_eq!(body["unread_count"], 2);
    let items = body["notifications"].as_array().unwrap();
    let titles: Vec<&str> = items.iter().map(|n| n["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["third", "second", "first"]);
    let mut keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "id",
            "is_read",
            "link",
            "message",
            "notification_type",
            "title"
        ]
    );
    assert_eq!(items[0]["id"], third["id"]);
    assert_eq!(items[1]["is_read"], true);
    assert_eq!(items[2]["id"], first["id"]);
    let created = items[0]["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");

    let path = format!("/api/notifications/?limit=1&before_id={}", third["id"]);
    let (_, page) = app.get(&path, Some(&user.token)).await;
    assert_eq!(page["count"], 3);
    assert_eq!(page["notifications"][0]["title"], "second");
}

async fn mark_read_is_for_the_owner_only(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let n = app.notify(owner.id, "mine").await;
    let path = format!("/api/notifications/{}/mark-read/", n["id"]);

    let (status, body) = app.post(&path, Some(&other.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let (_, list) = app.get("/api/notifications/", Some(&owner.token)).await;
    assert_eq!(list["unread_count"], 1, "someone else's mark-read changed nothing");

    let (status, body) = app.post(&path, Some(&owner.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "success": true, "message": "Notification marked as read" })
    );
    let (status, _) = app.post(&path, Some(&owner.token), None).await;
    assert_eq!(status, StatusCode::OK, "marking again is fine");

    for bad in ["999999", "abc", "99999999999999999999", "-1", "1.5"] {
        let (status, body) = app
            .post(
                &format!("/api/notifications/{bad}/mark-read/"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert!(body["error"].is_string());
    }
    assert_eq!(app.post(&path, None, None).await.0, StatusCode::UNAUTHORIZED);
}

async fn mark_all_read_counts_what_it_changed(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    for i in 0..5 {
        app.notify(user.id, &format!("n{i}")).await;
    }
    app.notify(other.id, "theirs").await;
    let first = app.get("/api/notifications/", Some(&user.token)).await.1["notifications"][0]["id"].clone();
    app.post(
        &format!("/api/notifications/{first}/mark-read/"),
        Some(&user.token),
        None,
    )
    .await;

    let (status, body) = app
        .post("/api/notifications/mark-all-read/", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "success": true, "message": "4 notifications marked as read", "count": 4 })
    );
    let (_, body) = app
        .post("/api/notifications/mark-all-read/", Some(&user.token), None)
        .await;
    assert_eq!(body["count"], 0);
    let (_, theirs) = app.get("/api/notifications/", Some(&other.token)).await;
    assert_eq!(theirs["unread_count"], 1, "another user's notifications are untouched");
}

async fn admins_create_notifications_with_validation(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let admin = Some(app.admin_token.as_str());

    let (status, body) = app
        .post(
            "/api/notifications/",
            admin,
            Some(json!({ "user_id": user.id, "title": "T", "message": "M", "notification_type": "job_post" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["link"], "", "link defaults to empty");
    assert_eq!(body["is_read"], false);
    assert_eq!(body["notification_type"], "job_post");

    let bad = [
        json!({ "user_id": 999999, "title": "T", "message": "M", "notification_type": "job_post" }),
        // Beyond the id column's range: no user either, and a 400, not a crash or a 500.
        json!({ "user_id": 4_294_967_296_i64, "title": "T", "message": "M", "notification_type": "job_post" }),
        json!({ "user_id": user.id, "title": "T", "message": "M", "notification_type": "spam" }),
        json!({ "user_id": user.id, "title": "", "message": "M", "notification_type": "system" }),
        json!({ "user_id": user.id, "title": "T", "notification_type": "system" }),
        json!({ "user_id": "1", "title": "T", "message": "M", "notification_type": "system" }),
        json!({ "user_id": user.id, "title": "x".repeat(256), "message": "M", "notification_type": "system" }),
    ];
    for body in bad {
        let (status, reply) = app.post("/api/notifications/", admin, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply["error"].is_string());
    }
    let (_, list) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(list["count"], 1, "rejected requests created nothing");

    let good = json!({ "user_id": user.id, "title": "T", "message": "M", "notification_type": "system" });
    let (status, _) = app
        .post("/api/notifications/", Some(&user.token), Some(good.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post("/api/notifications/", None, Some(good)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn users_never_see_each_others_notifications(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    app.notify(alice.id, "for alice").await;

    let (_, bobs) = app.get("/api/notifications/", Some(&bob.token)).await;
    assert_eq!(bobs["count"], 0);
    assert_eq!(bobs["notifications"], json!([]));
    let (_, alices) = app.get("/api/notifications/", Some(&alice.token)).await;
    assert_eq!(alices["count"], 1);
}

async fn the_list_reflects_every_write_at_once(backend: Backend) {
    use entity::notification;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let counts = || async {
        let (_, body) = app.get("/api/notifications/", Some(&user.token)).await;
        (body["count"].as_u64().unwrap(), body["unread_count"].as_u64().unwrap())
    };
    let row = |title: &str| crate::helpers::notification_row(user.id, title);
    app.notify(user.id, "api").await;
    assert_eq!(counts().await, (1, 1));
    assert_eq!(counts().await, (1, 1), "served again while unchanged");

    let saved = app.saving(row("entity").insert(&app.db)).await.unwrap();
    assert_eq!(counts().await, (2, 2));
    let mut read: notification::ActiveModel = saved.into();
    read.is_read = Set(true);
    app.saving(read.update(&app.db)).await.unwrap();
    assert_eq!(counts().await, (2, 1));

    let in_txn = row("transaction");
    app.saving(entity::transaction::run(&app.db, |txn| {
        Box::pin(async move { in_txn.insert(txn).await.map(|_| ()) })
    }))
    .await
    .unwrap();
    assert_eq!(counts().await, (3, 2));
    app.saving(notification::insert_many_and_push(
        &app.db,
        vec![row("bulk 1"), row("bulk 2")],
    ))
    .await
    .unwrap();
    assert_eq!(counts().await, (5, 4));
    app.post("/api/notifications/mark-all-read/", Some(&user.token), None)
        .await;
    assert_eq!(counts().await, (5, 0));
}

async fn concurrent_writes_all_succeed(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let users = [app.new_user().await, app.new_user().await];
    // 60 creates at once from many connections: SQLite's writer lock must make them wait, never fail.
    let creates = (0..60).map(|i| app.notify(users[i % 2].id, "concurrent"));
    let created = futures_util::future::join_all(creates).await;
    let paths: Vec<String> = created
        .iter()
        .map(|n| format!("/api/notifications/{}/mark-read/", n["id"]))
        .collect();
    let reads = paths
        .iter()
        .zip(0..)
        .map(|(path, i)| app.post(path, Some(&users[i % 2].token), None));
    for (status, body) in futures_util::future::join_all(reads).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for user in &users {
        let (_, list) = app.get("/api/notifications/", Some(&user.token)).await;
        assert_eq!(
            (list["count"].as_u64(), list["unread_count"].as_u64()),
            (Some(30), Some(0))
        );
    }
}

both_backends!(
    concurrent_writes_all_succeed,
    the_list_reflects_every_write_at_once,
    list_has_the_seed_shape_newest_first,
    mark_read_is_for_the_owner_only,
    mark_all_read_counts_what_it_changed,
    admins_create_notifications_with_validation,
    users_never_see_each_others_notifications,
);
