//! Several real `herald` processes sharing one PostgreSQL database and one Redis: pushes,
//! reads and logouts cross nodes exactly once, and a Redis or node failure is survived.
//! Needs PostgreSQL and Redis (and `redis-server` on PATH): run with `--include-ignored`.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ClusterConfig, Node, PASSWORD, PostgresDb, PrivateRedis, Seen, TestUser, WsClient, free_port, fresh_postgres,
    require_redis, shared_redis_url, unique_channel_prefix, wait_for_subscribers,
};

const QUIET: Duration = Duration::from_millis(500);

/// Nodes sharing one fresh database and a Redis, under a channel prefix of their own.
pub struct Cluster {
    // Declared first so the processes stop before their database is dropped.
    pub nodes: Vec<Node>,
    pub config: ClusterConfig,
    _db: PostgresDb,
}

impl Cluster {
    /// `count` nodes on the machine's shared Redis.
    pub async fn start(count: usize) -> Cluster {
        let redis_url = shared_redis_url();
        require_redis(&redis_url).await;
        Cluster::start_on(count, redis_url).await
    }

    /// `count` nodes on the Redis at `redis_url`, started one after the other (the first
    /// migrates the fresh database and creates the admin).
    pub async fn start_on(count: usize, redis_url: String) -> Cluster {
        let db = fresh_postgres().await;
        let config = ClusterConfig {
            database_url: db.url.clone(),
            redis_url,
            channel_prefix: unique_channel_prefix(),
        };
        let mut nodes = Vec::new();
        for _ in 0..count {
            nodes.push(Node::start(&config).await);
        }
        Cluster { nodes, config, _db: db }
    }

    /// Waits until exactly `nodes` nodes subscribe to `user_id`'s channel.
    pub async fn wait_for_user_subscribers(&self, user_id: i32, nodes: i64) {
        wait_for_subscribers(&self.config.redis_url, &self.config.user_channel(user_id), nodes).await;
    }

    /// The nodes, for a cluster started with exactly `N` of them.
    pub fn node_array<const N: usize>(&self) -> &[Node; N] {
        <&[Node; N]>::try_from(&self.nodes[..]).unwrap_or_else(|_| unreachable!("{N} nodes"))
    }

    /// A new user with a socket on each of the first two nodes, both subscribed.
    async fn user_on_first_two(&self) -> (TestUser, WsClient, WsClient) {
        let user = self.nodes[0].new_user().await;
        let on_a = self.nodes[0].ws(&user).await;
        let on_b = self.nodes[1].ws(&user).await;
        self.wait_for_user_subscribers(user.id, 2).await;
        (user, on_a, on_b)
    }
}

fn notification_push(created: &Value) -> Value {
    json!({ "type": "notification", "notification": created })
}

/// Each of `sockets` receives the push of `created`, next.
async fn expect_push(sockets: &mut [&mut WsClient], created: &Value) {
    for socket in sockets {
        assert_eq!(socket.json().await, notification_push(created));
    }
}

async fn expect_global(socket: &mut WsClient, announced: &Value) {
    let msg = socket.json().await;
    assert_eq!(msg["type"], "global_notification", "{msg}");
    assert_eq!(msg["notification"]["id"], announced["id"], "{msg}");
}

async fn silence_on(sockets: &mut [&mut WsClient]) {
    for socket in sockets {
        socket.expect_silence(QUIET).await;
    }
}

