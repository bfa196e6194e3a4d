//! The `herald` binary: `create-admin`, and a bad configuration stopping start-up with one line.
use std::process::Command;

use std::time::Duration;

use crate::helpers::{Backend, ClusterConfig, Node, spawn_app_with};

#[actix_web::test]
async fn create_admin_command_makes_an_admin_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/herald.db?mode=rwc", dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["create-admin", "root-admin"])
        .env("HERALD_DATABASE_URL", &url)
        .env("HERALD_ADMIN_PASSWORD", "root-pass-123")
        .env_remove("HERALD_ADMIN_USERNAME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let app = spawn_app_with(Backend::Sqlite, |s| s.database_url = url.clone()).await;
    let admin = app.login("root-admin", "root-pass-123").await;
    let (_, me) = app.get("/api/auth/me/", Some(&admin.token)).await;
    assert_eq!(me["role"], "admin");
}

#[test]
fn a_bad_setting_stops_start_up_with_one_clear_line() {
    for (key, value, mentions) in [
        ("HERALD_BIND", "not-an-address", "bind"),
        ("HERALD_DATABASE_URL", "mysql://x", "database_url"),
        ("HERALD_DATABASE_URL", "sqlite::memory:", "in-memory"),
        (
            "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS",
            "abc",
            "heartbeat_interval_secs",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_herald"))
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(mentions), "{stderr}");
    }
}

#[actix_web::test]
async fn sigterm_says_going_away_to_sockets_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        database_url: format!("sqlite://{}/herald.db?mode=rwc", dir.path().display()),
        redis_url: String::new(),
        channel_prefix: "herald".into(),
    };
    let mut node = Node::start(&config).await;
    let user = node.new_user().await;
    let mut socket = node.ws(&user).await;
    let n = node.notify(user.id, "before the signal").await;
    assert_eq!(socket.json().await["notification"]["id"], n["id"]);

    let status = node.terminate(Duration::from_secs(15)).await;
    assert_eq!(socket.close_code(Duration::from_secs(5)).await, Some(1001));
    assert!(status.success(), "exit status {status}");
}
