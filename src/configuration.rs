//! Typed settings, layered: `config/default.toml` → `config/<HERALD_ENV>.toml` → `HERALD_*` variables.
//!
//! A bad value is reported as `VARIABLE=value: what is wrong`, every bad value at once, so the
//! operator fixes them in one go; the variable is the one that overrides the key, wherever the
//! value came from. Secrets (the admin password, URL passwords) never appear in those lines, in
//! `Debug` or in [`Settings::masked`].
use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::domain::{Password, Username};

/// Ten years: longer lifetimes are a mistake, and far larger ones overflow date arithmetic.
const MAX_TOKEN_LIFETIME_HOURS: u32 = 24 * 366 * 10;
/// A century: keeps the date arithmetic of the retention job in range.
const MAX_RETENTION_DAYS: u32 = 36_500;
/// One day.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Everything Herald can be configured with. `Debug` masks the secrets.
#[derive(Clone, Deserialize, Serialize)]
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
    /// Where `/metrics` is served (`HERALD_METRICS_BIND`); empty: nowhere. Never the public port.
    #[serde(default)]
    pub metrics_bind: String,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub websocket: WebSocketSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
}

/// The retention job (`retention.rs`): how long and how many notifications are kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Read notifications older than this many days are deleted; 0 keeps them.
    pub read_after_days: u32,
    /// Notifications kept per user at most (the oldest read ones go first, then the oldest);
    /// 0: no cap.
    pub max_per_user: u32,
    /// Seconds between runs; 0 turns the job off.
    pub interval_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            read_after_days: 90,
            max_per_user: 1000,
            interval_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuthSettings {
    pub token_lifetime_hours: u32,
    pub secure_cookies: bool,
}

/// Sizes and abuse limits (`API.md`, "Limits against abuse"). For each abuse limit 0 turns it off.
#[derive(Debug, Clone, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WebSocketSettings {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub heartbeat_interval_secs: f64,
    pub client_timeout_secs: f64,
    pub send_queue_len: usize,
    pub max_bad_frames_per_minute: u32,
    /// Pushes waiting for one worker thread's delivery task; a push that finds it full closes
    /// its sockets on that worker as too slow (1008).
    #[serde(default = "default_worker_queue_len")]
    pub worker_queue_len: usize,
}

fn default_worker_queue_len() -> usize {
    4096
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

/// Variables starting with `HERALD_` that are not settings: never warned about.
const OTHER_VARIABLES: &[&str] = &[
    "HERALD_ENV",
    "HERALD_CONFIG_DIR",
    // Tests, benchmarks and the browser tests.
    "HERALD_BIN",
    "HERALD_BUILD",
    "HERALD_DOCS_SCREENSHOT",
    "HERALD_TEST_POSTGRES_URL",
    "HERALD_TEST_REDIS_URL",
    "HERALD_SHARED",
    "HERALD_DB_PATH",
];

/// The variable that sets `key` (`websocket.heartbeat_interval_secs` →
/// `HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS`).
pub fn variable_of(key: &str) -> String {
    format!("HERALD_{}", key.replace('.', "__").to_uppercase())
}

/// Why the settings cannot be used: one line per bad value.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

/// `VARIABLE=value: problem`.
fn bad(key: &str, value: impl fmt::Display, problem: impl fmt::Display) -> String {
    format!("{}={value}: {problem}", variable_of(key))
}

/// A number of seconds must be positive, and bounded so the `Duration` and date arithmetic
/// built on it cannot overflow.
fn duration_problem(key: &str, secs: f64) -> Option<String> {
    if secs.is_nan() || secs <= 0.0 {
        Some(bad(key, secs, "must be > 0"))
    } else if secs > MAX_TIMEOUT_SECS {
        Some(bad(key, secs, format!("must be at most {MAX_TIMEOUT_SECS}")))
    } else {
        None
    }
}

/// The files' layers: `default.toml`, then `<HERALD_ENV>.toml`.
fn file_sources() -> config::ConfigBuilder<config::builder::DefaultState> {
    let dir = config_dir();
    let env = std::env::var("HERALD_ENV").unwrap_or_else(|_| "local".into());
    config::Config::builder()
        .add_source(config::File::from(dir.join("default.toml")).required(true))
        .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(false))
}

