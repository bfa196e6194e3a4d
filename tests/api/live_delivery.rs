//! Pushes: who receives what, from every code path that saves a notification.
use std::time::Duration;

use entity::{global_notification, notification};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DbErr};
use serde_json::{Value, json};

use crate::helpers::{Backend, notification_row, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

async fn user_notifications_reach_only_that_users_sockets(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let mut alice_tabs = vec![app.ws(&alice).await, app.ws(&alice).await];
    let mut bob_tabs = vec![app.ws(&bob).await, app.ws(&bob).await];

    let created = app.notify(alice.id, "for alice").await;

    for tab in &mut alice_tabs {
        let msg = tab.json().await;
        assert_eq!(msg, json!({ "type": "notification", "notification": created }));
    }
    for tab in &mut bob_tabs {
        tab.expect_silence(QUIET).await;
    }
}

async fn global_notifications_reach_every_socket_when_live(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let mut sockets = vec![app.ws(&alice).await, app.ws(&alice).await, app.ws(&bob).await];

    // Not live: never pushed.
    app.announce(json!({ "title": "off", "message": "m", "level": "info", "is_active": false }))
        .await;
    app.announce(json!({ "title": "hidden", "message": "m", "level": "info", "show_on_site": false }))
        .await;
    app.announce(json!({ "title": "past", "message": "m", "level": "info", "expires_at": "2020-01-01T00:00:00Z" }))
        .await;
    let live = app
        .announce(json!({ "title": "Maintenance", "message": "tonight", "level": "warning" }))
        .await;

    for socket in &mut sockets {
        let msg = socket.json().await;
        assert_eq!(msg["type"], "global_notification");
        assert_eq!(msg["notification"]["id"], live["id"]);
        assert_eq!(msg["notification"]["title"], "Maintenance");
        assert_eq!(msg["notification"]["level"], "warning");
        assert_eq!(msg["notification"]["created_at"], live["created_at"]);
        socket.expect_silence(QUIET).await;
    }
}

async fn saving_through_the_entity_pushes_without_http(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;

    let saved = app
        .saving(
            notification::ActiveModel {
                message: Set("no HTTP involved".into()),
                ..notification_row(user.id, "from a background job")
            }
            .insert(&app.db),
        )
        .await
        .unwrap();
    let msg = socket.json().await;
    assert_eq!(msg["type"], "notification");
    assert_eq!(msg["notification"]["id"], saved.id);
    assert_eq!(msg["notification"]["link"], "");

    app.saving(
        global_notification::ActiveModel {
            title: Set("direct".into()),
            message: Set("announcement".into()),
            level: Set(entity::global_notification::Level::Info),
            ..Default::default()
        }
        .insert(&app.db),
    )
    .await
    .unwrap();
    assert_eq!(socket.json().await["type"], "global_notification");

    // An update is not a creation: nothing is pushed again.
    let mut read: notification::ActiveModel = saved.into();
    read.is_read = Set(true);
    app.saving(read.update(&app.db)).await.unwrap();
    socket.expect_silence(QUIET).await;
}

async fn transactions_push_only_after_commit(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let new_row = |title: &str| notification_row(user.id, title);

    let rolled_back = new_row("rolled back");
    let result = app
        .saving(entity::transaction::run(&app.db, |txn| {
            Box::pin(async move {
                rolled_back.insert(txn).await?;
                Err::<(), DbErr>(DbErr::Custom("changed my mind".into()))
            })
        }))
        .await;
    assert!(result.is_err());
    socket.expect_silence(QUIET).await;
    assert_eq!(app.get("/api/notifications/", Some(&user.token)).await.1["count"], 0);

    let (a, b) = (new_row("a"), new_row("b"));
    app.saving(entity::transaction::run(&app.db, |txn| {
        Box::pin(async move {
            a.insert(txn).await?;
            b.insert(txn).await?;
            Ok::<(), DbErr>(())
        })
    }))
    .await
    .unwrap();
    assert_eq!(socket.json().await["notification"]["title"], "a");
    assert_eq!(socket.json().await["notification"]["title"], "b");
}

async fn bulk_inserts_push_every_row(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let mut alice_socket = app.ws(&alice).await;
    let mut bob_socket = app.ws(&bob).await;
    let rows = (0..3)
        .map(|i| notification::ActiveModel {
            notification_type: Set(entity::notification::NotificationType::JobPost),
            ..notification_row(if i == 1 { bob.id } else { alice.id }, format!("bulk {i}"))
        })
        .collect();
    let saved = app
        .saving(notification::insert_many_and_push(&app.db, rows))
        .await
        .unwrap();
    assert_eq!(saved.len(), 3);
    assert_eq!(alice_socket.json().await["notification"]["title"], "bulk 0");
    assert_eq!(alice_socket.json().await["notification"]["title"], "bulk 2");
    assert_eq!(bob_socket.json().await["notification"]["title"], "bulk 1");
    alice_socket.expect_silence(QUIET).await;
}

async fn reads_sync_every_tab_of_the_user(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let mut tab1 = app.ws(&user).await;
    let mut tab2 = app.ws(&user).await;
    let mut stranger = app.ws(&other).await;
    let n1 = app.notify(user.id, "one").await;
    let n2 = app.notify(user.id, "two").await;
    let n3 = app.notify(user.id, "three").await;
    for tab in [&mut tab1, &mut tab2] {
        for _ in 0..3 {
            assert_eq!(tab.json().await["type"], "notification");
        }
    }

    // Over the socket: both tabs learn it, and REST agrees.
    tab1.send_json(json!({ "action": "mark_read", "notification_id": n1["id"] }))
        .await;
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            tab.json().await,
            json!({ "type": "notification_read", "notification_ids": [n1["id"]], "unread_count": 2 })
        );
    }
    assert_eq!(
        app.get("/api/notifications/", Some(&user.token)).await.1["unread_count"],
        2
    );

    // Over REST: the same message.
    app.post(
        &format!("/api/notifications/{}/mark-read/", n2["id"]),
        Some(&user.token),
        None,
    )
    .await;
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            tab.json().await,
            json!({ "type": "notification_read", "notification_ids": [n2["id"]], "unread_count": 1 })
        );
    }
    app.post("/api/notifications/mark-all-read/", Some(&user.token), None)
        .await;
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(
            tab.json().await,
            json!({ "type": "notification_read", "notification_ids": [n3["id"]], "unread_count": 0 })
        );
    }
    stranger.expect_silence(QUIET).await;
}

