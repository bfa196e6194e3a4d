//! `Application::build` wires settings, database, hub and HTTP server together, one named step
//! each; `run_until_stopped` serves until SIGINT/SIGTERM and then shuts down gracefully.
use std::{
    convert::Infallible,
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use actix::{Actor, Addr, AsyncContext};
use actix_http::{HttpService, KeepAlive};
use actix_server::{Server, ServerBuilder, ServerHandle};
use actix_service::{IntoServiceFactory, fn_service, map_config};
use actix_web::{
    App,
    dev::{AppConfig, Extensions},
    middleware::{ErrorHandlers, Logger, from_fn},
    rt::net::TcpStream,
    web,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::{
    auth::AuthService,
    cache_versions::CacheVersions,
    configuration::{Settings, redact},
    domain::{Password, Username},
    error, http_conventions,
    hub::{
        NotificationHub,
        messages::{LoadMutedTypes, Shutdown},
    },
    layer::{ChannelLayer, LayerStatus, redis::RedisConfig},
    limits::{
        self, HttpLimits,
        connections::{ConnectionCounts, admit_connections},
        sockets::SocketCounts,
    },
    metrics::{self, Metrics},
    outbox::Outbox,
    retention, routes,
    services::{
        announcement_expiry, catch_up, global_notifications::LiveListCache, group_commit::NotificationWriter,
        notifications::ListCache,
    },
    state::AppState,
    ws,
};

/// Pending connections the listener queues (bursts of WebSocket handshakes).
const LISTEN_BACKLOG: i32 = 4096;
/// How long sessions get to flush their "going away" close frames at shutdown.
const CLOSE_FLUSH_TIME: Duration = Duration::from_millis(300);
/// How long in-flight requests get to finish at shutdown.
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// Why the server could not start; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("cannot open database {url}: {source}")]
    Database { url: String, source: sea_orm::DbErr },
    #[error("database migration failed: {0}")]
    Migration(sea_orm::DbErr),
    #[error("cannot create the bootstrap admin: {0}")]
    Admin(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("channel layer: {0}")]
    Layer(String),
    #[error("cannot read the database: {0}")]
    Query(sea_orm::DbErr),
}

/// A built, bound, not yet running Herald.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    hub: Addr<NotificationHub>,
    outbox: Outbox,
    db: DatabaseConnection,
}

/// Opens the database with the pool and SQLite settings Herald relies on.
pub async fn connect_database(settings: &Settings) -> Result<DatabaseConnection, StartupError> {
    connect_pool(settings, settings.limits.db_pool_size).await
}

/// The connection `group_commit` writes with. SQLite gets one of its own: a connection's page
/// cache is dropped whenever another connection has written, so batches written on rotating
/// pool connections re-read the pages the previous batch changed. PostgreSQL shares the pool.
pub async fn connect_writer(settings: &Settings, db: &DatabaseConnection) -> Result<DatabaseConnection, StartupError> {
    if settings.uses_sqlite() {
        connect_pool(settings, 1).await
    } else {
        Ok(db.clone())
    }
}

async fn connect_pool(settings: &Settings, size: u32) -> Result<DatabaseConnection, StartupError> {
    let url = settings.database_url();
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(size)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if settings.uses_sqlite() {
        // An embedded file connection cannot be dropped by a server or a firewall, and sqlx's
        // SQLite driver runs each command on the connection's own thread: a ping on every
        // acquire would double the thread hand-offs of every query.
        options.test_before_acquire(false);
        // WAL lets readers run beside the writer; the busy timeout makes concurrent writers wait
        // instead of failing with "database is locked"; NORMAL sync is durable in WAL mode
        // against process crashes.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(20))
                .foreign_keys(true)
        });
    } else {
        // A server connection can be dropped while idle (restart, proxy, firewall): check the
        // ones that sat idle, not every hot one, which would add a round trip to each query.
        options.test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    Database::connect(options)
        .await
        .map_err(|source| StartupError::Database {
            url: redact(&url),
            source,
        })
}

/// Creates or resets the configured bootstrap admin.
pub async fn ensure_admin(auth: &AuthService, username: &str, password: &str) -> Result<(), StartupError> {
    let username = Username::parse(username).map_err(|e| StartupError::Admin(e.to_string()))?;
    let password = Password::parse(password).map_err(|e| StartupError::Admin(e.to_string()))?;
    auth.ensure_admin(&username, &password)
        .await
        .map_err(|e| StartupError::Admin(e.to_string()))?;
    Ok(())
}