/// What a setting's variable must parse as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Whole,
    Number,
    Text,
}

/// Every setting's key (`bind`, `websocket.heartbeat_interval_secs`, ...) and its kind, read
/// from the files' settings as Rust types them (so a new field is known without a list here).
fn setting_kinds() -> Result<BTreeMap<String, Kind>, ConfigErrors> {
    let cannot = |e: &dyn fmt::Display| ConfigErrors(vec![format!("cannot read the configuration files: {e}")]);
    let defaults: Settings = file_sources()
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| cannot(&e))?;
    let serde_json::Value::Object(map) = serde_json::to_value(&defaults).map_err(|e| cannot(&e))? else {
        return Err(cannot(&"not a table"));
    };
    let mut kinds = BTreeMap::new();
    flatten_kinds("", map, &mut kinds);
    Ok(kinds)
}

fn flatten_kinds(prefix: &str, map: serde_json::Map<String, serde_json::Value>, into: &mut BTreeMap<String, Kind>) {
    use serde_json::Value as V;
    for (key, value) in map {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        let kind = match value {
            V::Object(inner) => {
                flatten_kinds(&key, inner, into);
                continue;
            }
            V::Bool(_) => Kind::Bool,
            V::Number(n) if n.is_f64() => Kind::Number,
            V::Number(_) => Kind::Whole,
            V::Null | V::String(_) | V::Array(_) => Kind::Text,
        };
        into.insert(key, kind);
    }
}

/// The `HERALD_*` variables of the process.
fn herald_variables() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| name.starts_with("HERALD_"))
        .collect()
}

/// The `HERALD_*` variables that are neither settings nor known to Herald, each with a hint:
/// `HERALD_BINDD is not a setting (did you mean HERALD_BIND?)`. Typos would otherwise be ignored.
pub fn unknown_variables() -> Vec<String> {
    let Ok(kinds) = setting_kinds() else {
        return Vec::new();
    };
    let known: Vec<String> = kinds.keys().map(|key| variable_of(key)).collect();
    let mut unknown: Vec<String> = herald_variables()
        .into_keys()
        .filter(|name| !known.contains(name) && !OTHER_VARIABLES.contains(&name.as_str()))
        .map(|name| {
            // A typo, or a name cut short or run on (HERALD_WEBSOCKET__HEARTBEAT).
            let nearest = known
                .iter()
                .map(|k| (strsim::levenshtein(&name, k), k))
                .filter(|(distance, k)| {
                    *distance <= 3.max(k.len() / 5) || k.starts_with(&name) || name.starts_with(k.as_str())
                })
                .min();
            match nearest {
                Some((_, k)) => format!("{name} is not a setting (did you mean {k}?)"),
                None => format!("{name} is not a setting"),
            }
        })
        .collect();
    unknown.sort();
    unknown
}

/// Checks each `HERALD_*` setting variable against its setting's kind, so every malformed
/// value is reported (deserializing stops at the first); the malformed ones are taken out.
fn take_malformed(kinds: &BTreeMap<String, Kind>, variables: &mut BTreeMap<String, String>) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, kind) in kinds {
        let variable = variable_of(key);
        let Some(raw) = variables.get(&variable) else {
            continue;
        };
        let problem = match kind {
            Kind::Bool => (!matches!(
                raw.trim().to_lowercase().as_str(),
                "1" | "true" | "on" | "yes" | "0" | "false" | "off" | "no"
            ))
            .then_some("must be true or false"),
            Kind::Whole => raw
                .trim()
                .parse::<u64>()
                .is_err()
                .then_some("must be a whole number ≥ 0"),
            Kind::Number => (!raw.trim().parse::<f64>().is_ok_and(f64::is_finite)).then_some("must be a number"),
            Kind::Text => None,
        };
        if let Some(problem) = problem {
            let shown = if key.contains("password") {
                "***".to_string()
            } else {
                redact(raw)
            };
            errors.push(format!("{variable}={shown}: {problem}"));
            variables.remove(&variable);
        }
    }
    errors
}

