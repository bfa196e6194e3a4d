//! Faults found by review, each pinned by a test that failed before its fix: nested
//! transactions, and `mark-all-read` past SQLite's bound-value limit. (The logout/lookup race
//! is pinned in `auth`'s unit tests, where the interleaving can be forced.)
use std::time::Duration;

use entity::notification;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DbErr, EntityTrait};

use crate::helpers::{Backend, notification_row, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);
/// Well past the SQLite busy timeout's effects showing up, well short of it (20 s).
const NESTED_BOUND: Duration = Duration::from_secs(10);

async fn titles(app: &crate::helpers::TestApp, token: &str) -> Vec<String> {
    let (status, body) = app.get("/api/notifications/", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let mut titles: Vec<String> = body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

async fn a_nested_transaction_rolls_back_with_the_outer_one(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let db = app.db.clone();
    let (outer_row, inner_row) = (notification_row(user.id, "outer"), notification_row(user.id, "inner"));
    let result = tokio::time::timeout(
        NESTED_BOUND,
        app.saving(entity::transaction::run(&app.db, |txn| {
            Box::pin(async move {
                outer_row.insert(txn).await?;
                // Nested code that only knows the pool handle, as a service function would.
                entity::transaction::run(&db, |inner| {
                    Box::pin(async move { inner_row.insert(inner).await.map(|_| ()) })
                })
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
                Err::<(), DbErr>(DbErr::Custom("the outer one changes its mind".into()))
            })
        })),
    )
    .await
    .expect("the nested write does not wait for the outer transaction's lock");
    assert!(result.is_err());
    assert!(
        titles(&app, &user.token).await.is_empty(),
        "the inner row rolled back too"
    );
    socket.expect_silence(QUIET).await;
}

async fn nested_pushes_wait_for_the_outermost_commit(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let db = app.db.clone();
    let rows = [
        notification_row(user.id, "outer"),
        notification_row(user.id, "kept"),
        notification_row(user.id, "undone"),
    ];
    let [outer_row, kept_row, undone_row] = rows;
    let result = tokio::time::timeout(
        NESTED_BOUND,
        app.saving(entity::transaction::run(&app.db, |txn| {
            Box::pin(async move {
                outer_row.insert(txn).await?;
                entity::transaction::run(&db, |inner| {
                    Box::pin(async move { kept_row.insert(inner).await.map(|_| ()) })
                })
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
                // A savepoint that fails is undone alone; the outer transaction goes on.
                let undone = entity::transaction::run(&db, |inner| {
                    Box::pin(async move {
                        undone_row.insert(inner).await?;
                        Err::<(), DbErr>(DbErr::Custom("undo this one".into()))
                    })
                })
                .await;
                assert!(undone.is_err());
                Ok::<(), DbErr>(())
            })
        })),
    )
    .await
    .expect("nested transactions do not wait for each other");
    result.unwrap();
    assert_eq!(titles(&app, &user.token).await, ["kept", "outer"]);
    let mut pushed = vec![
        socket.json().await["notification"]["title"]
            .as_str()
            .unwrap()
            .to_string(),
        socket.json().await["notification"]["title"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    pushed.sort();
    assert_eq!(pushed, ["kept", "outer"]);
    socket.expect_silence(QUIET).await;
}

/// More unread notifications than SQLite accepts bound values in one statement (32,766).
const MANY_UNREAD: usize = 33_000;

async fn mark_all_read_handles_more_ids_than_a_statement_can_bind(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    // Straight into the table (no hooks, no pushes), in chunks that bind few values each.
    let now = chrono::Utc::now();
    let rows: Vec<notification::ActiveModel> = (0..MANY_UNREAD)
        .map(|i| notification::ActiveModel {
            created_at: Set(now),
            ..notification_row(user.id, format!("n{i}"))
        })
        .collect();
    for chunk in rows.chunks(2000) {
        notification::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
    let mut socket = app.ws(&user).await;

    let (status, body) = app
        .post("/api/notifications/mark-all-read/", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], MANY_UNREAD as u64, "{body}");

    let push = socket.json().await;
    assert_eq!(push["type"], "notification_read");
    assert_eq!(push["notification_ids"].as_array().unwrap().len(), MANY_UNREAD);
    assert_eq!(push["unread_count"], 0);
    let (_, list) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(list["unread_count"], 0, "{}", list["count"]);
}

both_backends!(
    a_nested_transaction_rolls_back_with_the_outer_one,
    nested_pushes_wait_for_the_outermost_commit,
    mark_all_read_handles_more_ids_than_a_statement_can_bind,
);
