//! Catch-up after a reconnect: `last_id`, `last_global_id` and `sync=1` on the handshake, the
//! replay, the `sync` message, its bound, and no gap or duplicate across the replay's end.
use std::time::Duration;

use chrono::Utc;
use entity::{global_notification, notification};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

use crate::helpers::{Api, Backend, Seen, TestUser, WsClient, notification_row, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);
/// What the server replays at most (`services::catch_up::REPLAY_MAX`).
const REPLAY_MAX: usize = 500;

/// Opens a Bearer socket with `query` on the handshake URL; Err is the refusal's status and body.
pub async fn ws_query(api: &Api, user: &TestUser, query: &str) -> Result<WsClient, (u16, Value)> {
    let mut req = format!("{}?{query}", api.ws_url())
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {}", user.token)).expect("header"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((stream, _)) => Ok(WsClient { stream }),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("a JSON refusal: {body:?}"));
            Err((resp.status().as_u16(), json))
        }
        Err(e) => panic!("WebSocket handshake failed unexpectedly: {e}"),
    }
}

fn id_of(msg: &Value) -> i32 {
    msg["notification"]["id"].as_i64().expect("an id") as i32
}

/// Reads messages up to and including the `sync` message; answers those before it and it.
async fn until_sync(socket: &mut WsClient) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        // Generous: a replay of hundreds of frames on a loaded machine.
        let msg = match socket.next(Duration::from_secs(20)).await {
            Seen::Json(msg) => msg,
            other => panic!("expected the replay, saw {other:?} after {} messages", before.len()),
        };
        if msg["type"] == "sync" {
            return (before, msg);
        }
        before.push(msg);
    }
}

async fn saved_notifications(app: &crate::helpers::TestApp, user_id: i32, count: usize) -> Vec<i32> {
    let rows = (0..count).map(|i| notification_row(user_id, format!("missed {i}")));
    // Saved while the test's client is away (its sockets of the moment are dropped unread).
    app.saving(notification::insert_many_and_push(&app.db, rows.collect()))
        .await
        .unwrap();
    let mut ids: Vec<i32> = notification::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.user_id == user_id)
        .map(|n| n.id)
        .collect();
    ids.sort_unstable();
    ids
}

