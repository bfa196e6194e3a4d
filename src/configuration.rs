//! Typed settings, layered: `config/default.toml` → `config/<HERALD_ENV>.toml` → `HERALD_*` variables.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// Ten years: longer lifetimes are a mistake, and far larger ones overflow date arithmetic.
const MAX_TOKEN_LIFETIME_HOURS: u32 = 24 * 366 * 10;
/// One day.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Everything Herald can be configured with.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub bind: String,
    #[serde(default)]
    pub database_url: String,
    #[serde(default)]
    pub redis_url: String,
    /// Prefix of the Redis channel names, so several deployments (or tests) can share one Redis.
    #[serde(default = "default_redis_channel_prefix")]
    pub redis_channel_prefix: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub admin_username: Option<String>,
    #[serde(default)]
    pub admin_password: Option<String>,
    pub log_level: String,
    /// HTTP worker threads; 0 means one per available core (actix-web's default).
    #[serde(default)]
    pub workers: usize,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub websocket: WebSocketSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub token_lifetime_hours: u32,
    pub secure_cookies: bool,
}

/// Sizes and abuse limits (`API.md`, "Limits against abuse"). For each abuse limit 0 turns it off.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub body_bytes: usize,
    pub db_pool_size: u32,
    /// Failed logins per username per minute; past it 429, even for the right password.
    #[serde(default = "defaults::login_failures_per_username_per_minute")]
    pub login_failures_per_username_per_minute: u32,
    /// Failed logins per client address per minute.
    #[serde(default = "defaults::login_failures_per_address_per_minute")]
    pub login_failures_per_address_per_minute: u32,
    /// Registrations per client address per minute.
    #[serde(default = "defaults::registrations_per_address_per_minute")]
    pub registrations_per_address_per_minute: u32,
    /// Open sockets per user; the next handshake gets 429.
    #[serde(default = "defaults::sockets_per_user")]
    pub sockets_per_user: u32,
    /// Client messages per socket per second (bursts of twice that).
    #[serde(default = "defaults::socket_messages_per_second")]
    pub socket_messages_per_second: u32,
    /// Time for a request's head and body to arrive before the connection is closed.
    #[serde(default = "defaults::request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Concurrent connections (HTTP and WebSocket) per client address.
    #[serde(default = "defaults::connections_per_address")]
    pub connections_per_address: u32,
    /// Proxies whose `X-Forwarded-For` is believed (IP addresses); empty: the peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl LimitSettings {
    /// The time for a request's head and body to arrive; zero when the limit is off.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Every abuse limit off (0): for test servers and benchmarks that make many users and
    /// sockets from one address. Sizes stay as they are.
    pub fn without_abuse_limits(mut self) -> Self {
        self.login_failures_per_username_per_minute = 0;
        self.login_failures_per_address_per_minute = 0;
        self.registrations_per_address_per_minute = 0;
        self.sockets_per_user = 0;
        self.socket_messages_per_second = 0;
        self.request_timeout_secs = 0;
        self.connections_per_address = 0;
        self
    }
}

/// The defaults of `API.md`, used when `config/default.toml` lacks a key.
mod defaults {
    pub fn login_failures_per_username_per_minute() -> u32 {
        10
    }
    pub fn login_failures_per_address_per_minute() -> u32 {
        100
    }
    pub fn registrations_per_address_per_minute() -> u32 {
        20
    }
    pub fn sockets_per_user() -> u32 {
        50
    }
    pub fn socket_messages_per_second() -> u32 {
        20
    }
    pub fn request_timeout_secs() -> u64 {
        10
    }
    pub fn connections_per_address() -> u32 {
        1000
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebSocketSettings {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub heartbeat_interval_secs: f64,
    pub client_timeout_secs: f64,
    pub send_queue_len: usize,
    pub max_bad_frames_per_minute: u32,
}

impl WebSocketSettings {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_interval_secs)
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.client_timeout_secs)
    }
}

fn default_redis_channel_prefix() -> String {
    "herald".into()
}

/// The directory holding `default.toml`: `HERALD_CONFIG_DIR`, else `./config`, else the one
/// this binary was built from (so `cargo run` works from any directory of the checkout).
fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HERALD_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("config");
    if local.join("default.toml").is_file() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

