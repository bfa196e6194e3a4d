//! `/api/global-notifications/`: the public list and admin publishing.
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, spawn_app_with};

async fn public_list_shows_only_live_announcements(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let old = app
        .announce(json!({ "title": "old", "message": "m", "level": "info" }))
        .await;
    app.announce(json!({ "title": "inactive", "message": "m", "level": "info", "is_active": false }))
        .await;
    app.announce(json!({ "title": "hidden", "message": "m", "level": "info", "show_on_site": false }))
        .await;
    app.announce(json!({ "title": "expired", "message": "m", "level": "info", "expires_at": "2020-01-01T00:00:00Z" }))
        .await;
    let new = app
        .announce(json!({ "title": "new", "message": "m", "level": "danger", "expires_at": "2031-01-06T10:30:00Z" }))
        .await;

    let (status, body) = app.get("/api/global-notifications/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 2);
    let items = body["notifications"].as_array().unwrap();
    assert_eq!(items[0]["id"], new["id"]);
    assert_eq!(items[1]["id"], old["id"]);
    assert_eq!(
        items[0],
        json!({
            "id": new["id"], "title": "new", "message": "m", "level": "danger",
            "created_at": new["created_at"], "expires_at": "2031-01-06T10:30:00Z"
        })
    );
}

async fn admins_publish_with_every_field_and_validation(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let admin = Some(app.admin_token.as_str());
    let (status, body) = app
        .post(
            "/api/global-notifications/",
            admin,
            Some(json!({ "title": "T", "message": "M", "level": "warning" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for key in [
        "id",
        "title",
        "message",
        "level",
        "is_active",
        "show_on_site",
        "created_at",
        "expires_at",
    ] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert_eq!(body["is_active"], true);
    assert_eq!(body["show_on_site"], true);
    assert_eq!(body["expires_at"], serde_json::Value::Null);

    for bad in [
        json!({ "title": "T", "message": "M", "level": "critical" }),
        json!({ "title": "T", "message": "M", "level": "info", "expires_at": "tomorrow" }),
        json!({ "title": "T", "message": "M", "level": "info", "is_active": "yes" }),
        json!({ "message": "M", "level": "info" }),
    ] {
        let (status, reply) = app.post("/api/global-notifications/", admin, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply["error"].is_string());
    }
    let user = app.new_user().await;
    let good = json!({ "title": "T", "message": "M", "level": "info" });
    assert_eq!(
        app.post("/api/global-notifications/", Some(&user.token), Some(good.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post("/api/global-notifications/", None, Some(good)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/api/global-notifications/", None).await.1["count"], 1);
}

async fn admins_deactivate_and_list_everything(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let a = app
        .announce(json!({ "title": "a", "message": "m", "level": "info" }))
        .await;
    let path = format!("/api/global-notifications/{}/", a["id"]);

    let user = app.new_user().await;
    let (status, _) = app
        .request(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(json!({ "is_active": false })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = app
        .request(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({ "is_active": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_active"], false);
    assert_eq!(app.get("/api/global-notifications/", None).await.1["count"], 0);

    let (_, all) = app
        .get("/api/admin/global-notifications/", Some(&app.admin_token))
        .await;
    assert_eq!(all["count"], 1);
    assert_eq!(all["notifications"][0]["is_active"], false);
    let (status, _) = app
        .request(
            Method::PATCH,
            "/api/global-notifications/424242/",
            Some(&app.admin_token),
            Some(json!({ "is_active": true })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_public_list_follows_every_save_and_expiry(backend: Backend) {
    use entity::global_notification;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let app = spawn_app_with(backend, |_| {}).await;
    assert_eq!(app.get("/api/global-notifications/", None).await.1["count"], 0);

    // Saved without HTTP: the (cached) list shows it on the very next request.
    app.saving(
        global_notification::ActiveModel {
            title: Set("direct".into()),
            message: Set("m".into()),
            level: Set(entity::global_notification::Level::Info),
            ..Default::default()
        }
        .insert(&app.db),
    )
    .await
    .unwrap();
    assert_eq!(app.get("/api/global-notifications/", None).await.1["count"], 1);

    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    app.announce(json!({ "title": "brief", "message": "m", "level": "info", "expires_at": soon }))
        .await;
    assert_eq!(app.get("/api/global-notifications/", None).await.1["count"], 2);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let (_, body) = app.get("/api/global-notifications/", None).await;
    assert_eq!(body["count"], 1, "expired announcements leave the list: {body}");
    assert_eq!(body["notifications"][0]["title"], "direct");
}

both_backends!(
    the_public_list_follows_every_save_and_expiry,
    public_list_shows_only_live_announcements,
    admins_publish_with_every_field_and_validation,
    admins_deactivate_and_list_everything,
);