async fn the_replay_sends_what_was_missed_in_order_then_sync(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let seen = app.notify(alice.id, "seen before the reconnect").await;
    let read = app.notify(alice.id, "missed, then read elsewhere").await;
    let (status, _) = app
        .post(
            &format!("/api/notifications/{}/mark-read/", read["id"]),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    app.notify(bob.id, "bob's, never alice's").await;
    let deleted = app.notify(alice.id, "deleted before the reconnect").await;
    notification::Entity::delete_by_id(deleted["id"].as_i64().unwrap() as i32)
        .exec(&app.db)
        .await
        .unwrap();
    let unread = app.notify(alice.id, "missed, unread").await;
    let unread_id = unread["id"].clone();

    let seen_global = app
        .announce(json!({ "title": "seen", "message": "m", "level": "info" }))
        .await;
    let live = app
        .announce(json!({ "title": "missed", "message": "m", "level": "warning" }))
        .await;
    app.announce(json!({ "title": "off", "message": "m", "level": "info", "is_active": false }))
        .await;
    app.announce(json!({ "title": "hidden", "message": "m", "level": "info", "show_on_site": false }))
        .await;
    app.saving(
        global_notification::ActiveModel {
            title: Set("expired".into()),
            message: Set("m".into()),
            level: Set(entity::global_notification::Level::Info),
            is_active: Set(true),
            show_on_site: Set(true),
            expires_at: Set(Some(Utc::now() - chrono::Duration::minutes(1))),
            ..Default::default()
        }
        .insert(&app.db),
    )
    .await
    .unwrap();

    let query = format!("last_id={}&last_global_id={}", seen["id"], seen_global["id"]);
    let mut socket = ws_query(&app, &alice, &query).await.expect("accepted");
    let (replayed, sync) = until_sync(&mut socket).await;

    let personal: Vec<&Value> = replayed.iter().filter(|m| m["type"] == "notification").collect();
    let global: Vec<&Value> = replayed.iter().filter(|m| m["type"] == "global_notification").collect();
    assert_eq!(personal.len() + global.len(), replayed.len(), "{replayed:?}");
    let mut read_now = read.clone();
    read_now["is_read"] = json!(true);
    assert_eq!(
        personal.iter().map(|m| m["notification"].clone()).collect::<Vec<_>>(),
        [read_now, unread],
        "alice's missed notifications, oldest first, as stored now; not bob's, not the deleted one"
    );
    assert_eq!(global.len(), 1, "only the live announcement: {global:?}");
    assert_eq!(global[0]["notification"]["id"], live["id"]);
    assert_eq!(global[0]["notification"]["title"], "missed");
    assert_eq!(
        sync,
        json!({ "type": "sync", "unread_count": 2, "replayed": 3, "complete": true })
    );

    // Live pushes follow, once.
    let after = app.notify(alice.id, "after the replay").await;
    assert_eq!(
        socket.json().await,
        json!({ "type": "notification", "notification": after })
    );
    socket.expect_silence(QUIET).await;

    // `last_id=0` replays everything still stored; no `last_global_id`, no announcement.
    let mut all = ws_query(&app, &alice, "last_id=0").await.expect("accepted");
    let (replayed, sync) = until_sync(&mut all).await;
    assert!(replayed.iter().all(|m| m["type"] == "notification"), "{replayed:?}");
    let ids: Vec<&Value> = replayed.iter().map(|m| &m["notification"]["id"]).collect();
    assert_eq!(ids, [&seen["id"], &read["id"], &unread_id, &after["id"]]);
    assert_eq!(sync["replayed"], 4);
    all.expect_silence(QUIET).await;
}

async fn the_replay_is_bounded_and_says_when_it_is_incomplete(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let ids = saved_notifications(&app, user.id, REPLAY_MAX).await;

    // Exactly the bound: all of it, complete.
    let mut socket = ws_query(&app, &user, "last_id=0").await.expect("accepted");
    let (replayed, sync) = until_sync(&mut socket).await;
    assert_eq!(replayed.iter().map(id_of).collect::<Vec<_>>(), ids);
    assert_eq!(
        sync,
        json!({ "type": "sync", "unread_count": REPLAY_MAX, "replayed": REPLAY_MAX, "complete": true })
    );

    // One more: the oldest REPLAY_MAX, and the client is told to refetch.
    let ids = saved_notifications(&app, user.id, 1).await;
    let mut socket = ws_query(&app, &user, "last_id=0").await.expect("accepted");
    let (replayed, sync) = until_sync(&mut socket).await;
    assert_eq!(replayed.iter().map(id_of).collect::<Vec<_>>(), ids[..REPLAY_MAX]);
    assert_eq!(
        sync,
        json!({ "type": "sync", "unread_count": REPLAY_MAX + 1, "replayed": REPLAY_MAX, "complete": false })
    );
    // Live pushes still follow.
    let after = app.notify(user.id, "live").await;
    assert_eq!(socket.json().await["notification"], after);

    // From the last one seen, what is left fits.
    let query = format!("last_id={}", ids[REPLAY_MAX - 1]);
    let mut socket = ws_query(&app, &user, &query).await.expect("accepted");
    let (replayed, sync) = until_sync(&mut socket).await;
    assert_eq!(
        replayed.iter().map(id_of).collect::<Vec<_>>(),
        [ids[REPLAY_MAX], id_of(&json!({ "notification": after }))]
    );
    assert_eq!(sync["complete"], true);
}

async fn sync_alone_replays_nothing_and_no_parameter_changes_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    app.notify(user.id, "one").await;
    app.notify(user.id, "two").await;
    app.announce(json!({ "title": "live", "message": "m", "level": "info" }))
        .await;

    let mut synced = ws_query(&app, &user, "sync=1").await.expect("accepted");
    assert_eq!(
        synced.json().await,
        json!({ "type": "sync", "unread_count": 2, "replayed": 0, "complete": true })
    );
    synced.expect_silence(QUIET).await;

    // The seed's stream: nothing on connect, not even a sync message.
    let mut plain = app.ws(&user).await;
    let mut other_params = ws_query(&app, &user, "sync=0&utm=x").await.expect("accepted");
    plain.expect_silence(QUIET).await;
    other_params.expect_silence(QUIET).await;
    let live = app.notify(user.id, "three").await;
    for socket in [&mut synced, &mut plain, &mut other_params] {
        assert_eq!(socket.json().await["notification"], live);
        socket.expect_silence(QUIET).await;
    }
}