impl Settings {
    /// Reads and validates the layered configuration; the error is one line for the operator.
    pub fn load() -> Result<Self, String> {
        let dir = config_dir();
        let env = std::env::var("HERALD_ENV").unwrap_or_else(|_| "local".into());
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(true))
            .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(false))
            .add_source(
                config::Environment::with_prefix("HERALD")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("allowed_origins")
                    .with_list_parse_key("limits.trusted_proxies")
                    .try_parsing(true),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        self.bind_addr()?;
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "invalid configuration: database_url must be sqlite:… or postgres://…, got {:?}",
                redact(&url)
            ));
        }
        if self.uses_sqlite() && (url.contains(":memory:") || url.contains("mode=memory")) {
            // Each pooled connection, and the notification writer's own, would open a database
            // of its own: migrations and writes would land where reads never look.
            return Err(
                "invalid configuration: database_url must name an SQLite file, not an in-memory database".into(),
            );
        }
        let redis_ok = self.redis_url.is_empty()
            || self.redis_url.starts_with("redis://")
            || self.redis_url.starts_with("rediss://");
        if !redis_ok {
            return Err("invalid configuration: redis_url must start with redis://".into());
        }
        let prefix = &self.redis_channel_prefix;
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("invalid configuration: redis_channel_prefix must be non-empty, without spaces".into());
        }
        for origin in &self.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                return Err(format!(
                    "invalid configuration: allowed origin {origin:?} must look like https://host[:port]"
                ));
            }
        }
        let ws = &self.websocket;
        // Upper bounds keep the Duration and date arithmetic built on them from overflowing.
        if ws.client_timeout_secs > MAX_TIMEOUT_SECS {
            return Err(format!(
                "invalid configuration: websocket.client_timeout_secs must be at most {MAX_TIMEOUT_SECS}"
            ));
        }
        if !(ws.heartbeat_interval_secs > 0.0 && ws.client_timeout_secs > ws.heartbeat_interval_secs) {
            return Err(
                "invalid configuration: websocket.client_timeout_secs must exceed heartbeat_interval_secs > 0".into(),
            );
        }
        if ws.send_queue_len == 0
            || ws.max_frame_bytes < 128
            || self.limits.body_bytes < 1024
            || self.limits.db_pool_size == 0
        {
            return Err("invalid configuration: limits must be positive (frame ≥ 128 B, body ≥ 1 KiB)".into());
        }
        if let Some(bad) = self
            .limits
            .trusted_proxies
            .iter()
            .find(|p| p.parse::<std::net::IpAddr>().is_err())
        {
            return Err(format!(
                "invalid configuration: trusted proxy {bad:?} must be an IP address"
            ));
        }
        if self.limits.request_timeout_secs as f64 > MAX_TIMEOUT_SECS {
            return Err(format!(
                "invalid configuration: limits.request_timeout_secs must be at most {MAX_TIMEOUT_SECS}"
            ));
        }
        if self.auth.token_lifetime_hours == 0 || self.auth.token_lifetime_hours > MAX_TOKEN_LIFETIME_HOURS {
            return Err(format!(
                "invalid configuration: auth.token_lifetime_hours must be 1 to {MAX_TOKEN_LIFETIME_HOURS}"
            ));
        }
        Ok(())
    }

    /// The listen address.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        self.bind.parse().map_err(|_| {
            format!(
                "invalid configuration: bind {:?} is not an address like 127.0.0.1:8000",
                self.bind
            )
        })
    }

    /// The database URL, defaulting to an SQLite file in the working directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            "sqlite://herald.sqlite3?mode=rwc".into()
        } else {
            self.database_url.clone()
        }
    }

    /// Whether the database is an SQLite file (the embedded default) rather than PostgreSQL.
    pub fn uses_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The Redis URL when several nodes share pushes.
    pub fn redis_url(&self) -> Option<&str> {
        (!self.redis_url.is_empty()).then_some(self.redis_url.as_str())
    }

    /// Origins allowed for cookie-authenticated WebSockets; `port` is the bound port.
    pub fn effective_origins(&self, port: u16) -> Vec<String> {
        if !self.allowed_origins.is_empty() {
            return self.allowed_origins.clone();
        }
        let Ok(addr) = self.bind_addr() else {
            return Vec::new();
        };
        let mut origins = vec![format!("http://{}:{port}", addr.ip())];
        if addr.ip().is_loopback() {
            origins.push(format!("http://localhost:{port}"));
        }
        origins
    }
}

/// A URL with its password hidden, for error messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}
