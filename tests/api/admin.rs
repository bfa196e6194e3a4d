//! Admins: bulk notifications, safe retries with `Idempotency-Key`, the whole life of an
//! announcement on open sockets, and the retention job.
use std::time::Duration;

use chrono::Utc;
use entity::{auth_token, idempotency_key, notification};
use herald::{configuration::RetentionSettings, retention};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{Api, Backend, PASSWORD, Seen, TestApp, TestUser, WsClient, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

static NAMES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

async fn user_with_role(api: &Api, role: &str) -> TestUser {
    let name = format!("{role}{}", NAMES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let (status, _) = api.register(&name, role).await;
    assert_eq!(status, StatusCode::CREATED);
    api.login(&name, PASSWORD).await
}

/// An admin request with an optional `Idempotency-Key`: the status and the JSON body.
async fn admin_post(api: &Api, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut req = api.http.post(api.url(path)).bearer_auth(&api.admin_token).json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    (status, resp.json().await.expect("JSON body"))
}

fn bulk_body(target: Value) -> Value {
    let mut body = json!({ "title": "Hello", "message": "to many", "notification_type": "system", "link": "/x/" });
    for (k, v) in target.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

/// Exactly one `notification` push with `title`, then nothing.
async fn expect_one_push(socket: &mut WsClient, title: &str) {
    let msg = socket.json().await;
    assert_eq!(msg["type"], "notification", "{msg}");
    assert_eq!(msg["notification"]["title"], title, "{msg}");
    socket.expect_silence(QUIET).await;
}

async fn bulk_reaches_each_recipient_once_and_no_one_else(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let jobseekers = [
        user_with_role(&app, "jobseeker").await,
        user_with_role(&app, "jobseeker").await,
    ];
    let employers = [
        user_with_role(&app, "employer").await,
        user_with_role(&app, "employer").await,
    ];
    let mut js: Vec<WsClient> = Vec::new();
    for u in &jobseekers {
        js.push(app.ws(u).await);
        js.push(app.ws(u).await);
    }
    let mut em: Vec<WsClient> = Vec::new();
    for u in &employers {
        em.push(app.ws(u).await);
    }

    // To a list: the first jobseeker (named twice: one notification) and the second employer.
    let ids = json!([jobseekers[0].id, employers[1].id, jobseekers[0].id]);
    let (status, body) = admin_post(
        &app,
        "/api/notifications/bulk/",
        None,
        &bulk_body(json!({ "user_ids": ids })),
    )
    .await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({ "created": 2 })));
    expect_one_push(&mut js[0], "Hello").await;
    expect_one_push(&mut js[1], "Hello").await;
    expect_one_push(&mut em[1], "Hello").await;
    for socket in js[2..].iter_mut().chain(&mut em[..1]) {
        socket.expect_silence(QUIET).await;
    }

    // To a role.
    let body = json!({ "title": "Employers", "message": "m", "notification_type": "job_post", "role": "employer" });
    let (status, reply) = admin_post(&app, "/api/notifications/bulk/", None, &body).await;
    assert_eq!((status, reply), (StatusCode::CREATED, json!({ "created": 2 })));
    for socket in &mut em {
        expect_one_push(socket, "Employers").await;
    }
    for socket in &mut js {
        socket.expect_silence(QUIET).await;
    }

    // To everyone: four users and the admin.
    let body = json!({ "title": "All", "message": "m", "notification_type": "system", "all": true });
    let (status, reply) = admin_post(&app, "/api/notifications/bulk/", None, &body).await;
    assert_eq!((status, reply), (StatusCode::CREATED, json!({ "created": 5 })));
    for socket in js.iter_mut().chain(em.iter_mut()) {
        expect_one_push(socket, "All").await;
    }

    // Each recipient has its own rows, as the list shows.
    let (_, list) = app.get("/api/notifications/", Some(&employers[1].token)).await;
    let titles: Vec<&str> = list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["All", "Employers", "Hello"]);
    let (_, list) = app.get("/api/notifications/", Some(&jobseekers[1].token)).await;
    assert_eq!(list["count"], 1);
}