async fn a_muted_type_is_never_replayed(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            "/api/preferences/",
            Some(&user.token),
            Some(json!({ "muted_types": ["message"] })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    app.notify(user.id, "muted: a message").await;
    let system = app
        .saving(notification_row(user.id, "not muted").insert(&app.db))
        .await
        .unwrap();

    let mut socket = ws_query(&app, &user, "last_id=0").await.expect("accepted");
    let (replayed, sync) = until_sync(&mut socket).await;
    assert_eq!(replayed.iter().map(id_of).collect::<Vec<_>>(), vec![system.id]);
    assert_eq!(sync["replayed"], 1);
    assert_eq!(sync["unread_count"], 2, "muted ones still count: they are listed");
    socket.expect_silence(QUIET).await;
}

async fn bad_catch_up_parameters_are_refused_before_the_upgrade(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    for query in [
        "last_id=-1",
        "last_id=abc",
        "last_global_id=1.5",
        "last_id=99999999999",
        "sync=yes",
        "last_id=1&last_id=2",
    ] {
        let Err((status, body)) = ws_query(&app, &user, query).await else {
            panic!("{query} was accepted");
        };
        assert_eq!(status, 400, "{query}");
        assert!(body["error"].is_string(), "{query}: {body}");
    }
    assert_eq!(app.stats().await.sessions, 0, "no socket was opened");
}

/// A client resumes while 1,000 notifications are being created: across the replay's end it
/// gets every one created after its `last_id` exactly once, in ascending order.
async fn a_resume_racing_with_1000_creates_gets_each_once_in_order(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let last_seen = id_of(&json!({ "notification": app.notify(user.id, "seen").await }));
    const CREATES: usize = 1000;

    let made = std::sync::atomic::AtomicUsize::new(0);
    let create = async {
        let mut ids = Vec::new();
        // Eight at a time, as several producers would.
        for chunk in 0..CREATES / 8 {
            let batch = (0..8).map(|i| app.notify(user.id, if (chunk + i) % 2 == 0 { "raced" } else { "raced too" }));
            for created in futures_util::future::join_all(batch).await {
                ids.push(id_of(&json!({ "notification": created })));
            }
            made.store(ids.len(), std::sync::atomic::Ordering::Relaxed);
        }
        ids
    };
    let resume = async {
        // Let the creates get going first.
        while made.load(std::sync::atomic::Ordering::Relaxed) < 100 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut socket = ws_query(&app, &user, &format!("last_id={last_seen}"))
            .await
            .expect("accepted");
        let (replayed, sync) = until_sync(&mut socket).await;
        assert_eq!(sync["complete"], true, "{sync}");
        assert_eq!(sync["replayed"], replayed.len());
        (socket, replayed)
    };
    let (mut created, (mut socket, replayed)) = tokio::join!(create, resume);
    created.sort_unstable();
    assert!(!replayed.is_empty(), "the resume met creates already made");
    assert!(replayed.len() < CREATES, "the resume met creates still to come");

    let mut received: Vec<i32> = replayed.iter().map(id_of).collect();
    while received.len() < CREATES {
        match socket.next(Duration::from_secs(10)).await {
            Seen::Json(msg) => {
                assert_eq!(msg["type"], "notification", "{msg}");
                received.push(id_of(&msg));
            }
            other => panic!("after {} of {CREATES}: {other:?}", received.len()),
        }
    }
    socket.expect_silence(QUIET).await;
    assert!(received.windows(2).all(|w| w[0] < w[1]), "ascending, no duplicate");
    assert_eq!(received, created, "every id created after last_id, once");
}

both_backends!(
    the_replay_sends_what_was_missed_in_order_then_sync,
    the_replay_is_bounded_and_says_when_it_is_incomplete,
    sync_alone_replays_nothing_and_no_parameter_changes_nothing,
    a_muted_type_is_never_replayed,
    bad_catch_up_parameters_are_refused_before_the_upgrade,
    a_resume_racing_with_1000_creates_gets_each_once_in_order,
);
