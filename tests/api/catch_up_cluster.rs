//! Catch-up across real nodes: a socket that stays open while its node's Redis link fails gets
//! what other nodes created meanwhile, once and in order, without reconnecting; and a push made
//! on another node right after a handshake is not lost to a SUBSCRIBE still on its way.
//! Needs PostgreSQL and Redis (and `redis-server` on PATH): run with `--include-ignored`.
use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    cluster::Cluster,
    helpers::{PrivateRedis, Seen, WsClient},
};

const QUIET: Duration = Duration::from_millis(500);

/// The next `count` messages of `socket` (generous bound: a catch-up waits for the link).
async fn next_messages(socket: &mut WsClient, count: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    while seen.len() < count {
        match socket.next(Duration::from_secs(20)).await {
            Seen::Json(msg) => seen.push(msg),
            other => panic!("after {seen:?}: {other:?}"),
        }
    }
    seen
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn an_open_socket_gets_what_other_nodes_created_during_a_redis_outage_once_in_order() {
    let mut redis = PrivateRedis::start().await;
    let cluster = Cluster::start_on(2, redis.url.clone()).await;
    let [a, b] = cluster.node_array();
    let alice = a.new_user().await;
    let bob = a.new_user().await;
    let mut alice_on_b = b.ws(&alice).await;
    let mut bob_on_b = b.ws(&bob).await;
    cluster.wait_for_user_subscribers(alice.id, 1).await;
    let before = a.notify(alice.id, "before").await;
    assert_eq!(alice_on_b.json().await["notification"], before);

    redis.stop();
    a.wait_readiness(false).await;
    b.wait_readiness(false).await;
    // Created on A, which B cannot hear now; one on B itself in between.
    let mut created = vec![a.notify(alice.id, "during 1").await];
    created.push(b.notify(alice.id, "during 2, on B").await);
    created.push(a.notify(alice.id, "during 3").await);
    let announced = a
        .announce(json!({ "title": "During", "message": "m", "level": "info" }))
        .await;

    redis.restart().await;
    a.wait_readiness(true).await;
    b.wait_readiness(true).await;
    let after = a.notify(alice.id, "after").await;
    created.push(after);

    let messages = next_messages(&mut alice_on_b, created.len() + 1).await;
    let personal: Vec<&Value> = messages
        .iter()
        .filter(|m| m["type"] == "notification")
        .map(|m| &m["notification"])
        .collect();
    assert_eq!(personal, created.iter().collect::<Vec<_>>(), "each once, in id order");
    let global: Vec<&Value> = messages.iter().filter(|m| m["type"] == "global_notification").collect();
    assert_eq!(global.len(), 1, "{messages:?}");
    assert_eq!(global[0]["notification"]["id"], announced["id"]);
    alice_on_b.expect_silence(QUIET).await;
    // Bob's socket got the announcement, and nothing of alice's.
    assert_eq!(bob_on_b.json().await["notification"]["id"], announced["id"]);
    bob_on_b.expect_silence(QUIET).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_push_from_another_node_right_after_the_handshake_is_not_lost() {
    let cluster = Cluster::start(2).await;
    let [a, b] = cluster.node_array();
    let redis = redis::Client::open(cluster.config.redis_url.as_str()).expect("a Redis URL");
    let mut redis = redis.get_multiplexed_async_connection().await.expect("Redis answers");
    // Each user is new to B: the handshake's 101 must wait for B's SUBSCRIBE to that user.
    for round in 0..20 {
        let user = a.new_user().await;
        let mut socket = b.ws(&user).await;
        // Asked once, at once: the subscription stands when the 101 arrives.
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(cluster.config.user_channel(user.id))
            .query_async(&mut redis)
            .await
            .expect("PUBSUB NUMSUB");
        assert_eq!(subscribers, 1, "round {round}: B is not yet subscribed to the user");
        let created = a.notify(user.id, &format!("right after the handshake {round}")).await;
        match socket.next(Duration::from_secs(5)).await {
            Seen::Json(msg) => assert_eq!(msg["notification"], created, "round {round}"),
            other => panic!("round {round}: the push was lost ({other:?})"),
        }
    }
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn a_resume_on_another_node_replays_what_was_missed() {
    let cluster = Cluster::start(2).await;
    let [a, b] = cluster.node_array();
    let user = a.new_user().await;
    let mut on_a = a.ws(&user).await;
    let seen = a.notify(user.id, "seen on A").await;
    assert_eq!(on_a.json().await["notification"], seen);
    drop(on_a);
    let missed = a.notify(user.id, "missed").await;

    let query = format!("last_id={}&last_global_id=0", seen["id"]);
    let mut on_b = crate::catch_up::ws_query(&b.api, &user, &query)
        .await
        .expect("accepted");
    assert_eq!(on_b.json().await["notification"], missed);
    let sync = on_b.json().await;
    assert_eq!(
        sync,
        json!({ "type": "sync", "unread_count": 2, "replayed": 1, "complete": true })
    );
    let live = a.notify(user.id, "live from A").await;
    assert_eq!(on_b.json().await["notification"], live);
    on_b.expect_silence(QUIET).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL/Redis"]
async fn during_a_redis_outage_other_nodes_creates_arrive_from_the_database() {
    let mut redis = PrivateRedis::start().await;
    let cluster = Cluster::start_on(2, redis.url.clone()).await;
    let [a, b] = cluster.node_array();
    let alice = a.new_user().await;
    let mut alice_on_b = b.ws(&alice).await;
    cluster.wait_for_user_subscribers(alice.id, 1).await;

    redis.stop();
    b.wait_readiness(false).await;
    let created = a.notify(alice.id, "during").await;
    let announced = a
        .announce(json!({ "title": "During", "message": "m", "level": "info" }))
        .await;
    // Redis is still down: B reads them from the database within a sweep or two.
    let messages = next_messages(&mut alice_on_b, 2).await;
    assert_eq!(messages[0]["notification"], created, "{messages:?}");
    assert_eq!(messages[1]["notification"]["id"], announced["id"], "{messages:?}");
    alice_on_b.expect_silence(QUIET).await;
}