async fn bulk_refuses_bad_targets_and_creates_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let too_many: Vec<i64> = (1..=10_001).collect();
    for (target, needle) in [
        (json!({}), "exactly one target"),
        (json!({ "role": "employer", "all": true }), "exactly one target"),
        (
            json!({ "user_ids": [user.id], "role": "employer" }),
            "exactly one target",
        ),
        (json!({ "user_ids": [] }), "1 to 10000"),
        (json!({ "user_ids": too_many }), "1 to 10000"),
        (json!({ "user_ids": [user.id, 999_999] }), "999999"),
        (json!({ "role": "admin" }), "role"),
        (json!({ "all": false }), "all must be true"),
    ] {
        let (status, body) = admin_post(&app, "/api/notifications/bulk/", None, &bulk_body(target.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}: {body}");
        assert!(body["error"].as_str().unwrap().contains(needle), "{target}: {body}");
    }
    let (status, _) = app
        .post(
            "/api/notifications/bulk/",
            Some(&user.token),
            Some(bulk_body(json!({ "all": true }))),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    socket.expect_silence(QUIET).await;
    assert_eq!(app.get("/api/notifications/", Some(&user.token)).await.1["count"], 0);
}

async fn bulk_to_more_users_than_a_batch(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    // Accounts made directly: registering 1,200 over HTTP would hash 1,200 passwords.
    let rows: Vec<entity::user::ActiveModel> = (0..1200)
        .map(|i| entity::user::ActiveModel {
            username: Set(format!("many{i}")),
            password_hash: Set("x".into()),
            role: Set(entity::user::Role::Employer),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .collect();
    entity::user::Entity::insert_many(rows).exec(&app.db).await.unwrap();
    let watcher = user_with_role(&app, "employer").await;
    let mut socket = app.ws(&watcher).await;
    let body = json!({ "title": "Batch", "message": "m", "notification_type": "system", "role": "employer" });
    let (status, reply) = admin_post(&app, "/api/notifications/bulk/", None, &body).await;
    assert_eq!((status, reply), (StatusCode::CREATED, json!({ "created": 1201 })));
    expect_one_push(&mut socket, "Batch").await;
    let count = notification::Entity::find().all(&app.db).await.unwrap().len();
    assert_eq!(count, 1201);
}

async fn a_retried_key_replays_the_first_answer_and_pushes_once(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;

    let single = json!({ "user_id": user.id, "title": "Once", "message": "m", "notification_type": "system" });
    let first = admin_post(&app, "/api/notifications/", Some("key-1"), &single).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let again = admin_post(&app, "/api/notifications/", Some("key-1"), &single).await;
    assert_eq!(again, first, "the same status and body");
    expect_one_push(&mut socket, "Once").await;

    let bulk = bulk_body(json!({ "user_ids": [user.id] }));
    let first = admin_post(&app, "/api/notifications/bulk/", Some("key-2"), &bulk).await;
    assert_eq!(first, (StatusCode::CREATED, json!({ "created": 1 })));
    assert_eq!(
        admin_post(&app, "/api/notifications/bulk/", Some("key-2"), &bulk).await,
        first
    );
    expect_one_push(&mut socket, "Hello").await;

    let global = json!({ "title": "G", "message": "m", "level": "info" });
    let first = admin_post(&app, "/api/global-notifications/", Some("key-3"), &global).await;
    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(
        admin_post(&app, "/api/global-notifications/", Some("key-3"), &global).await,
        first
    );
    assert_eq!(socket.json().await["type"], "global_notification");
    socket.expect_silence(QUIET).await;
    assert_eq!(app.get("/api/notifications/", Some(&user.token)).await.1["count"], 2);
    assert_eq!(app.get("/api/global-notifications/", None).await.1["count"], 1);

    // The same key with another body (or on another endpoint) is 422 and changes nothing.
    let other = json!({ "user_id": user.id, "title": "Other", "message": "m", "notification_type": "system" });
    let (status, body) = admin_post(&app, "/api/notifications/", Some("key-1"), &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = admin_post(&app, "/api/notifications/bulk/", Some("key-1"), &bulk).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Bad keys are 400; a bad body is not remembered under its key.
    for bad in ["", &"k".repeat(256), "tab\there"] {
        let (status, body) = admin_post(&app, "/api/notifications/", Some(bad), &single).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
    }
    let invalid = json!({ "user_id": user.id, "title": "", "message": "m", "notification_type": "system" });
    assert_eq!(
        admin_post(&app, "/api/notifications/", Some("key-4"), &invalid).await.0,
        StatusCode::BAD_REQUEST
    );
    let fixed = json!({ "user_id": user.id, "title": "Fixed", "message": "m", "notification_type": "system" });
    assert_eq!(
        admin_post(&app, "/api/notifications/", Some("key-4"), &fixed).await.0,
        StatusCode::CREATED
    );
    expect_one_push(&mut socket, "Fixed").await;
    assert_eq!(app.get("/api/notifications/", Some(&user.token)).await.1["count"], 3);
}

async fn racing_retries_create_once(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let users = [app.new_user().await, app.new_user().await];
    let mut sockets = [app.ws(&users[0]).await, app.ws(&users[1]).await];
    let ids: Vec<i32> = users.iter().map(|u| u.id).collect();
    let body = bulk_body(json!({ "user_ids": ids }));
    let tries = (0..8).map(|_| admin_post(&app, "/api/notifications/bulk/", Some("race"), &body));
    let answers = futures_util::future::join_all(tries).await;
    for answer in &answers {
        assert_eq!(answer, &(StatusCode::CREATED, json!({ "created": 2 })), "{answers:?}");
    }
    for socket in &mut sockets {
        expect_one_push(socket, "Hello").await;
    }
    assert_eq!(notification::Entity::find().all(&app.db).await.unwrap().len(), 2);
}

fn global_path(g: &Value) -> String {
    format!("/api/global-notifications/{}/", g["id"])
}

async fn patch(app: &TestApp, g: &Value, body: Value) -> (StatusCode, Value) {
    app.request(Method::PATCH, &global_path(g), Some(&app.admin_token), Some(body))
        .await
}

async fn live_ids(app: &TestApp) -> Vec<i64> {
    let (_, body) = app.get("/api/global-notifications/", None).await;
    body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_i64().unwrap())
        .collect()
}

/// Each socket receives `expected` next, then nothing.
async fn each_sees(sockets: &mut [WsClient], expected: impl Fn(&Value)) {
    for socket in sockets.iter_mut() {
        expected(&socket.json().await);
        socket.expect_silence(QUIET).await;
    }
}

fn removed(id: &Value) -> impl Fn(&Value) + '_ {
    move |msg| assert_eq!(msg, &json!({ "type": "global_notification_removed", "id": id }))
}

/// A whole announcement pushed (created, or `edited` again: the tests check the shape elsewhere).
fn pushed<'a>(id: &'a Value, title: &'a str) -> impl Fn(&Value) + 'a {
    move |msg| {
        assert_eq!(msg["type"], "global_notification", "{msg}");
        assert_eq!(msg["notification"]["id"], *id, "{msg}");
        assert_eq!(msg["notification"]["title"], title, "{msg}");
    }
}

async fn announcements_are_edited_withdrawn_and_restored_live(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let mut sockets = [app.ws(&alice).await, app.ws(&alice).await, app.ws(&bob).await];
    let g = app
        .announce(json!({ "title": "Maintenance", "message": "tonight", "level": "info" }))
        .await;
    let id = g["id"].clone();
    each_sees(&mut sockets, pushed(&id, "Maintenance")).await;

    // Every field at once: 200 with every field; still live, so pushed whole again.
    let later = "2030-01-02T03:04:05Z";
    let (status, body) = patch(
        &app,
        &g,
        json!({ "title": "Maintenance moved", "message": "tomorrow", "level": "warning", "expires_at": later,
                "is_active": true, "show_on_site": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "id": id, "title": "Maintenance moved", "message": "tomorrow", "level": "warning",
                "created_at": g["created_at"], "expires_at": later, "is_active": true, "show_on_site": true })
    );
    for socket in sockets.iter_mut() {
        let msg = socket.json().await;
        assert_eq!(
            msg,
            json!({ "type": "global_notification", "edited": true, "notification": {
                "id": id, "title": "Maintenance moved", "message": "tomorrow", "level": "warning",
                "created_at": g["created_at"], "expires_at": later } })
        );
        socket.expect_silence(QUIET).await;
    }
    // null clears the expiry.
    let (_, body) = patch(&app, &g, json!({ "expires_at": null })).await;
    assert_eq!(body["expires_at"], Value::Null);
    each_sees(&mut sockets, pushed(&id, "Maintenance moved")).await;

    // Deactivated: withdrawn everywhere and gone from the list; reactivated: back.
    patch(&app, &g, json!({ "is_active": false })).await;
    each_sees(&mut sockets, removed(&id)).await;
    assert!(live_ids(&app).await.is_empty());
    patch(&app, &g, json!({ "is_active": true })).await;
    each_sees(&mut sockets, pushed(&id, "Maintenance moved")).await;
    assert_eq!(live_ids(&app).await, [id.as_i64().unwrap()]);

    // Hidden, then shown again.
    patch(&app, &g, json!({ "show_on_site": false })).await;
    each_sees(&mut sockets, removed(&id)).await;
    patch(&app, &g, json!({ "show_on_site": true })).await;
    each_sees(&mut sockets, pushed(&id, "Maintenance moved")).await;

    // An expiry in the past withdraws it now.
    let (status, _) = patch(&app, &g, json!({ "expires_at": "2020-01-01T00:00:00Z" })).await;
    assert_eq!(status, StatusCode::OK);
    each_sees(&mut sockets, removed(&id)).await;
    assert!(live_ids(&app).await.is_empty());
    patch(&app, &g, json!({ "expires_at": null })).await;
    each_sees(&mut sockets, pushed(&id, "Maintenance moved")).await;

    // Deleted: withdrawn, gone, and then unknown.
    let (status, body) = app
        .request(Method::DELETE, &global_path(&g), Some(&app.admin_token), None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({ "success": true, "message": "Announcement deleted" })
        )
    );
    each_sees(&mut sockets, removed(&id)).await;
    assert!(live_ids(&app).await.is_empty());
    let (status, _) = app
        .request(Method::DELETE, &global_path(&g), Some(&app.admin_token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(patch(&app, &g, json!({ "title": "x" })).await.0, StatusCode::NOT_FOUND);
}

async fn announcement_edits_are_validated(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let g = app
        .announce(json!({ "title": "T", "message": "M", "level": "info", "is_active": false }))
        .await;
    let far = (Utc::now() + chrono::Duration::days(11 * 365)).to_rfc3339();
    for bad in [
        json!({}),
        json!({ "title": "" }),
        json!({ "level": "critical" }),
        json!({ "expires_at": "soon" }),
        json!({ "expires_at": far }),
        json!({ "expires_at": "9999-12-31T23:59:59-14:00" }),
        json!({ "is_active": "yes" }),
        json!({ "colour": "red" }),
    ] {
        let (status, body) = patch(&app, &g, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for bad_create in [
        json!({ "title": "T", "message": "M", "level": "info", "expires_at": far }),
        json!({ "title": "T", "message": "M", "level": "info", "expires_at": "9999-12-31T23:59:59-14:00" }),
    ] {
        let (status, _) = app
            .post("/api/global-notifications/", Some(&app.admin_token), Some(bad_create))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let user_patch = app
        .request(
            Method::PATCH,
            &global_path(&g),
            Some(&user.token),
            Some(json!({ "title": "x" })),
        )
        .await;
    assert_eq!(user_patch.0, StatusCode::FORBIDDEN);
    let user_delete = app
        .request(Method::DELETE, &global_path(&g), Some(&user.token), None)
        .await;
    assert_eq!(user_delete.0, StatusCode::FORBIDDEN);
    let (_, all) = app
        .get("/api/admin/global-notifications/", Some(&app.admin_token))
        .await;
    assert_eq!(all["notifications"][0]["title"], "T", "nothing changed");
    socket.expect_silence(QUIET).await;
}

async fn an_announcement_is_withdrawn_when_it_expires(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut sockets = [app.ws(&user).await, app.ws(&user).await];
    let soon = (Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let g = app
        .announce(json!({ "title": "Brief", "message": "m", "level": "info", "expires_at": soon }))
        .await;
    let stays = app
        .announce(json!({ "title": "Stays", "message": "m", "level": "info" }))
        .await;
    for socket in sockets.iter_mut() {
        assert_eq!(socket.json().await["notification"]["id"], g["id"]);
        assert_eq!(socket.json().await["notification"]["id"], stays["id"]);
    }
    // An edit re-arms the timer: moved one second later, it expires then, not before.
    let later = (Utc::now() + chrono::Duration::milliseconds(2500)).to_rfc3339();
    patch(&app, &g, json!({ "expires_at": later })).await;
    each_sees(&mut sockets, pushed(&g["id"], "Brief")).await;
    for socket in sockets.iter_mut() {
        // Generous bound: the removal comes within a second of the expiry.
        match socket.next(Duration::from_secs(5)).await {
            Seen::Json(msg) => removed(&g["id"])(&msg),
            other => panic!("expected the removal, saw {other:?}"),
        }
        socket.expect_silence(QUIET).await;
    }
    assert!(
        Utc::now() >= chrono::DateTime::parse_from_rfc3339(&later).unwrap(),
        "not before its expiry"
    );
    assert_eq!(live_ids(&app).await, [stays["id"].as_i64().unwrap()]);
}

fn days_ago(days: i64) -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

async fn insert_notification(
    app: &TestApp,
    user_id: i32,
    title: &str,
    is_read: bool,
    created_at: chrono::DateTime<Utc>,
) {
    let row = notification::ActiveModel {
        user_id: Set(user_id),
        title: Set(title.into()),
        message: Set("m".into()),
        notification_type: Set(entity::notification::NotificationType::System),
        is_read: Set(is_read),
        link: Set(String::new()),
        created_at: Set(created_at),
        ..Default::default()
    };
    app.saving(row.insert(&app.db)).await.unwrap();
}

async fn titles_of(app: &TestApp, user_id: i32) -> Vec<String> {
    notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .order_by_asc(notification::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.title)
        .collect()
}

async fn retention_deletes_exactly_what_it_should(backend: Backend) {
    // The periodic job is off: the test runs it itself.
    let app = spawn_app_with(backend, |s| s.retention.interval_secs = 0).await;
    let (alice, bob, carol) = (app.new_user().await, app.new_user().await, app.new_user().await);
    // Alice: old read ones go, old unread and recent read ones stay.
    insert_notification(&app, alice.id, "old read", true, days_ago(100)).await;
    insert_notification(&app, alice.id, "old unread", false, days_ago(100)).await;
    insert_notification(&app, alice.id, "recent read", true, days_ago(10)).await;
    insert_notification(&app, alice.id, "edge read", true, days_ago(89)).await;
    // Bob, over a cap of 3: the oldest read ones go first, unread stay.
    insert_notification(&app, bob.id, "u1", false, days_ago(9)).await;
    insert_notification(&app, bob.id, "r1", true, days_ago(8)).await;
    insert_notification(&app, bob.id, "u2", false, days_ago(7)).await;
    insert_notification(&app, bob.id, "r2", true, days_ago(6)).await;
    insert_notification(&app, bob.id, "r3", true, days_ago(5)).await;
    insert_notification(&app, bob.id, "u3", false, days_ago(4)).await;
    // Carol: more unread than the cap: the oldest go.
    for (i, age) in [5, 4, 3, 2, 1].into_iter().enumerate() {
        insert_notification(&app, carol.id, &format!("c{i}"), false, days_ago(age)).await;
    }
    // Idempotency keys: one a day old goes, a fresh one stays.
    let admin_id = app
        .login(crate::helpers::ADMIN, crate::helpers::ADMIN_PASSWORD)
        .await
        .id;
    for (key, age) in [
        ("stale", chrono::Duration::hours(25)),
        ("fresh", chrono::Duration::hours(1)),
    ] {
        idempotency_key::ActiveModel {
            admin_id: Set(admin_id),
            key: Set(key.into()),
            fingerprint: Set("f".into()),
            status: Set(Some(201)),
            body: Set(Some("{}".into())),
            created_at: Set(Utc::now() - age),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    // Logins: an expired one goes, live ones stay (the users' own).
    let logins_before = auth_token::Entity::find().all(&app.db).await.unwrap().len();
    auth_token::ActiveModel {
        user_id: Set(alice.id),
        token_hash: Set("e".repeat(64)),
        csrf_token: Set("c".into()),
        created_at: Set(days_ago(30)),
        expires_at: Set(days_ago(1)),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();

    let settings = RetentionSettings {
        read_after_days: 90,
        max_per_user: 3,
        interval_secs: 0,
    };
    let deleted = retention::run_once(&app.db, &settings, app.outbox.versions())
        .await
        .unwrap()
        .expect("the lock is free");
    assert_eq!(
        deleted,
        retention::Deleted {
            old_read: 1,
            over_cap: 3 + 2,
            idempotency_keys: 1,
            expired_logins: 1
        }
    );
    assert_eq!(
        titles_of(&app, alice.id).await,
        ["old unread", "recent read", "edge read"]
    );
    assert_eq!(titles_of(&app, bob.id).await, ["u1", "u2", "u3"]);
    assert_eq!(titles_of(&app, carol.id).await, ["c2", "c3", "c4"]);
    let keys: Vec<String> = idempotency_key::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(keys, ["fresh"]);
    assert_eq!(
        auth_token::Entity::find().all(&app.db).await.unwrap().len(),
        logins_before
    );
    // The users' logins still work; the list reflects the deletions.
    assert_eq!(app.get("/api/notifications/", Some(&bob.token)).await.1["count"], 3);

    // A second run finds nothing more; with 0 the limits are off.
    let again = retention::run_once(&app.db, &settings, app.outbox.versions())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, retention::Deleted::default());
    let off = RetentionSettings {
        read_after_days: 0,
        max_per_user: 0,
        interval_secs: 0,
    };
    insert_notification(&app, alice.id, "ancient read", true, days_ago(1000)).await;
    assert_eq!(
        retention::run_once(&app.db, &off, app.outbox.versions())
            .await
            .unwrap()
            .unwrap(),
        retention::Deleted::default()
    );
    assert_eq!(titles_of(&app, alice.id).await.len(), 4);
}

both_backends!(
    bulk_reaches_each_recipient_once_and_no_one_else,
    bulk_refuses_bad_targets_and_creates_nothing,
    bulk_to_more_users_than_a_batch,
    a_retried_key_replays_the_first_answer_and_pushes_once,
    racing_retries_create_once,
    announcements_are_edited_withdrawn_and_restored_live,
    announcement_edits_are_validated,
    an_announcement_is_withdrawn_when_it_expires,
    retention_deletes_exactly_what_it_should,
    keys_belong_to_one_admin,
);

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn retention_runs_on_one_postgres_node_at_a_time() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
    let app = spawn_app_with(Backend::Postgres, |s| s.retention.interval_secs = 0).await;
    let user = app.new_user().await;
    insert_notification(&app, user.id, "old read", true, days_ago(100)).await;
    let settings = RetentionSettings::default();

    // Another node is running it: this one skips, deleting nothing.
    let other = app.db.begin().await.unwrap();
    other
        .execute_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            format!("SELECT pg_advisory_xact_lock({})", retention::ADVISORY_LOCK_KEY),
        ))
        .await
        .unwrap();
    assert_eq!(
        retention::run_once(&app.db, &settings, app.outbox.versions())
            .await
            .unwrap(),
        None
    );
    assert_eq!(titles_of(&app, user.id).await, ["old read"]);

    // Once it is done, this node runs.
    other.rollback().await.unwrap();
    let deleted = retention::run_once(&app.db, &settings, app.outbox.versions())
        .await
        .unwrap()
        .expect("the lock is free");
    assert_eq!(deleted.old_read, 1);
    assert!(titles_of(&app, user.id).await.is_empty());
}

async fn keys_belong_to_one_admin(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    // A second admin (admins are made by the operator: here, in the database).
    let second = app.new_user().await;
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::Role, "admin".into())
        .filter(entity::user::Column::Id.eq(second.id))
        .exec(&app.db)
        .await
        .unwrap();
    let body = json!({ "user_id": user.id, "title": "Shared key", "message": "m", "notification_type": "system" });
    let first = admin_post(&app, "/api/notifications/", Some("same"), &body).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let other_admin = Api {
        address: app.address.clone(),
        port: app.port,
        http: app.http.clone(),
        admin_token: second.token.clone(),
    };
    let theirs = admin_post(&other_admin, "/api/notifications/", Some("same"), &body).await;
    assert_eq!(theirs.0, StatusCode::CREATED);
    assert_ne!(theirs.1["id"], first.1["id"], "another admin's key is another key");
    for _ in 0..2 {
        assert_eq!(socket.json().await["notification"]["title"], "Shared key");
    }
    socket.expect_silence(QUIET).await;
}