impl Settings {
    /// Reads and validates the layered configuration; the error lists every bad value.
    pub fn load() -> Result<Self, ConfigErrors> {
        let kinds = setting_kinds()?;
        let mut variables = herald_variables();
        let mut errors = take_malformed(&kinds, &mut variables);
        // `try_parsing` reads `007` as the number 7 and `1e3` as 1000: names and passwords are
        // taken exactly as written.
        let exact_username = variables.get("HERALD_ADMIN_USERNAME").cloned();
        let exact_password = variables.get("HERALD_ADMIN_PASSWORD").cloned();
        // The rest is still read and checked: every bad value is reported at once.
        let mut settings: Settings = file_sources()
            .add_source(
                config::Environment::with_prefix("HERALD")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("allowed_origins")
                    .with_list_parse_key("limits.trusted_proxies")
                    .try_parsing(true)
                    .source(Some(variables.into_iter().collect())),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| {
                errors.push(describe_config_error(e));
                ConfigErrors(errors.clone())
            })?;
        if exact_username.is_some() {
            settings.admin_username = exact_username;
        }
        if exact_password.is_some() {
            settings.admin_password = exact_password;
        }
        errors.extend(settings.problems());
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Every bad value, one line each.
    fn problems(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.bind.parse::<SocketAddr>().is_err() {
            errors.push(bad("bind", &self.bind, "must be an address like 127.0.0.1:8000"));
        }
        if !self.metrics_bind.is_empty() {
            match (self.metrics_bind.parse::<SocketAddr>(), self.bind.parse::<SocketAddr>()) {
                (Err(_), _) => errors.push(bad(
                    "metrics_bind",
                    &self.metrics_bind,
                    "must be an address like 127.0.0.1:9000, or empty",
                )),
                (Ok(metrics), Ok(public)) if metrics.port() != 0 && metrics.port() == public.port() => {
                    errors.push(bad(
                        "metrics_bind",
                        &self.metrics_bind,
                        "must not be the public port (HERALD_BIND)",
                    ))
                }
                _ => {}
            }
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            errors.push(bad("database_url", redact(&url), "must be sqlite:… or postgres://…"));
        } else if self.uses_sqlite() && (url.contains(":memory:") || url.contains("mode=memory")) {
            // Each pooled connection, and the notification writer's own, would open a database
            // of its own: migrations and writes would land where reads never look.
            errors.push(bad(
                "database_url",
                redact(&url),
                "must name an SQLite file, not an in-memory database",
            ));
        }
        let redis_ok = self.redis_url.is_empty()
            || self.redis_url.starts_with("redis://")
            || self.redis_url.starts_with("rediss://");
        if !redis_ok {
            errors.push(bad(
                "redis_url",
                redact(&self.redis_url),
                "must start with redis:// or rediss://, or be empty",
            ));
        }
        let prefix = &self.redis_channel_prefix;
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(bad("redis_channel_prefix", prefix, "must be non-empty, without spaces"));
        }
        for origin in &self.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                errors.push(bad(
                    "allowed_origins",
                    origin,
                    "each origin must look like https://host[:port]",
                ));
            }
        }
        match (&self.admin_username, &self.admin_password) {
            (Some(user), Some(password)) => {
                if let Err(e) = Username::parse(user) {
                    errors.push(bad("admin_username", user, e));
                }
                if let Err(e) = Password::parse(password) {
                    errors.push(bad("admin_password", "***", e));
                }
            }
            (Some(user), None) => errors.push(format!(
                "{} is unset: HERALD_ADMIN_USERNAME={user} needs it (set both, or neither)",
                variable_of("admin_password")
            )),
            // The password alone is `create-admin`'s input; `serve` refuses it (`admin_pair_problem`).
            (None, _) => {}
        }
        let ws = &self.websocket;
        let heartbeat_ok = duration_problem("websocket.heartbeat_interval_secs", ws.heartbeat_interval_secs)
            .map(|problem| errors.push(problem))
            .is_none();
        if let Some(problem) = duration_problem("websocket.client_timeout_secs", ws.client_timeout_secs) {
            errors.push(problem);
        } else if heartbeat_ok && ws.client_timeout_secs <= ws.heartbeat_interval_secs {
            errors.push(bad(
                "websocket.client_timeout_secs",
                ws.client_timeout_secs,
                format!(
                    "must exceed {}={}",
                    variable_of("websocket.heartbeat_interval_secs"),
                    ws.heartbeat_interval_secs
                ),
            ));
        }
        if ws.send_queue_len == 0 {
            errors.push(bad("websocket.send_queue_len", ws.send_queue_len, "must be > 0"));
        }
        if ws.worker_queue_len == 0 {
            errors.push(bad("websocket.worker_queue_len", ws.worker_queue_len, "must be > 0"));
        }
        if ws.max_frame_bytes < 128 {
            errors.push(bad("websocket.max_frame_bytes", ws.max_frame_bytes, "must be ≥ 128"));
        }
        if self.limits.body_bytes < 1024 {
            errors.push(bad("limits.body_bytes", self.limits.body_bytes, "must be ≥ 1024"));
        }
        if self.limits.db_pool_size == 0 {
            errors.push(bad("limits.db_pool_size", self.limits.db_pool_size, "must be > 0"));
        }
        if self.retention.read_after_days > MAX_RETENTION_DAYS {
            errors.push(bad(
                "retention.read_after_days",
                self.retention.read_after_days,
                format!("must be at most {MAX_RETENTION_DAYS}"),
            ));
        }
        for proxy in &self.limits.trusted_proxies {
            if proxy.parse::<std::net::IpAddr>().is_err() {
                errors.push(bad("limits.trusted_proxies", proxy, "must be IP addresses"));
            }
        }
        if self.limits.request_timeout_secs as f64 > MAX_TIMEOUT_SECS {
            errors.push(bad(
                "limits.request_timeout_secs",
                self.limits.request_timeout_secs,
                format!("must be at most {MAX_TIMEOUT_SECS}"),
            ));
        }
        if self.auth.token_lifetime_hours == 0 || self.auth.token_lifetime_hours > MAX_TOKEN_LIFETIME_HOURS {
            errors.push(bad(
                "auth.token_lifetime_hours",
                self.auth.token_lifetime_hours,
                format!("must be 1 to {MAX_TOKEN_LIFETIME_HOURS}"),
            ));
        }
        errors
    }

    /// For serving: a bootstrap admin password without its username.
    pub fn admin_pair_problem(&self) -> Option<String> {
        (self.admin_username.is_none() && self.admin_password.is_some()).then(|| {
            format!(
                "{} is unset: HERALD_ADMIN_PASSWORD needs it (set both, or neither)",
                variable_of("admin_username")
            )
        })
    }

    /// The effective settings as `HERALD_*=value` lines, secrets masked (`herald check-config`).
    pub fn masked(&self) -> Vec<String> {
        let mut shown = self.clone();
        shown.database_url = redact(&self.database_url());
        shown.redis_url = redact(&self.redis_url);
        shown.admin_password = self.admin_password.as_ref().map(|_| "***".into());
        let mut keys = BTreeMap::new();
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&shown) {
            flatten_json("", map, &mut keys);
        }
        keys.into_iter()
            .map(|(key, value)| format!("{}={value}", variable_of(&key)))
            .collect()
    }
    /// The metrics listener's address, if `/metrics` is served.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, String> {
        if self.metrics_bind.is_empty() {
            return Ok(None);
        }
        self.metrics_bind.parse().map(Some).map_err(|_| {
            bad(
                "metrics_bind",
                &self.metrics_bind,
                "must be an address like 127.0.0.1:9000",
            )
        })
    }

    /// The listen address.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        self.bind
            .parse()
            .map_err(|_| bad("bind", &self.bind, "must be an address like 127.0.0.1:8000"))
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

