//! `spawn_app()`: the real server on a random port with a fresh database, and a client for it.
use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use actix::Addr;
use futures_util::{SinkExt, StreamExt};
use herald::{
    configuration::Settings,
    hub::{
        NotificationHub,
        messages::{HubStats, Stats},
    },
    outbox::Outbox,
    startup::{Application, ShutdownHandle},
};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-pass-123";
pub const PASSWORD: &str = "password-123";

/// A new `system` notification for `user_id`, to save through the entity (no HTTP).
pub fn notification_row(user_id: i32, title: impl Into<String>) -> entity::notification::ActiveModel {
    use sea_orm::ActiveValue::Set;
    entity::notification::ActiveModel {
        user_id: Set(user_id),
        title: Set(title.into()),
        message: Set("m".into()),
        notification_type: Set(entity::notification::NotificationType::System),
        ..Default::default()
    }
}

/// Which database a test server uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running Herald and what a test needs to talk to it.
pub struct TestApp {
    /// The HTTP and WebSocket client methods (`app.get(..)`, `app.ws(..)`, `app.address`).
    pub api: Api,
    pub hub: Addr<NotificationHub>,
    pub db: DatabaseConnection,
    /// Where this server's saves go: a test saving through the entity does it in its scope
    /// (`saving`), as a request would.
    pub outbox: Outbox,
    pub shutdown: ShutdownHandle,
    /// The metrics listener's port, when the settings asked for one (`metrics_bind`).
    pub metrics_port: Option<u16>,
    _guard: DatabaseGuard,
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// How a test talks to one Herald over HTTP and WebSocket (in-process or a separate process).
pub struct Api {
    pub address: String,
    pub port: u16,
    pub http: reqwest::Client,
    pub admin_token: String,
}

/// Removes the test's database when the test ends.
enum DatabaseGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if let DatabaseGuard::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: do the async work on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(db) = Database::connect(&admin_url).await {
                        let _ = db
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Where the PostgreSQL tests create their databases.
pub fn postgres_admin_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Default test settings: port 0, quick to start, admin bootstrapped, and the abuse limits off
/// (tests make many users and sockets from one address). Limit tests put the defaults back
/// with [`default_limits`].
pub fn test_settings() -> Settings {
    let mut settings = Settings::load().expect("config/default.toml loads");
    settings.limits = settings.limits.without_abuse_limits();
    settings.bind = "127.0.0.1:0".into();
    settings.admin_username = Some(ADMIN.into());
    settings.admin_password = Some(ADMIN_PASSWORD.into());
    settings.allowed_origins = Vec::new();
    settings.redis_url = String::new();
    settings
}

/// The abuse limits as configured by default, for the tests of those limits.
pub fn default_limits(settings: &mut Settings) {
    let defaults = Settings::load().expect("config/default.toml loads").limits;
    settings.limits = herald::configuration::LimitSettings {
        body_bytes: settings.limits.body_bytes,
        db_pool_size: settings.limits.db_pool_size,
        ..defaults
    };
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |_| {}).await
}

/// Starts a server on `backend` after `configure` has adjusted the test settings.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    let guard = fresh_database(backend, &mut settings).await;
    configure(&mut settings);
    start(settings, guard).await
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

async fn fresh_database(backend: Backend, settings: &mut Settings) -> DatabaseGuard {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            settings.database_url = format!("sqlite://{}/herald.db?mode=rwc", dir.path().display());
            DatabaseGuard::Sqlite(dir)
        }
        Backend::Postgres => {
            let (url, guard) = create_postgres_database().await;
            settings.database_url = url;
            guard
        }
    }
}

/// Creates an empty PostgreSQL database; answers its URL and the guard that drops it.
async fn create_postgres_database() -> (String, DatabaseGuard) {
    let admin_url = postgres_admin_url();
    let name = format!(
        "herald_t_{}_{}_{}",
        std::process::id(),
        DB_COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    let admin = Database::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required for this test ({admin_url}): {e}"));
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
    (format!("{base}/{name}"), DatabaseGuard::Postgres { admin_url, name })
}

/// A fresh PostgreSQL database for processes a test starts; dropped with this value.
pub struct PostgresDb {
    pub url: String,
    _guard: DatabaseGuard,
}

/// Creates a fresh PostgreSQL database (panics with a clear message when PostgreSQL is missing).
pub async fn fresh_postgres() -> PostgresDb {
    let (url, guard) = create_postgres_database().await;
    PostgresDb { url, _guard: guard }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

async fn start(settings: Settings, guard: DatabaseGuard) -> TestApp {
    let app = Application::build(settings).await.expect("server builds");
    let port = app.port();
    let hub = app.hub();
    let db = app.db();
    let outbox = app.outbox();
    let shutdown = app.shutdown_handle();
    let metrics_port = app.metrics_port();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        api: Api::logged_in_as_admin(port).await,
        hub,
        db,
        outbox,
        shutdown,
        metrics_port,
        _guard: guard,
    }
}

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i32,
    pub username: String,
    pub token: String,
    pub session_cookie: String,
    pub csrf_cookie: String,
}