/// A push for `user_id` created on `creator` and then an announcement made on `announcer`
/// each reach every one of `sockets` exactly once.
async fn push_and_announce_reach(
    sockets: &mut [&mut WsClient],
    creator: &Node,
    user_id: i32,
    title: &str,
    announcer: &Node,
    announcement: Value,
) {
    let created = creator.notify(user_id, title).await;
    expect_push(sockets, &created).await;
    let announced = announcer.announce(announcement).await;
    for socket in sockets.iter_mut() {
        expect_global(socket, &announced).await;
    }
    silence_on(sockets).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn user_and_global_pushes_cross_nodes_exactly_once() {
    let cluster = Cluster::start(3).await;
    let [a, b, c] = cluster.node_array();
    let alice = a.new_user().await;
    let bob = b.new_user().await;
    let mut alice_on_a = a.ws(&alice).await;
    let mut alice_on_b = b.ws(&alice).await;
    let mut bob_on_c = c.ws(&bob).await;
    // Per-user traffic goes only to the nodes holding that user's sockets.
    cluster.wait_for_user_subscribers(alice.id, 2).await;
    cluster.wait_for_user_subscribers(bob.id, 1).await;

    let from_a = a.notify(alice.id, "created on A").await;
    expect_push(&mut [&mut alice_on_a, &mut alice_on_b], &from_a).await;

    // From a node where alice has no socket at all.
    let from_c = c.notify(alice.id, "created on C").await;
    expect_push(&mut [&mut alice_on_a, &mut alice_on_b], &from_c).await;

    let announced = b
        .announce(json!({ "title": "Maintenance", "message": "tonight", "level": "warning" }))
        .await;
    for socket in [&mut alice_on_a, &mut alice_on_b, &mut bob_on_c] {
        expect_global(socket, &announced).await;
    }
    // No duplicates anywhere, and nothing of alice's reached bob.
    silence_on(&mut [&mut alice_on_a, &mut alice_on_b, &mut bob_on_c]).await;

    // A node whose last socket of a user goes stops receiving that user's traffic.
    alice_on_b.stream.close(None).await.expect("close");
    cluster.wait_for_user_subscribers(alice.id, 1).await;
    let after = b.notify(alice.id, "after B's socket left").await;
    assert_eq!(alice_on_a.json().await, notification_push(&after));
    alice_on_a.expect_silence(QUIET).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_read_on_one_node_is_seen_by_rest_and_sockets_on_another() {
    let cluster = Cluster::start(2).await;
    let [a, _] = cluster.node_array();
    let (alice, mut alice_on_a, mut alice_on_b) = cluster.user_on_first_two().await;
    let first = a.notify(alice.id, "first").await;
    let second = a.notify(alice.id, "second").await;
    for socket in [&mut alice_on_a, &mut alice_on_b] {
        assert_eq!(socket.json().await, notification_push(&first));
        assert_eq!(socket.json().await, notification_push(&second));
    }

    // Over the socket on B...
    alice_on_b
        .send_json(json!({ "action": "mark_read", "notification_id": first["id"] }))
        .await;
    let read = json!({ "type": "notification_read", "notification_ids": [first["id"]], "unread_count": 1 });
    assert_eq!(alice_on_b.json().await, read);
    assert_eq!(alice_on_a.json().await, read);
    // ...seen by REST on A: one shared database.
    let (status, list) = a.get("/api/notifications/", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["unread_count"], 1);
    let first_listed = list["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .find(|n| n["id"] == first["id"])
        .expect("first is listed");
    assert_eq!(first_listed["is_read"], true);

    // And a REST read on A reaches the socket on B.
    let (status, _) = a
        .post(
            &format!("/api/notifications/{}/mark-read/", second["id"]),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let read = json!({ "type": "notification_read", "notification_ids": [second["id"]], "unread_count": 0 });
    assert_eq!(alice_on_b.json().await, read);
    assert_eq!(alice_on_a.json().await, read);
    silence_on(&mut [&mut alice_on_a, &mut alice_on_b]).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_logout_on_one_node_closes_sockets_and_forgets_the_login_on_another() {
    let cluster = Cluster::start(2).await;
    let [a, b] = cluster.node_array();
    let alice = a.new_user().await;
    let other_login = b.login(&alice.username, PASSWORD).await;
    // B has validated (and cached) the login about to end.
    let (status, _) = b.get("/api/auth/me/", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK);
    let mut doomed_on_b = b.ws(&alice).await;
    let mut other_on_b = b.ws(&other_login).await;
    cluster.wait_for_user_subscribers(alice.id, 1).await;

    let (status, _) = a.post("/api/auth/logout/", Some(&alice.token), None).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(doomed_on_b.close_code(Duration::from_secs(5)).await, Some(4001));
    // The close and the cache eviction happen together: B refuses the token at once.
    let (status, _) = b.get("/api/auth/me/", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The user's other login is untouched.
    let (status, _) = b.get("/api/auth/me/", Some(&other_login.token)).await;
    assert_eq!(status, StatusCode::OK);
    let created = a.notify(alice.id, "still connected").await;
    assert_eq!(other_on_b.json().await, notification_push(&created));
    other_on_b.expect_silence(QUIET).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_redis_restart_makes_nodes_unready_not_down_and_they_recover() {
    let mut redis = PrivateRedis::start().await;
    let cluster = Cluster::start_on(2, redis.url.clone()).await;
    let [a, b] = cluster.node_array();
    let alice = a.new_user().await;
    let revoked_login = a.login(&alice.username, PASSWORD).await;
    let mut alice_on_a = a.ws(&alice).await;
    let mut alice_on_b = b.ws(&alice).await;
    let mut revoked_on_b = b.ws(&revoked_login).await;
    // B caches the login that will be revoked during the outage.
    assert_eq!(
        b.get("/api/auth/me/", Some(&revoked_login.token)).await.0,
        StatusCode::OK
    );
    cluster.wait_for_user_subscribers(alice.id, 2).await;
    let before = a.notify(alice.id, "before").await;
    expect_push(&mut [&mut alice_on_a, &mut alice_on_b, &mut revoked_on_b], &before).await;

    redis.stop();
    a.wait_readiness(false).await;
    b.wait_readiness(false).await;
    // HTTP still answers on both nodes, and saving works (PostgreSQL is up).
    for node in [a, b] {
        let (status, body) = node.get("/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({ "database": true, "channel_layer": false }));
        assert_eq!(node.get("/healthz", None).await.0, StatusCode::OK);
        assert_eq!(
            node.get("/api/notifications/", Some(&alice.token)).await.0,
            StatusCode::OK
        );
    }
    let during = a.notify(alice.id, "during the outage").await;
    // A's own sockets still get A's pushes; B's get them from the database (tests/api/catch_up_cluster.rs).
    assert_eq!(alice_on_a.json().await, notification_push(&during));
    let (_, list) = b.get("/api/notifications/", Some(&alice.token)).await;
    assert_eq!(list["notifications"][0]["id"], during["id"]);
    // A logout on A during the outage: B's cache is off, so B re-checks the database.
    assert_eq!(
        a.post("/api/auth/logout/", Some(&revoked_login.token), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        b.get("/api/auth/me/", Some(&revoked_login.token)).await.0,
        StatusCode::UNAUTHORIZED
    );

    redis.restart().await;
    a.wait_readiness(true).await;
    b.wait_readiness(true).await;
    // The socket opened on B with the login revoked during the outage is closed on reconnect.
    assert_eq!(revoked_on_b.close_code(Duration::from_secs(5)).await, Some(4001));
    assert_eq!(alice_on_b.json().await, notification_push(&during));
    cluster.wait_for_user_subscribers(alice.id, 2).await;
    push_and_announce_reach(
        &mut [&mut alice_on_a, &mut alice_on_b],
        a,
        alice.id,
        "after",
        b,
        json!({ "title": "Back", "message": "all good", "level": "info" }),
    )
    .await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_killed_node_restarts_and_its_reconnecting_clients_receive_again() {
    let mut cluster = Cluster::start(2).await;
    let (alice, mut alice_on_a, mut alice_on_b) = cluster.user_on_first_two().await;

    cluster.nodes[1].kill();
    assert!(
        matches!(alice_on_b.next(Duration::from_secs(5)).await, Seen::Closed(_)),
        "the socket on the killed node is gone"
    );
    // Redis notices the dead node's subscription go; A carries on.
    cluster.wait_for_user_subscribers(alice.id, 1).await;
    let meanwhile = cluster.nodes[0].notify(alice.id, "while B is down").await;
    assert_eq!(alice_on_a.json().await, notification_push(&meanwhile));

    cluster.nodes[1].restart().await;
    let [a, b] = cluster.node_array();
    let mut alice_on_b = b.ws(&alice).await;
    cluster.wait_for_user_subscribers(alice.id, 2).await;
    push_and_announce_reach(
        &mut [&mut alice_on_a, &mut alice_on_b],
        a,
        alice.id,
        "after B is back",
        b,
        json!({ "title": "Hello", "message": "from B", "level": "info" }),
    )
    .await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_node_starts_unready_without_redis_and_becomes_ready_when_it_appears() {
    let redis_port = free_port();
    let db = fresh_postgres().await;
    let config = ClusterConfig {
        database_url: db.url.clone(),
        redis_url: format!("redis://127.0.0.1:{redis_port}"),
        channel_prefix: unique_channel_prefix(),
    };

    let node = Node::spawn(&config, free_port()).await;
    let (status, body) = node.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({ "database": true, "channel_layer": false }));
    // It serves meanwhile: accounts, sockets and local pushes work.
    let alice = node.new_user().await;
    let mut socket = node.ws(&alice).await;
    let created = node.notify(alice.id, "before Redis").await;
    assert_eq!(socket.json().await, notification_push(&created));

    let _redis = PrivateRedis::start_on(redis_port).await;
    node.wait_readiness(true).await;
    wait_for_subscribers(&config.redis_url, &config.user_channel(alice.id), 1).await;
    let created = node.notify(alice.id, "with Redis").await;
    assert_eq!(socket.json().await, notification_push(&created));
    socket.expect_silence(QUIET).await;
}

/// Each of `sockets` receives `check`ed message next, and then nothing: once per socket.
async fn each_once(sockets: &mut [&mut WsClient], check: impl Fn(&Value)) {
    for socket in sockets.iter_mut() {
        check(&socket.json().await);
    }
    silence_on(sockets).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn announcement_edits_withdrawals_and_expiries_reach_each_socket_once() {
    use reqwest::Method;
    let cluster = Cluster::start(2).await;
    let [a, b] = cluster.node_array();
    let (_, mut on_a, mut on_b) = cluster.user_on_first_two().await;
    let mut sockets = [&mut on_a, &mut on_b];
    let g = a
        .announce(json!({ "title": "v1", "message": "m", "level": "info" }))
        .await;
    let path = format!("/api/global-notifications/{}/", g["id"]);
    let pushed = |title: &'static str| {
        let id = g["id"].clone();
        move |msg: &Value| {
            assert_eq!(msg["type"], "global_notification", "{msg}");
            assert_eq!(
                (&msg["notification"]["id"], &msg["notification"]["title"]),
                (&id, &json!(title))
            );
        }
    };
    let removed = || {
        let id = g["id"].clone();
        move |msg: &Value| assert_eq!(msg, &json!({ "type": "global_notification_removed", "id": id }))
    };
    each_once(&mut sockets, pushed("v1")).await;

    // Edited on B, withdrawn on A, restored on B, deleted on A: each socket sees each once.
    let patch = async |node: &Node, body: Value| {
        let (status, reply) = node
            .request(Method::PATCH, &path, Some(&node.admin_token), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    };
    patch(b, json!({ "title": "v2" })).await;
    each_once(&mut sockets, pushed("v2")).await;
    patch(a, json!({ "is_active": false })).await;
    each_once(&mut sockets, removed()).await;
    patch(b, json!({ "is_active": true })).await;
    each_once(&mut sockets, pushed("v2")).await;

    // An expiry set on B: both nodes' timers re-arm, each tells its own sockets once.
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    patch(b, json!({ "expires_at": soon })).await;
    each_once(&mut sockets, pushed("v2")).await;
    for socket in sockets.iter_mut() {
        match socket.next(Duration::from_secs(5)).await {
            Seen::Json(msg) => removed()(&msg),
            other => panic!("expected the expiry's removal, saw {other:?}"),
        }
    }
    silence_on(&mut sockets).await;
    assert_eq!(b.get("/api/global-notifications/", None).await.1["count"], 0);

    patch(a, json!({ "expires_at": null })).await;
    each_once(&mut sockets, pushed("v2")).await;
    let (status, _) = a.request(Method::DELETE, &path, Some(&a.admin_token), None).await;
    assert_eq!(status, StatusCode::OK);
    each_once(&mut sockets, removed()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn unread_deleted_and_mutes_cross_nodes() {
    let cluster = Cluster::start(2).await;
    let [a, b] = cluster.node_array();
    let (alice, mut alice_on_a, mut alice_on_b) = cluster.user_on_first_two().await;
    let created = a.notify(alice.id, "first").await;
    expect_push(&mut [&mut alice_on_a, &mut alice_on_b], &created).await;
    let id = created["id"].clone();

    // Mark-unread and delete on A reach the socket on B.
    a.post(&format!("/api/notifications/{id}/mark-read/"), Some(&alice.token), None)
        .await;
    let (status, _) = a
        .post(
            &format!("/api/notifications/{id}/mark-unread/"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = a
        .request(
            reqwest::Method::DELETE,
            &format!("/api/notifications/{id}/"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for socket in [&mut alice_on_a, &mut alice_on_b] {
        assert_eq!(socket.json().await["type"], "notification_read");
        assert_eq!(
            socket.json().await,
            json!({ "type": "notification_unread", "notification_ids": [id], "unread_count": 1 })
        );
        assert_eq!(
            socket.json().await,
            json!({ "type": "notification_deleted", "notification_ids": [id], "unread_count": 0 })
        );
    }

    // A mute saved on A holds for notifications saved on A and, once the change has crossed, on B.
    let (status, _) = a
        .request(
            reqwest::Method::PUT,
            "/api/preferences/",
            Some(&alice.token),
            Some(json!({ "muted_types": ["message"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    a.notify(alice.id, "muted, saved on A").await;
    // A generous bound for the change to cross Redis to B.
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.notify(alice.id, "muted, saved on B").await;
    silence_on(&mut [&mut alice_on_a, &mut alice_on_b]).await;

    // A node started afterwards loads the stored mutes before serving.
    let c = Node::start(&cluster.config).await;
    let mut alice_on_c = c.ws(&alice).await;
    c.notify(alice.id, "muted, saved on C").await;
    alice_on_c.expect_silence(QUIET).await;
    silence_on(&mut [&mut alice_on_a, &mut alice_on_b]).await;
    let (_, list) = c.get("/api/notifications/", Some(&alice.token)).await;
    assert_eq!(list["count"], 3, "muted ones are listed");
}