async fn marking_someone_elses_notification_over_the_socket_fails_alone(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.new_user().await;
    let intruder = app.new_user().await;
    let mut owner_socket = app.ws(&owner).await;
    let mut intruder_socket = app.ws(&intruder).await;
    let mut intruder_tab2 = app.ws(&intruder).await;
    let n = app.notify(owner.id, "private").await;
    assert_eq!(owner_socket.json().await["type"], "notification");

    for id in [n["id"].clone(), json!(987654)] {
        intruder_socket
            .send_json(json!({ "action": "mark_read", "notification_id": id }))
            .await;
        let reply = intruder_socket.json().await;
        assert_eq!(reply["type"], "error");
        assert!(reply["error"].is_string());
    }
    intruder_tab2.expect_silence(QUIET).await;
    owner_socket.expect_silence(QUIET).await;
    assert_eq!(
        app.get("/api/notifications/", Some(&owner.token)).await.1["unread_count"],
        1
    );
}

async fn a_burst_of_200_arrives_complete_and_in_order(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let saved = app
            .saving(
                notification::ActiveModel {
                    notification_type: Set(entity::notification::NotificationType::Message),
                    ..notification_row(user.id, format!("burst {i}"))
                }
                .insert(&app.db),
            )
            .await
            .unwrap();
        ids.push(saved.id);
    }
    let mut received = Vec::new();
    for _ in 0..200 {
        let msg: Value = socket.json().await;
        received.push(msg["notification"]["id"].as_i64().unwrap() as i32);
    }
    assert_eq!(received, ids);
    socket.expect_silence(QUIET).await;
}