impl TestUser {
    /// The `Cookie` header a browser would send.
    pub fn cookie_header(&self) -> String {
        format!("sessionid={}; csrftoken={}", self.session_cookie, self.csrf_cookie)
    }
}

fn set_cookie_value(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

static USER_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Api {
    /// A client for the Herald on `port`, holding a fresh admin token.
    pub async fn logged_in_as_admin(port: u16) -> Self {
        let mut api = Api {
            address: format!("http://127.0.0.1:{port}"),
            port,
            http: reqwest::Client::builder().cookie_store(false).build().expect("client"),
            admin_token: String::new(),
        };
        api.admin_token = api.login(ADMIN, ADMIN_PASSWORD).await.token;
        api
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/notifications/", self.port)
    }

    /// Sends a request; `token` as Bearer when given. Answers the status and the JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} body is not JSON: {text:?}"));
        (status, json)
    }

    /// A request as the user's browser sends it: the session cookies, and `X-CSRFToken` if given.
    pub async fn as_browser(
        &self,
        method: Method,
        path: &str,
        user: &TestUser,
        csrf: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("Cookie", user.cookie_header());
        if let Some(csrf) = csrf {
            req = req.header("X-CSRFToken", csrf);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, body).await
    }

    pub async fn register(&self, username: &str, role: &str) -> (StatusCode, Value) {
        self.post(
            "/api/auth/register/",
            None,
            Some(json!({ "username": username, "password": PASSWORD, "role": role })),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> TestUser {
        let resp = self
            .http
            .post(self.url("/api/auth/login/"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("login sent");
        assert_eq!(resp.status(), StatusCode::OK, "login of {username}");
        let session_cookie = set_cookie_value(&resp, "sessionid");
        let csrf_cookie = set_cookie_value(&resp, "csrftoken");
        let body: Value = resp.json().await.expect("login JSON");
        TestUser {
            id: body["user"]["id"].as_i64().expect("user id") as i32,
            username: username.into(),
            token: body["token"].as_str().expect("token").into(),
            session_cookie,
            csrf_cookie,
        }
    }

    /// Registers and logs in a fresh jobseeker.
    pub async fn new_user(&self) -> TestUser {
        let name = format!("user{}", USER_COUNTER.fetch_add(1, Ordering::Relaxed));
        let (status, _) = self.register(&name, "jobseeker").await;
        assert_eq!(status, StatusCode::CREATED);
        self.login(&name, PASSWORD).await
    }

    /// The admin creates a notification for `user_id` over the API.
    pub async fn notify(&self, user_id: i32, title: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/notifications/",
                Some(&self.admin_token),
                Some(json!({
                    "user_id": user_id, "title": title, "message": "a message",
                    "notification_type": "message", "link": "/messages/"
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The admin publishes an announcement over the API.
    pub async fn announce(&self, body: Value) -> Value {
        let (status, body) = self
            .post("/api/global-notifications/", Some(&self.admin_token), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Opens a socket with the Bearer token.
    pub async fn ws(&self, user: &TestUser) -> WsClient {
        self.ws_with(|req| {
            req.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {}", user.token)).expect("header"),
            );
        })
        .await
        .expect("handshake accepted")
    }

    /// Opens a socket after `prepare` has set the handshake's headers; Err is the refusal status.
    pub async fn ws_with(
        &self,
        prepare: impl FnOnce(&mut tungstenite::handshake::client::Request),
    ) -> Result<WsClient, u16> {
        let mut req = self.ws_url().into_client_request().expect("request");
        prepare(&mut req);
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(WsClient { stream }),
            Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("WebSocket handshake failed unexpectedly: {e}"),
        }
    }
}

impl TestApp {
    /// Runs `save` in this server's outbox scope: what it saves through the entity is pushed by
    /// this server, as if a request had saved it.
    pub async fn saving<F: std::future::Future>(&self, save: F) -> F::Output {
        self.outbox.scope(save).await
    }

    pub async fn stats(&self) -> HubStats {
        self.hub.send(Stats).await.expect("hub answers")
    }

    /// Waits until the hub holds `sessions` sessions (for at most `within`).
    pub async fn wait_for_sessions(&self, sessions: usize, within: Duration) -> HubStats {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let stats = self.stats().await;
            if stats.sessions == sessions || tokio::time::Instant::now() > deadline {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A WebSocket client as a test uses it.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What a socket saw next.
#[derive(Debug)]
pub enum Seen {
    Json(Value),
    Closed(Option<u16>),
    Nothing,
}

impl WsClient {
    /// The next text message, close, or nothing within `within` (pings are answered and skipped).
    pub async fn next(&mut self, within: Duration) -> Seen {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Seen::Nothing,
                Ok(None) => return Seen::Closed(None),
                Ok(Some(Err(_))) => return Seen::Closed(None),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Seen::Json(serde_json::from_str(&text).expect("server sends JSON"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => return Seen::Closed(frame.map(|f| u16::from(f.code))),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next JSON message; panics on silence or close.
    pub async fn json(&mut self) -> Value {
        match self.next(Duration::from_secs(5)).await {
            Seen::Json(value) => value,
            other => panic!("expected a message, saw {other:?}"),
        }
    }

    /// Asserts nothing arrives for a while.
    pub async fn expect_silence(&mut self, within: Duration) {
        match self.next(within).await {
            Seen::Nothing => {}
            other => panic!("expected silence, saw {other:?}"),
        }
    }

    /// The close code the server ends with (messages before it are skipped).
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Seen::Json(_) => continue,
                Seen::Closed(code) => return code,
                Seen::Nothing => panic!("socket still open after {within:?}"),
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }
}

// Real processes: Herald nodes sharing PostgreSQL and Redis, and a private Redis to break.

/// How long a process gets to start serving (or to become ready) before the test fails.
const PROCESS_START_WITHIN: Duration = Duration::from_secs(30);
/// How long readiness may take to follow Redis going away or coming back (reconnects back off
/// to 5 s at most).
pub const READINESS_WITHIN: Duration = Duration::from_secs(15);
/// How long one request to a node may take.
const NODE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The Redis the cluster tests share (`HERALD_TEST_REDIS_URL`, else the local default).
pub fn shared_redis_url() -> String {
    std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Panics with a clear message unless Redis answers at `url`.
pub async fn require_redis(url: &str) {
    if let Err(e) = redis_ping(url).await {
        panic!("Redis is required for this test ({url}): {e}");
    }
}

async fn redis_connection(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let mut conn = redis_connection(url).await?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Waits until exactly `count` connections (one per node) subscribe to `channel`.
pub async fn wait_for_subscribers(redis_url: &str, channel: &str, count: i64) {
    let mut conn = redis_connection(redis_url)
        .await
        .unwrap_or_else(|e| panic!("Redis is required for this test ({redis_url}): {e}"));
    let deadline = tokio::time::Instant::now() + READINESS_WITHIN;
    loop {
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .expect("PUBSUB NUMSUB");
        if subscribers == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel} has {subscribers} subscribers, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

static PREFIX_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A Redis channel prefix no other test uses: user ids from different test databases collide.
pub fn unique_channel_prefix() -> String {
    format!(
        "herald_t{}_{}_{}",
        std::process::id(),
        PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

/// What the nodes of one test cluster share.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub database_url: String,
    pub redis_url: String,
    pub channel_prefix: String,
}

impl ClusterConfig {
    /// The Redis channel carrying `user_id`'s pushes.
    pub fn user_channel(&self, user_id: i32) -> String {
        format!("{}:user:{user_id}", self.channel_prefix)
    }
}

/// One `herald` process; killed when dropped.
pub struct Node {
    pub api: Api,
    config: ClusterConfig,
    child: Option<std::process::Child>,
    /// Holds `node.log`, the process's output (shown when it fails to start).
    log_dir: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Node {
    /// Starts a node on a free port and waits until `/readyz` answers 200.
    pub async fn start(config: &ClusterConfig) -> Node {
        let node = Node::spawn(config, free_port()).await;
        node.wait_readiness(true).await;
        node
    }

    /// Starts a node on `port` and waits until it serves HTTP, ready or not.
    pub async fn spawn(config: &ClusterConfig, port: u16) -> Node {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let child = launch(config, port, &log_dir);
        // A deadline on every request: a node that stops answering fails the test, not hangs it.
        let http = reqwest::Client::builder()
            .cookie_store(false)
            .timeout(NODE_REQUEST_TIMEOUT)
            .build()
            .expect("client");
        let mut node = Node {
            api: Api {
                address: format!("http://127.0.0.1:{port}"),
                port,
                http,
                admin_token: String::new(),
            },
            config: config.clone(),
            child: Some(child),
            log_dir,
        };
        node.wait_serving().await;
        node.api.admin_token = node.login(ADMIN, ADMIN_PASSWORD).await.token;
        node
    }

    /// Kills the process (SIGKILL: a crash, not a graceful stop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (what an orchestrator does) and waits for the process to exit.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for herald") {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "herald did not exit within {within:?} of SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the process again on the same port and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = Some(launch(&self.config, self.api.port, &self.log_dir));
        self.wait_serving().await;
        self.wait_readiness(true).await;
    }

    /// The `/readyz` status.
    pub async fn readyz(&self) -> StatusCode {
        self.get("/readyz", None).await.0
    }

    /// Waits until `/readyz` answers 200 (`ready`) or 503 (not `ready`).
    pub async fn wait_readiness(&self, ready: bool) {
        let want = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let deadline = tokio::time::Instant::now() + READINESS_WITHIN;
        loop {
            let status = self.readyz().await;
            if status == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {} /readyz is still {status}, expected {want}; its log:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_serving(&mut self) {
        let deadline = tokio::time::Instant::now() + PROCESS_START_WITHIN;
        loop {
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                panic!("herald exited during start-up ({status}); its log:\n{}", self.log());
            }
            let healthz = self.api.http.get(self.url("/healthz")).send().await;
            if healthz.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "herald did not start serving within {PROCESS_START_WITHIN:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the process has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("node.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `herald` binary with `config` on `port`, its output appended to `log_dir/node.log`.
fn launch(config: &ClusterConfig, port: u16, log_dir: &tempfile::TempDir) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.path().join("node.log"))
        .expect("node log file");
    std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HERALD_BIND", format!("127.0.0.1:{port}"))
        .env("HERALD_DATABASE_URL", &config.database_url)
        .env("HERALD_REDIS_URL", &config.redis_url)
        .env("HERALD_REDIS_CHANNEL_PREFIX", &config.channel_prefix)
        .env("HERALD_ADMIN_USERNAME", ADMIN)
        .env("HERALD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        // The cluster tests open many sockets from one address: abuse limits off.
        .env("HERALD_LIMITS__SOCKETS_PER_USER", "0")
        .env("HERALD_LIMITS__SOCKET_MESSAGES_PER_SECOND", "0")
        .env("HERALD_LIMITS__CONNECTIONS_PER_ADDRESS", "0")
        .env("HERALD_LIMITS__REGISTRATIONS_PER_ADDRESS_PER_MINUTE", "0")
        .env("HERALD_LIMITS__LOGIN_FAILURES_PER_USERNAME_PER_MINUTE", "0")
        .env("HERALD_LIMITS__LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", "0")
        .env_remove("HERALD_ENV")
        .env_remove("HERALD_ALLOWED_ORIGINS")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start the herald binary")
}

/// A `redis-server` of the test's own, to stop and restart; killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    pub url: String,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free port (panics clearly when it is not installed).
    pub async fn start() -> PrivateRedis {
        PrivateRedis::start_on(free_port()).await
    }

    /// Starts `redis-server` on `port` without persistence.
    pub async fn start_on(port: u16) -> PrivateRedis {
        let mut redis = PrivateRedis {
            port,
            url: format!("redis://127.0.0.1:{port}"),
            child: None,
        };
        redis.restart().await;
        redis
    }

    /// Kills the server (SIGKILL: clients see their connections drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server must be on PATH for this test: {e}"));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + PROCESS_START_WITHIN;
        while let Err(e) = redis_ping(&self.url).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server on port {} did not answer: {e}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
