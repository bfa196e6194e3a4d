//! The inbox: keyset pages and filters of the list, mark-unread, deletes, and muted types, each
//! with what every socket of the user receives (and must not receive).
use std::time::Duration;

use entity::notification::{self, NotificationType};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Api, Backend, TestUser, WsClient, notification_row, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

/// The admin creates a notification of `kind` for `user_id` over the API.
async fn notify_type(app: &Api, user_id: i32, kind: &str, title: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/notifications/",
            Some(&app.admin_token),
            Some(json!({ "user_id": user_id, "title": title, "message": "m", "notification_type": kind })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Saves `count` notifications for `user_id` in bulk (types cycling through `kinds`); answers
/// their ids, oldest first.
async fn seed(app: &crate::helpers::TestApp, user_id: i32, count: usize, kinds: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(200) {
        let rows = chunk
            .iter()
            .map(|i| notification::ActiveModel {
                notification_type: Set(NotificationType::try_from_value(&kinds[i % kinds.len()].to_string()).unwrap()),
                ..notification_row(user_id, format!("n{i}"))
            })
            .collect();
        let saved = app
            .saving(notification::insert_many_and_push(&app.db, rows))
            .await
            .unwrap();
        ids.extend(saved.iter().map(|n| i64::from(n.id)));
    }
    ids.sort_unstable();
    ids
}

fn ids_of(page: &Value) -> Vec<i64> {
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect()
}

/// Walks every page of `query` (which must include a limit), answering the ids in order; runs
/// `between` after each page.
async fn walk<F, Fut>(app: &Api, user: &TestUser, query: &str, mut between: F) -> Vec<i64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut path = format!("/api/notifications/?{query}");
    loop {
        let (status, page) = app.get(&path, Some(&user.token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        seen.extend(ids_of(&page));
        between().await;
        match page.get("next_before_id") {
            Some(next) => {
                assert_eq!(
                    next.as_i64(),
                    seen.last().copied(),
                    "the next page starts below the last item"
                );
                path = format!("/api/notifications/?{query}&before_id={next}");
            }
            None => return seen,
        }
    }
}

async fn keyset_pages_give_every_older_id_once_while_new_ones_arrive(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let mut older = seed(&app, user.id, 1000, &["system"]).await;
    older.reverse();

    let created = std::cell::RefCell::new(Vec::new());
    let seen = walk(&app, &user, "limit=97", || {
        let (app, created, user_id) = (&app, &created, user.id);
        async move {
            let id = app.notify(user_id, "meanwhile").await["id"].as_i64().unwrap();
            created.borrow_mut().push(id);
        }
    })
    .await;
    let created_meanwhile = created.into_inner();

    // The first page was read before anything new existed: exactly the 1,000, newest first.
    assert_eq!(seen, older, "every older id exactly once, in order");
    assert_eq!(created_meanwhile.len(), 11, "ceil(1000 / 97) pages");
    let (_, all) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(all["count"], 1011);
    assert_eq!(ids_of(&all).len(), 1011, "no parameters: every notification");
    assert!(all.get("next_before_id").is_none());
    assert_eq!(
        ids_of(&all)[..11],
        created_meanwhile.iter().rev().copied().collect::<Vec<_>>()[..]
    );
}

async fn without_parameters_the_list_is_all_and_a_full_last_page_says_so(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let ids = seed(&app, user.id, 150, &["system"]).await;

    let (_, all) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(
        ids_of(&all),
        ids.iter().rev().copied().collect::<Vec<_>>(),
        "the seed's 'all'"
    );
    assert_eq!(
        (all["count"].as_u64(), all["unread_count"].as_u64()),
        (Some(150), Some(150))
    );

    // Cut by the limit: a next page is announced; not cut (exactly the rest): none.
    let (_, first) = app.get("/api/notifications/?limit=100", Some(&user.token)).await;
    assert_eq!(first["next_before_id"], ids[50]);
    let (_, last) = app
        .get(
            &format!("/api/notifications/?limit=50&before_id={}", ids[50]),
            Some(&user.token),
        )
        .await;
    assert_eq!(ids_of(&last), ids[..50].iter().rev().copied().collect::<Vec<_>>());
    assert!(last.get("next_before_id").is_none(), "{last}");
    let (_, beyond) = app
        .get(&format!("/api/notifications/?before_id={}", ids[0]), Some(&user.token))
        .await;
    assert_eq!(beyond["notifications"], json!([]));
    assert_eq!(
        beyond["count"], 150,
        "totals whatever the filters, even on an empty page"
    );
}

async fn filters_combine_with_paging_and_leave_the_totals_alone(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let kinds = ["message", "job_post", "system", "connection"];
    let ids = seed(&app, user.id, 120, &kinds).await;
    seed(&app, other.id, 30, &kinds).await;
    // Every third one read.
    for id in ids.iter().step_by(3) {
        app.post(&format!("/api/notifications/{id}/mark-read/"), Some(&user.token), None)
            .await;
    }
    let kind_of = |id: i64| kinds[ids.iter().position(|x| *x == id).unwrap() % kinds.len()];
    let is_read = |id: i64| ids.iter().position(|x| *x == id).unwrap() % 3 == 0;
    let expected =
        |keep: &dyn Fn(i64) -> bool| -> Vec<i64> { ids.iter().rev().copied().filter(|id| keep(*id)).collect() };

    type Keep<'a> = Box<dyn Fn(i64) -> bool + 'a>;
    let cases: [(&str, Keep); 4] = [
        ("unread=true", Box::new(|id| !is_read(id))),
        ("type=message", Box::new(|id| kind_of(id) == "message")),
        (
            "type=message,system&unread=true",
            Box::new(|id| matches!(kind_of(id), "message" | "system") && !is_read(id)),
        ),
        (
            "type=job_post&type=connection&unread=false",
            Box::new(|id| matches!(kind_of(id), "job_post" | "connection")),
        ),
    ];
    for (filter, keep) in cases {
        let seen = walk(&app, &user, &format!("{filter}&limit=7"), || async {}).await;
        assert_eq!(seen, expected(&*keep), "{filter}");
        let (_, page) = app
            .get(&format!("/api/notifications/?{filter}&limit=7"), Some(&user.token))
            .await;
        assert_eq!(
            (page["count"].as_u64(), page["unread_count"].as_u64()),
            (Some(120), Some(80)),
            "{filter}"
        );
    }
}

async fn bad_list_parameters_are_400(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    app.notify(user.id, "one").await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=-1",
        "before_id=0",
        "before_id=-5",
        "before_id=x",
        "before_id=99999999999999999999",
        "unread=yes",
        "unread=",
        "type=spam",
        "type=message,spam",
        "type=",
        "type=message,",
        "offset=10",
        "page=2",
        "limit=5&limit=6",
    ] {
        let (status, body) = app
            .get(&format!("/api/notifications/?{query}"), Some(&user.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"].is_string(), "{query}");
    }
    for query in ["limit=1", "limit=1000", "before_id=9223372036854775807", "unread=false"] {
        let (status, body) = app
            .get(&format!("/api/notifications/?{query}"), Some(&user.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids_of(&body).len(), 1, "{query}");
    }
}

/// Opens two sockets for `user` (two tabs).
async fn two_tabs(app: &Api, user: &TestUser) -> [WsClient; 2] {
    [app.ws(user).await, app.ws(user).await]
}

async fn mark_unread_reaches_every_tab_and_is_for_the_owner_only(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let n = app.notify(owner.id, "mine").await;
    app.notify(owner.id, "unread one").await;
    let id = n["id"].as_i64().unwrap();
    app.post(&format!("/api/notifications/{id}/mark-read/"), Some(&owner.token), None)
        .await;
    let (_, unread) = app.get("/api/notifications/?unread=true", Some(&owner.token)).await;
    assert_eq!(unread["notifications"].as_array().unwrap().len(), 1);
    let mut tabs = two_tabs(&app, &owner).await;
    let mut others = app.ws(&other).await;
    let path = format!("/api/notifications/{id}/mark-unread/");

    let (status, body) = app.post(&path, Some(&other.token), None).await;
    assert_eq!((status, body["error"].is_string()), (StatusCode::NOT_FOUND, true));
    for bad in ["999999", "abc", "99999999999999999999"] {
        let (status, _) = app
            .post(
                &format!("/api/notifications/{bad}/mark-unread/"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    for tab in &mut tabs {
        tab.expect_silence(QUIET).await;
    }

    let (status, body) = app.post(&path, Some(&owner.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "success": true, "message": "Notification marked as unread" })
    );
    for tab in &mut tabs {
        assert_eq!(
            tab.json().await,
            json!({ "type": "notification_unread", "notification_ids": [id], "unread_count": 2 })
        );
    }
    others.expect_silence(QUIET).await;
    // The cached filtered list sees the change at once.
    let (_, unread) = app.get("/api/notifications/?unread=true", Some(&owner.token)).await;
    assert_eq!(unread["notifications"].as_array().unwrap().len(), 2);
    assert_eq!(unread["unread_count"], 2);
    assert_eq!(
        app.post(&path, Some(&owner.token), None).await.0,
        StatusCode::OK,
        "again is fine"
    );
}

async fn deleting_one_reaches_every_tab_and_is_for_the_owner_only(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let keep = app.notify(owner.id, "keep").await;
    let gone = app.notify(owner.id, "gone").await;
    let id = gone["id"].as_i64().unwrap();
    let (_, before) = app.get("/api/notifications/?limit=10", Some(&owner.token)).await;
    assert_eq!(before["count"], 2);
    let mut tabs = two_tabs(&app, &owner).await;
    let mut others = app.ws(&other).await;
    let path = format!("/api/notifications/{id}/");

    let (status, _) = app.request(Method::DELETE, &path, Some(&other.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "someone else's");
    for unknown in ["999999", "abc", "-1", "99999999999999999999"] {
        let (status, body) = app
            .request(
                Method::DELETE,
                &format!("/api/notifications/{unknown}/"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        app.request(Method::DELETE, &path, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, body) = app.request(Method::DELETE, &path, Some(&owner.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "success": true, "message": "Notification deleted" }));
    for tab in &mut tabs {
        assert_eq!(
            tab.json().await,
            json!({ "type": "notification_deleted", "notification_ids": [id], "unread_count": 1 })
        );
    }
    others.expect_silence(QUIET).await;
    let (_, after) = app.get("/api/notifications/?limit=10", Some(&owner.token)).await;
    assert_eq!(after["count"], 1);
    assert_eq!(ids_of(&after), [keep["id"].as_i64().unwrap()]);
    let (status, _) = app.request(Method::DELETE, &path, Some(&owner.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already gone");
}

async fn clearing_read_deletes_only_the_callers_read_ones_in_one_push(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let ids = seed(&app, owner.id, 6, &["message"]).await;
    let theirs = seed(&app, other.id, 2, &["message"]).await;
    for id in [ids[0], ids[2], ids[5]] {
        app.post(&format!("/api/notifications/{id}/mark-read/"), Some(&owner.token), None)
            .await;
    }
    app.post("/api/notifications/mark-all-read/", Some(&other.token), None)
        .await;
    let mut tabs = two_tabs(&app, &owner).await;
    let mut others = app.ws(&other).await;

    for bad in ["", "?read=false", "?read=1", "?read=true&type=message", "?unread=true"] {
        let (status, body) = app
            .request(
                Method::DELETE,
                &format!("/api/notifications/{bad}"),
                Some(&owner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, body) = app
        .request(
            Method::DELETE,
            "/api/notifications/?read=true",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "success": true, "message": "3 notifications deleted", "count": 3 })
    );
    for tab in &mut tabs {
        assert_eq!(
            tab.json().await,
            json!({ "type": "notification_deleted", "notification_ids": [ids[0], ids[2], ids[5]], "unread_count": 3 })
        );
        tab.expect_silence(QUIET).await;
    }
    others.expect_silence(QUIET).await;
    let (_, left) = app.get("/api/notifications/", Some(&owner.token)).await;
    assert_eq!(ids_of(&left), [ids[4], ids[3], ids[1]]);
    let (_, theirs_left) = app.get("/api/notifications/", Some(&other.token)).await;
    assert_eq!(
        ids_of(&theirs_left).len(),
        theirs.len(),
        "another user's read ones stay"
    );

    let (_, again) = app
        .request(
            Method::DELETE,
            "/api/notifications/?read=true",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(again["count"], 0);
    for tab in &mut tabs {
        tab.expect_silence(QUIET).await;
    }
}

/// The user's `count` and `unread_count` in the list, and the same counted from the rows.
async fn totals_listed_and_counted(app: &crate::helpers::TestApp, user: &TestUser, query: &str) -> [(u64, u64); 2] {
    let (status, listed) = app.get(&format!("/api/notifications/{query}"), Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let rows = notification::Entity::find()
        .filter(notification::Column::UserId.eq(user.id))
        .all(&app.db)
        .await
        .unwrap();
    let unread = rows.iter().filter(|n| !n.is_read).count() as u64;
    [
        (
            listed["count"].as_u64().unwrap(),
            listed["unread_count"].as_u64().unwrap(),
        ),
        (rows.len() as u64, unread),
    ]
}

/// The totals come from a table the database's triggers keep: every way a notification is
/// saved, marked or deleted must move them, for one row or many at once.
async fn the_totals_follow_every_kind_of_change(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    let check = |step: &'static str| {
        let (app, owner, other) = (&app, &owner, &other);
        async move {
            for (user, query) in [(owner, ""), (owner, "?limit=1"), (other, "?unread=true")] {
                let [listed, counted] = totals_listed_and_counted(app, user, query).await;
                assert_eq!(listed, counted, "after {step}, user {} {query}", user.id);
            }
        }
    };
    check("nothing yet").await;
    let ids = seed(&app, owner.id, 30, &["message"]).await;
    seed(&app, other.id, 4, &["message"]).await;
    check("a many-row insert").await;
    notify_type(&app, owner.id, "job_post", "one").await;
    check("a single save").await;
    let (status, body) = app
        .post(
            "/api/notifications/bulk/",
            Some(&app.admin_token),
            Some(json!({ "user_ids": [owner.id, other.id], "title": "b", "message": "m", "notification_type": "system" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    check("a bulk send").await;
    // The first one twice: marking a read one read changes nothing.
    for id in ids[..5].iter().chain(&ids[..1]) {
        app.post(&format!("/api/notifications/{id}/mark-read/"), Some(&owner.token), None)
            .await;
    }
    check("marking read, once twice").await;
    app.post(
        &format!("/api/notifications/{}/mark-unread/", ids[1]),
        Some(&owner.token),
        None,
    )
    .await;
    check("marking unread").await;
    app.post("/api/notifications/mark-all-read/", Some(&other.token), None)
        .await;
    check("marking all read").await;
    for id in [ids[2], ids[10]] {
        let path = format!("/api/notifications/{id}/");
        app.request(Method::DELETE, &path, Some(&owner.token), None).await;
    }
    check("deleting a read one and an unread one").await;
    for user in [&owner, &other] {
        app.request(Method::DELETE, "/api/notifications/?read=true", Some(&user.token), None)
            .await;
    }
    check("deleting every read one").await;
    let [listed, _] = totals_listed_and_counted(&app, &other, "").await;
    assert_eq!(listed, (0, 0), "the other user has none left");
}

/// Notifications saved before the totals' table existed are counted when it is made.
async fn the_totals_migration_counts_the_notifications_already_there(backend: Backend) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Database};

    let dir = tempfile::tempdir().unwrap();
    let postgres = match backend {
        Backend::Postgres => Some(crate::helpers::fresh_postgres().await),
        Backend::Sqlite => None,
    };
    let url = match &postgres {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}/old.db?mode=rwc", dir.path().display()),
    };
    let db = Database::connect(url).await.unwrap();
    let before_counts = Migrator::migrations().len() as u32 - 1;
    Migrator::up(&db, Some(before_counts)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES \
         ('ann', 'x', 'jobseeker', '2026-01-01T00:00:00Z'), ('bo', 'x', 'jobseeker', '2026-01-01T00:00:00Z')",
    )
    .await
    .unwrap();
    for (user, read) in [("ann", false), ("ann", true), ("ann", false), ("bo", true)] {
        db.execute_unprepared(&format!(
            "INSERT INTO notifications (user_id, title, message, notification_type, is_read, link, created_at) \
             SELECT id, 't', 'm', 'message', {read}, '', '2026-01-01T00:00:00Z' FROM users WHERE username = '{user}'"
        ))
        .await
        .unwrap();
    }
    Migrator::up(&db, None).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT u.username, c.total, c.unread FROM notification_counts AS c \
             JOIN users AS u ON u.id = c.user_id ORDER BY u.username",
        ))
        .await
        .unwrap();
    let counted: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, [("ann".to_owned(), 3, 2), ("bo".to_owned(), 1, 0)]);
    db.close().await.unwrap();
}

async fn preferences_store_known_types_and_refuse_system(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let (status, body) = app.get("/api/preferences/", Some(&user.token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "muted_types": [] })));

    let (status, body) = app
        .request(
            Method::PUT,
            "/api/preferences/",
            Some(&user.token),
            Some(json!({ "muted_types": ["post_like", "job_post", "post_like"] })),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "muted_types": ["job_post", "post_like"] }))
    );
    let (_, body) = app.get("/api/preferences/", Some(&user.token)).await;
    assert_eq!(body, json!({ "muted_types": ["job_post", "post_like"] }));
    let (_, body) = app.get("/api/preferences/", Some(&other.token)).await;
    assert_eq!(body, json!({ "muted_types": [] }), "per user");

    for bad in [
        json!({ "muted_types": ["system"] }),
        json!({ "muted_types": ["message", "system"] }),
        json!({ "muted_types": ["spam"] }),
        json!({ "muted_types": "message" }),
        json!({ "muted_types": [1] }),
        json!({}),
    ] {
        let (status, body) = app
            .request(Method::PUT, "/api/preferences/", Some(&user.token), Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    let (_, body) = app.get("/api/preferences/", Some(&user.token)).await;
    assert_eq!(
        body,
        json!({ "muted_types": ["job_post", "post_like"] }),
        "refused PUTs changed nothing"
    );
    let (status, body) = app
        .request(
            Method::PUT,
            "/api/preferences/",
            Some(&user.token),
            Some(json!({ "muted_types": [] })),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "muted_types": [] })));
    assert_eq!(app.get("/api/preferences/", None).await.0, StatusCode::UNAUTHORIZED);
}

async fn a_muted_type_is_listed_but_never_reaches_a_socket(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let user = app.new_user().await;
    let (status, _) = app
        .request(
            Method::PUT,
            "/api/preferences/",
            Some(&user.token),
            Some(json!({ "muted_types": ["message", "post_like"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut tabs = two_tabs(&app, &user).await;

    // Every way a notification is saved: the API, the entity hook, the bulk path.
    notify_type(&app, user.id, "message", "muted over the API").await;
    app.saving(
        notification::ActiveModel {
            notification_type: Set(NotificationType::PostLike),
            ..notification_row(user.id, "muted through the entity")
        }
        .insert(&app.db),
    )
    .await
    .unwrap();
    seed(&app, user.id, 2, &["message"]).await;
    for tab in &mut tabs {
        tab.expect_silence(QUIET).await;
    }
    let unmuted = notify_type(&app, user.id, "job_post", "heard").await;
    for tab in &mut tabs {
        let push = tab.json().await;
        assert_eq!(push, json!({ "type": "notification", "notification": unmuted }));
        tab.expect_silence(QUIET).await;
    }
    let (_, list) = app.get("/api/notifications/", Some(&user.token)).await;
    assert_eq!(list["count"], 5, "muted ones are saved and listed");
    assert_eq!(list["unread_count"], 5);

    // Unmuted again: pushed again.
    app.request(
        Method::PUT,
        "/api/preferences/",
        Some(&user.token),
        Some(json!({ "muted_types": [] })),
    )
    .await;
    let heard = notify_type(&app, user.id, "message", "heard again").await;
    for tab in &mut tabs {
        assert_eq!(tab.json().await["notification"]["id"], heard["id"]);
    }
}

both_backends!(
    keyset_pages_give_every_older_id_once_while_new_ones_arrive,
    without_parameters_the_list_is_all_and_a_full_last_page_says_so,
    filters_combine_with_paging_and_leave_the_totals_alone,
    bad_list_parameters_are_400,
    mark_unread_reaches_every_tab_and_is_for_the_owner_only,
    deleting_one_reaches_every_tab_and_is_for_the_owner_only,
    clearing_read_deletes_only_the_callers_read_ones_in_one_push,
    the_totals_follow_every_kind_of_change,
    the_totals_migration_counts_the_notifications_already_there,
    preferences_store_known_types_and_refuse_system,
    a_muted_type_is_listed_but_never_reaches_a_socket,
);