/// Creates that arrive together are saved in one statement (the group commit): each request
/// still gets its own row, each row reaches its user's socket once, and a create naming no user
/// fails alone.
async fn concurrent_creates_each_get_their_own_row_and_push(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let mut alice_socket = app.ws(&alice).await;
    let mut bob_socket = app.ws(&bob).await;

    // Every third names nobody; alice's titles repeat, so identical creates meet in a batch.
    let requests = (0..60).map(|i| {
        let (user_id, title) = match i % 3 {
            0 => (alice.id, format!("same for alice {}", i % 2)),
            1 => (bob.id, format!("for bob {i}")),
            _ => (999_999, format!("for nobody {i}")),
        };
        let body = json!({ "user_id": user_id, "title": title, "message": "m", "notification_type": "system" });
        let app = &app;
        async move {
            let answer = app
                .post("/api/notifications/", Some(&app.admin_token), Some(body))
                .await;
            (user_id, title, answer)
        }
    });
    let answers = futures_util::future::join_all(requests).await;

    let mut created = std::collections::HashMap::<i32, Vec<Value>>::new();
    for (user_id, title, (status, body)) in answers {
        if user_id == 999_999 {
            assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
            assert!(body["error"].is_string(), "{body}");
        } else {
            assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
            assert_eq!(body["title"], title.as_str(), "each request gets its own row back");
            created.entry(user_id).or_default().push(body);
        }
    }
    let mut ids: Vec<i64> = created.values().flatten().map(|n| n["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every create got a row of its own");

    for (user, socket) in [(&alice, &mut alice_socket), (&bob, &mut bob_socket)] {
        let mut expected = created.remove(&user.id).unwrap();
        let mut pushed = Vec::new();
        for _ in 0..expected.len() {
            let msg = socket.json().await;
            assert_eq!(msg["type"], "notification");
            pushed.push(msg["notification"].clone());
        }
        socket.expect_silence(QUIET).await;
        let by_id = |n: &Value| n["id"].as_i64();
        expected.sort_by_key(by_id);
        pushed.sort_by_key(by_id);
        assert_eq!(pushed, expected, "each 201 body pushed once, to its own user only");
        let (_, list) = app.get("/api/notifications/", Some(&user.token)).await;
        assert_eq!(list["count"], 20);
    }
}

/// The hub hands each push to every worker thread with sockets in the group, once, and that
/// thread writes it to its own sockets: spread over several workers, each socket still gets
/// every push once, in the order the rows were saved, and nobody else's.
#[actix_web::test]
async fn sockets_on_every_worker_thread_get_every_push_once_in_order() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.workers = 3).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let mut alice_tabs = Vec::new();
    let mut bob_tabs = Vec::new();
    // Connections go to the workers in turn: both users have sockets on every one.
    for _ in 0..3 {
        alice_tabs.push(app.ws(&alice).await);
        alice_tabs.push(app.ws(&alice).await);
        bob_tabs.push(app.ws(&bob).await);
    }

    let mut for_alice = Vec::new();
    let mut for_bob = Vec::new();
    for round in 0..10 {
        let rows = (0..3)
            .map(|i| notification_row(alice.id, format!("round {round}, {i}")))
            .collect();
        let saved = app
            .saving(notification::insert_many_and_push(&app.db, rows))
            .await
            .unwrap();
        for_alice.extend(saved.iter().map(|n| ("notification".to_owned(), i64::from(n.id))));
        let live = app
            .announce(json!({ "title": format!("round {round}"), "message": "m", "level": "info" }))
            .await;
        let announced = ("global_notification".to_owned(), live["id"].as_i64().unwrap());
        for_alice.push(announced.clone());
        for_bob.push(announced);
    }

    for (tabs, expected) in [(&mut alice_tabs, &for_alice), (&mut bob_tabs, &for_bob)] {
        for tab in tabs.iter_mut() {
            let mut got = Vec::new();
            for _ in 0..expected.len() {
                let msg = tab.json().await;
                let kind = msg["type"].as_str().unwrap().to_owned();
                got.push((kind, msg["notification"]["id"].as_i64().unwrap()));
            }
            assert_eq!(&got, expected);
        }
        for tab in tabs.iter_mut() {
            tab.expect_silence(QUIET).await;
        }
    }
}

async fn two_servers_in_one_process_each_push_only_their_own_saves(backend: Backend) {
    let one = spawn_app_with(backend, |_| {}).await;
    let other = spawn_app_with(backend, |_| {}).await;
    // Each on its own database: the same user id on both, so a push that reached the wrong
    // server's hub would land on the other user's socket.
    let (alice, bob) = (one.new_user().await, other.new_user().await);
    assert_eq!(alice.id, bob.id);
    let (mut on_one, mut on_other) = (one.ws(&alice).await, other.ws(&bob).await);

    let created = one.notify(alice.id, "over one's API").await;
    assert_eq!(on_one.json().await["notification"]["id"], created["id"]);
    let saved = other
        .saving(notification_row(bob.id, "saved in other's scope").insert(&other.db))
        .await
        .unwrap();
    assert_eq!(on_other.json().await["notification"]["id"], saved.id);
    let live = one
        .announce(json!({ "title": "one's news", "message": "m", "level": "info" }))
        .await;
    assert_eq!(on_one.json().await["notification"]["id"], live["id"]);

    on_one.expect_silence(QUIET).await;
    on_other.expect_silence(QUIET).await;
}

async fn a_save_outside_any_scope_is_kept_but_not_pushed(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;

    // A script or a spawned task that did not carry the scope: no server to push it.
    let unpushed = notification_row(user.id, "outside").insert(&app.db).await.unwrap();
    socket.expect_silence(QUIET).await;
    let (_, listed) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(listed["notifications"][0]["id"], unpushed.id, "saved all the same");

    // The same save in the server's scope is pushed: the socket was listening.
    let pushed = app
        .saving(notification_row(user.id, "inside").insert(&app.db))
        .await
        .unwrap();
    assert_eq!(socket.json().await["notification"]["id"], pushed.id);
}

both_backends!(
    user_notifications_reach_only_that_users_sockets,
    global_notifications_reach_every_socket_when_live,
    saving_through_the_entity_pushes_without_http,
    transactions_push_only_after_commit,
    bulk_inserts_push_every_row,
    reads_sync_every_tab_of_the_user,
    marking_someone_elses_notification_over_the_socket_fails_alone,
    a_burst_of_200_arrives_complete_and_in_order,
    concurrent_creates_each_get_their_own_row_and_push,
    two_servers_in_one_process_each_push_only_their_own_saves,
    a_save_outside_any_scope_is_kept_but_not_pushed,
);