/// Whether any admin account exists; without one nobody can publish.
async fn has_admin(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let admins = entity::user::Entity::find()
        .filter(entity::user::Column::Role.eq(entity::user::Role::Admin))
        .count(db)
        .await?;
    Ok(admins > 0)
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// The start-up error for a listener that could not be bound (or asked its address) at `addr`.
fn cannot_listen(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> StartupError {
    move |source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    }
}

/// Connects and migrates; answers the pool and the connection the group commit writes with.
async fn open_database(settings: &Settings) -> Result<(DatabaseConnection, DatabaseConnection), StartupError> {
    let db = connect_database(settings).await?;
    Migrator::up(&db, None).await.map_err(StartupError::Migration)?;
    let writer = connect_writer(settings, &db).await?;
    Ok((db, writer))
}

/// Creates or resets the configured bootstrap admin; without one configured, hints at how to
/// make one when none exists.
async fn bootstrap_admin(settings: &Settings, auth: &AuthService, db: &DatabaseConnection) -> Result<(), StartupError> {
    match (&settings.admin_username, &settings.admin_password) {
        (Some(user), Some(password)) => {
            ensure_admin(auth, user, password).await?;
            log::info!("bootstrap admin {user:?} is ready");
        }
        // Only a hint for the operator: a failed look-up does not stop the start.
        (None, None) => match has_admin(db).await {
            Ok(true) => {}
            Ok(false) => log::warn!("no admin account yet: make one with `herald create-admin NAME`"),
            Err(e) => log::warn!("cannot check for an admin account: {e}"),
        },
        _ => {
            return Err(StartupError::Config(
                "invalid configuration: set both HERALD_ADMIN_USERNAME and HERALD_ADMIN_PASSWORD, or neither".into(),
            ));
        }
    }
    Ok(())
}

/// The bound listeners: the API's and, when configured, the metrics one.
struct Listeners {
    http: TcpListener,
    addr: SocketAddr,
    port: u16,
    metrics: Option<(TcpListener, SocketAddr)>,
}

impl Listeners {
    fn bind(addr: SocketAddr, metrics_addr: Option<SocketAddr>) -> Result<Self, StartupError> {
        let http = bind(addr).map_err(cannot_listen(addr))?;
        let port = http.local_addr().map_err(cannot_listen(addr))?.port();
        let metrics = metrics_addr
            .map(|addr| bind(addr).map(|listener| (listener, addr)).map_err(cannot_listen(addr)))
            .transpose()?;
        Ok(Self {
            http,
            addr,
            port,
            metrics,
        })
    }

    fn metrics_port(&self) -> Option<u16> {
        let (listener, _) = self.metrics.as_ref()?;
        listener.local_addr().ok().map(|addr| addr.port())
    }
}

/// The started hub and what the rest of the server shares with it.
struct Hub {
    addr: Addr<NotificationHub>,
    /// Whether the channel layer is connected.
    layer: LayerStatus,
    /// Woken on every announcement change the hub sees (the expiry timer's cue).
    announcements_changed: Arc<tokio::sync::Notify>,
}

/// Starts the hub, with its channel layer (Redis when configured), and loads the muted types it
/// filters pushes by before anything is served.
async fn start_hub(
    settings: &Settings,
    db: &DatabaseConnection,
    redis: Option<RedisConfig>,
    auth: &Arc<AuthService>,
    metrics: &Arc<Metrics>,
) -> Result<Hub, StartupError> {
    // Where the hub starts to watch for what other nodes create (several nodes only).
    let newest = if redis.is_some() {
        catch_up::newest_ids(db).await.map_err(StartupError::Query)?
    } else {
        (0, 0)
    };
    let layer = LayerStatus::new(true);
    let announcements_changed = Arc::new(tokio::sync::Notify::new());
    let heartbeat = settings.websocket.heartbeat_interval();
    // The Redis task needs the hub's address and the hub owns the layer: create them together.
    let addr = NotificationHub::create(|ctx| {
        let channel = match redis {
            None => ChannelLayer::InProcess,
            Some(redis) => {
                let hub = ctx.address().downgrade().recipient();
                ChannelLayer::Redis(redis.start(hub, layer.clone(), auth.clone()))
            }
        };
        NotificationHub::new(channel, auth.clone(), heartbeat, metrics.clone())
            .watching_announcements(announcements_changed.clone())
            .catching_up_from(db.clone(), newest)
    });
    // Before serving: a push must never slip past a mute the hub has not loaded yet.
    addr.send(LoadMutedTypes { db: db.clone() })
        .await
        .map_err(|e| StartupError::Config(format!("the hub stopped while starting: {e}")))?
        .map_err(|source| StartupError::Database {
            url: redact(&settings.database_url()),
            source,
        })?;
    Ok(Hub {
        addr,
        layer,
        announcements_changed,
    })
}

/// The HTTP server on `listeners`, not yet running: actix-server workers running actix-http's
/// `HttpService` around the App, with the WebSocket upgrade handler, and the metrics listener.
fn http_server(
    state: web::Data<AppState>,
    listeners: Listeners,
    db: DatabaseConnection,
) -> Result<Server, StartupError> {
    let settings = state.settings.clone();
    let request_timeout = settings.limits.request_timeout();
    let json_config = web::JsonConfig::default()
        .limit(settings.limits.body_bytes)
        .error_handler(error::json_error);
    let user_timeout = settings.websocket.client_timeout();
    let worker_queue_len = settings.websocket.worker_queue_len;
    let metrics = state.metrics.clone();
    let request_metrics = metrics.clone();
    let metrics_layer = state.layer.clone();
    let connections = state.connections.clone();

    let workers = if settings.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        settings.workers
    };

    // actix-web's `HttpServer` cannot take an upgrade handler, so the same stack is assembled
    // from its parts: actix-server workers running actix-http's `HttpService` around the App,
    // plus `ws::upgrade`, which gets WebSocket handshakes together with their connection.
    let builder = ServerBuilder::default();
    let graceful = builder.graceful_shutdown_signal();
    let mut builder = builder
        .backlog(LISTEN_BACKLOG as u32)
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // Runs once on each worker thread, as it starts.
        .listen("herald", listeners.http, move || {
            let graceful = graceful.clone();
            let ws_state = state.clone();
            let connections = connections.clone();
            let outbox = state.outbox.clone();
            // This thread's delivery of pushes to its sockets (`ws::delivery`).
            let delivery = ws::Delivery::start(state.hub.clone(), worker_queue_len);
            let app = App::new()
                .app_data(state.clone())
                .app_data(web::Data::from(request_metrics.clone()))
                .app_data(json_config.clone())
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                // What a request saves is pushed by this server's hub.
                .wrap(from_fn(move |req, next| outbox.around_request(req, next)))
                .wrap(ErrorHandlers::new().default_handler(error::ensure_json_body))
                .wrap(from_fn(http_conventions::json_ends_with_newline))
                .wrap(from_fn(move |req, next| {
                    limits::request_timeout::enforce(request_timeout, req, next)
                }))
                // Method, path, status, time: never headers, cookies or query strings.
                .wrap(
                    Logger::new("%{method}xi %U %s %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .wrap(from_fn(metrics::observe_requests))
                .configure(routes::config)
                .default_service(web::to(routes::redirect_or_not_found));
            let http = HttpService::build()
                .keep_alive(KeepAlive::default())
                // The head's part of the request timeout (zero: off); the body's is enforced
                // by `limits::request_timeout`.
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                // Idle keep-alive connections close as soon as a graceful shutdown starts.
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                .on_connect_ext(move |io: &TcpStream, _: &mut Extensions| tune_socket(io, user_timeout))
                .upgrade(fn_service(move |(req, framed)| {
                    let state = ws_state.clone();
                    let delivery = delivery.clone();
                    async move {
                        ws::upgrade::serve(req, framed, state, delivery).await;
                        Ok::<_, Infallible>(())
                    }
                }))
                // Herald builds no absolute URLs and reads no `ConnectionInfo`, the only users
                // of `AppConfig`'s host and address.
                .finish(map_config(app.into_factory(), |_| AppConfig::default()))
                .tcp();
            // Past `limits.connections_per_address`, a connection is closed as it is accepted.
            admit_connections(connections, http)
        })
        .map_err(cannot_listen(listeners.addr))?;
    if let Some((listener, metrics_addr)) = listeners.metrics {
        let port = listener.local_addr().map_or(0, |addr| addr.port());
        builder =
            metrics::listen(builder, listener, metrics, db, metrics_layer).map_err(cannot_listen(metrics_addr))?;
        log::info!("metrics on http://{}:{port}/metrics", metrics_addr.ip());
    }
    Ok(builder.run())
}

impl Application {
    /// Connects, migrates, starts the hub and binds the listener (port 0 picks a free port).
    /// Must run inside an actix `System`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Checked before anything is touched; connecting to Redis waits until the hub exists.
        let addr = settings.bind_addr().map_err(StartupError::Config)?;
        let metrics_addr = settings.metrics_addr().map_err(StartupError::Config)?;
        let redis = settings
            .redis_url()
            .map(|url| RedisConfig::parse(url, &settings.redis_channel_prefix))
            .transpose()
            .map_err(StartupError::Layer)?;
        let connections = ConnectionCounts::new(&settings.limits).map_err(StartupError::Config)?;

        let (db, writer_db) = open_database(&settings).await?;
        let auth = Arc::new(AuthService::new(db.clone(), settings.auth.token_lifetime_hours));
        bootstrap_admin(&settings, &auth, &db).await?;
        let listeners = Listeners::bind(addr, metrics_addr)?;
        let metrics =
            Arc::new(Metrics::new(redis.is_some()).map_err(|e| StartupError::Config(format!("metrics: {e}")))?);
        let hub = start_hub(&settings, &db, redis, &auth, &metrics).await?;

        // Where this server's saves go once committed: its hub, and its caches' versions.
        let versions = Arc::new(CacheVersions::default());
        let outbox = Outbox::new(hub.addr.clone(), versions.clone());
        announcement_expiry::start(db.clone(), hub.addr.downgrade(), hub.announcements_changed);
        retention::start(db.clone(), settings.retention.clone(), versions.clone());

        let port = listeners.port;
        let metrics_port = listeners.metrics_port();
        let settings = Arc::new(settings);
        let state = web::Data::new(AppState {
            db: db.clone(),
            hub: hub.addr.clone(),
            notification_writer: NotificationWriter::start(writer_db, &outbox),
            outbox,
            auth,
            allowed_origins: Arc::new(settings.effective_origins(port)),
            settings: settings.clone(),
            layer: hub.layer,
            live_globals: LiveListCache::new(versions.clone()),
            notification_lists: ListCache::new(settings.redis_url().is_none(), versions),
            metrics,
            session_ids: ws::SessionIds::default(),
            sockets: SocketCounts::new(settings.limits.sockets_per_user),
            connections,
            http_limits: HttpLimits::new(&settings.limits),
        });
        let outbox = state.outbox.clone();
        let server = http_server(state, listeners, db.clone())?;

        Ok(Self {
            port,
            metrics_port,
            server,
            hub: hub.addr,
            outbox,
            db,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the metrics listener, if `metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The hub, for tests and embedders.
    pub fn hub(&self) -> Addr<NotificationHub> {
        self.hub.clone()
    }

    /// The database connection the server uses.
    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// Where this server's saves go: run a save in its scope (`Outbox::scope`) to have it
    /// pushed by this server, as tests and embedders saving outside a request do.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Stops the server as a signal would: sockets get 1001, requests finish, then it returns.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            hub: self.hub.clone(),
            server: self.server.handle(),
        }
    }

    /// Serves until stopped (SIGINT, SIGTERM or a [`ShutdownHandle`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.shutdown_handle();
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            log::info!("signal received: shutting down");
            handle.shutdown().await;
        });
        self.server.await
    }
}

/// Triggers the graceful shutdown.
#[derive(Clone)]
pub struct ShutdownHandle {
    hub: Addr<NotificationHub>,
    server: ServerHandle,
}

impl ShutdownHandle {
    /// Sends "going away" (1001) to every socket, then stops accepting and lets requests finish.
    pub async fn shutdown(&self) {
        if let Ok(told) = self.hub.send(Shutdown).await {
            log::info!("told {told} WebSocket sessions the server is going away");
        }
        actix_web::rt::time::sleep(CLOSE_FLUSH_TIME).await;
        self.server.stop(true).await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            log::error!("cannot install signal handlers");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Per-connection socket options: no Nagle delay on pushes, and a kernel timeout that aborts a
/// connection whose peer stops acknowledging data (a dead peer, or a client that stopped
/// reading), so a stalled socket is reclaimed even while its actor cannot run.
fn tune_socket(tcp: &TcpStream, user_timeout: Duration) {
    let _ = tcp.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    {
        let _ = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(user_timeout));
    }
}