/// A URL with its password hidden (`postgres://user:***@host/db`), for messages and logs.
pub fn redact(url: &str) -> String {
    let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return url.to_string();
    };
    let userinfo_start = scheme + 3;
    if at < userinfo_start {
        return url.to_string();
    }
    match url[userinfo_start..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..userinfo_start], &url[at..]),
        None => url.to_string(),
    }
}

fn flatten_json(prefix: &str, map: serde_json::Map<String, serde_json::Value>, into: &mut BTreeMap<String, String>) {
    for (key, value) in map {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            serde_json::Value::Object(inner) => {
                flatten_json(&key, inner, into);
                continue;
            }
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s,
            // 15, not 15.0: as it would be written in the variable.
            serde_json::Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| n.to_string(), |f| f.to_string()),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        into.insert(key, text);
    }
}

/// A deserialization error named by its variable: `HERALD_LIMITS__DB_POOL_SIZE=99999999999: ...`.
fn describe_config_error(e: config::ConfigError) -> String {
    match &e {
        config::ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => {
            let variable = variable_of(key);
            let value = std::env::var(&variable).map_or_else(|_| unexpected.to_string(), |v| redact(&v));
            let value = if key.contains("password") {
                "***".to_string()
            } else {
                value
            };
            format!("{variable}={value}: expected {expected}")
        }
        config::ConfigError::Message(m) => format!("invalid configuration: {m}"),
        other => format!("invalid configuration: {other}"),
    }
}

