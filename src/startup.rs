//! `Application::build` wires settings, database, hub and HTTP server together;
//! `run_until_stopped` serves until SIGINT/SIGTERM and then shuts down gracefully.
use std::{convert::Infallible, net::TcpListener, sync::Arc, time::Duration};

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
    retention, routes,
    services::{announcement_expiry, catch_up, group_commit::NotificationWriter, notifications::ListCache},
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

fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

impl Application {
    /// Connects, migrates, starts the hub and binds the listener (port 0 picks a free port).
    /// Must run inside an actix `System`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let addr = settings.bind_addr().map_err(StartupError::Config)?;
        let metrics_addr = settings.metrics_addr().map_err(StartupError::Config)?;
        // Checked before anything is touched; connecting waits until the hub exists.
        let redis = settings
            .redis_url()
            .map(|url| RedisConfig::parse(url, &settings.redis_channel_prefix))
            .transpose()
            .map_err(StartupError::Layer)?;
        let connections = ConnectionCounts::new(&settings.limits).map_err(StartupError::Config)?;
        let db = connect_database(&settings).await?;
        Migrator::up(&db, None).await.map_err(StartupError::Migration)?;
        let writer_db = connect_writer(&settings, &db).await?;

        let auth = Arc::new(AuthService::new(db.clone(), settings.auth.token_lifetime_hours));
        match (&settings.admin_username, &settings.admin_password) {
            (Some(user), Some(password)) => {
                ensure_admin(&auth, user, password).await?;
                log::info!("bootstrap admin {user:?} is ready");
            }
            // Only a hint for the operator: a failed look-up does not stop the start.
            (None, None) => match has_admin(&db).await {
                Ok(true) => {}
                Ok(false) => log::warn!("no admin account yet: make one with `herald create-admin NAME`"),
                Err(e) => log::warn!("cannot check for an admin account: {e}"),
            },
            _ => {
                return Err(StartupError::Config(
                    "invalid configuration: set both HERALD_ADMIN_USERNAME and HERALD_ADMIN_PASSWORD, or neither"
                        .into(),
                ));
            }
        }

        let listener = bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .port();
        let metrics_listener = metrics_addr
            .map(|addr| {
                bind(addr).map_err(|source| StartupError::Bind {
                    addr: addr.to_string(),
                    source,
                })
            })
            .transpose()?;
        let metrics_port = metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
            .map(|addr| addr.port());
        let metrics =
            Arc::new(Metrics::new(redis.is_some()).map_err(|e| StartupError::Config(format!("metrics: {e}")))?);

        // Where the hub starts to watch for what other nodes create (several nodes only).
        let newest = if redis.is_some() {
            catch_up::newest_ids(&db).await.map_err(StartupError::Query)?
        } else {
            (0, 0)
        };
        let layer_status = LayerStatus::new(true);
        let announcements_changed = Arc::new(tokio::sync::Notify::new());
        let heartbeat = settings.websocket.heartbeat_interval();
        // The Redis task needs the hub's address and the hub owns the layer: create them together.
        let hub = NotificationHub::create(|ctx| {
            let layer = match redis {
                None => ChannelLayer::InProcess,
                Some(redis) => {
                    let hub = ctx.address().downgrade().recipient();
                    ChannelLayer::Redis(redis.start(hub, layer_status.clone(), auth.clone()))
                }
            };
            NotificationHub::new(layer, auth.clone(), heartbeat, metrics.clone())
                .watching_announcements(announcements_changed.clone())
                .catching_up_from(db.clone(), newest)
        });
        // Entity hooks anywhere in this actix System now reach this hub.
        entity::broadcast::subscribe(hub.clone().recipient());
        // Before serving: a push must never slip past a mute the hub has not loaded yet.
        hub.send(LoadMutedTypes { db: db.clone() })
            .await
            .map_err(|e| StartupError::Config(format!("the hub stopped while starting: {e}")))?
            .map_err(|source| StartupError::Database {
                url: redact(&settings.database_url()),
                source,
            })?;
        announcement_expiry::start(db.clone(), hub.downgrade(), announcements_changed);
        retention::start(db.clone(), settings.retention.clone());

        let settings = Arc::new(settings);
        let state = web::Data::new(AppState {
            db: db.clone(),
            hub: hub.clone(),
            auth,
            allowed_origins: Arc::new(settings.effective_origins(port)),
            settings: settings.clone(),
            layer: layer_status,
            live_globals: Default::default(),
            notification_lists: ListCache::new(settings.redis_url().is_none()),
            notification_writer: NotificationWriter::start(writer_db),
            metrics: metrics.clone(),
            sockets: SocketCounts::new(settings.limits.sockets_per_user),
            connections: connections.clone(),
            http_limits: HttpLimits::new(&settings.limits),
        });
        let request_timeout = settings.limits.request_timeout();
        let metrics_layer = state.layer.clone();
        let json_config = web::JsonConfig::default()
            .limit(settings.limits.body_bytes)
            .error_handler(error::json_error);
        let user_timeout = settings.websocket.client_timeout();

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
            .listen("herald", listener, move || {
                let graceful = graceful.clone();
                let ws_state = state.clone();
                let connections = connections.clone();
                let app = App::new()
                    .app_data(state.clone())
                    .app_data(json_config.clone())
                    .app_data(web::PathConfig::default().error_handler(error::path_error))
                    .app_data(web::QueryConfig::default().error_handler(error::query_error))
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
                    .default_service(web::to(http_conventions::redirect_or_not_found));
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
                        async move {
                            ws::upgrade::serve(req, framed, state).await;
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
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        if let (Some(listener), Some(metrics_addr)) = (metrics_listener, metrics_addr) {
            builder = metrics::listen(builder, listener, metrics, db.clone(), metrics_layer).map_err(|source| {
                StartupError::Bind {
                    addr: metrics_addr.to_string(),
                    source,
                }
            })?;
            log::info!(
                "metrics on http://{}:{}/metrics",
                metrics_addr.ip(),
                metrics_port.unwrap_or(0)
            );
        }
        let server = builder.run();

        Ok(Self {
            port,
            metrics_port,
            server,
            hub,
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