/// Like the derived `Debug`, with the admin password and the URLs' passwords hidden.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so a new field cannot be left out (or shown unmasked) unnoticed.
        let Settings {
            bind,
            database_url,
            redis_url,
            redis_channel_prefix,
            allowed_origins,
            admin_username,
            admin_password,
            log_level,
            workers,
            metrics_bind,
            auth,
            limits,
            websocket,
            retention,
        } = self;
        f.debug_struct("Settings")
            .field("bind", bind)
            .field("database_url", &redact(database_url))
            .field("redis_url", &redact(redis_url))
            .field("redis_channel_prefix", redis_channel_prefix)
            .field("allowed_origins", allowed_origins)
            .field("admin_username", admin_username)
            .field("admin_password", &admin_password.as_ref().map(|_| "***"))
            .field("log_level", log_level)
            .field("workers", workers)
            .field("metrics_bind", metrics_bind)
            .field("auth", auth)
            .field("limits", limits)
            .field("websocket", websocket)
            .field("retention", retention)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_and_users_kept() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/herald"),
            "postgres://app:***@db:5432/herald"
        );
        assert_eq!(redact("redis://:s3cret@cache:6379"), "redis://:***@cache:6379");
        assert_eq!(redact("postgres://app@db/herald"), "postgres://app@db/herald");
        assert_eq!(
            redact("sqlite://herald.sqlite3?mode=rwc"),
            "sqlite://herald.sqlite3?mode=rwc"
        );
    }

    #[test]
    fn variables_are_named_after_their_keys() {
        assert_eq!(variable_of("bind"), "HERALD_BIND");
        assert_eq!(
            variable_of("websocket.heartbeat_interval_secs"),
            "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS"
        );
    }

    #[test]
    fn debug_and_masked_never_show_secrets() {
        let kinds = setting_kinds().expect("config/default.toml reads");
        assert_eq!(kinds.get("websocket.heartbeat_interval_secs"), Some(&Kind::Number));
        assert_eq!(kinds.get("limits.db_pool_size"), Some(&Kind::Whole));
        assert_eq!(kinds.get("admin_password"), Some(&Kind::Text));
        let mut settings: Settings = file_sources()
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("defaults deserialize");
        settings.admin_username = Some("root".into());
        settings.admin_password = Some("admin-secret-pw".into());
        settings.database_url = "postgres://app:db-secret-pw@db/herald".into();
        settings.redis_url = "redis://:redis-secret-pw@cache:6379".into();
        let debug = format!("{settings:?}");
        let masked = settings.masked().join("\n");
        for shown in [debug, masked] {
            assert!(!shown.contains("secret-pw"), "{shown}");
            assert!(shown.contains("root"), "{shown}");
        }
        assert!(settings.masked().contains(&"HERALD_ADMIN_PASSWORD=***".to_string()));
    }

    #[test]
    fn every_bad_value_is_named_with_its_variable() {
        let mut settings: Settings = file_sources()
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("defaults deserialize");
        assert!(settings.problems().is_empty(), "{:?}", settings.problems());
        settings.websocket.heartbeat_interval_secs = -1.0;
        settings.limits.db_pool_size = 0;
        settings.admin_username = Some("root".into());
        assert_eq!(
            settings.problems(),
            vec![
                "HERALD_ADMIN_PASSWORD is unset: HERALD_ADMIN_USERNAME=root needs it (set both, or neither)",
                "HERALD_WEBSOCKET__HEARTBEAT_INTERVAL_SECS=-1: must be > 0",
                "HERALD_LIMITS__DB_POOL_SIZE=0: must be > 0",
            ]
        );
    }
}
