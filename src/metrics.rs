//! Prometheus metrics: the series of `API.md` "Operations", counted where things happen and
//! served as text on a listener of their own (`metrics_bind`), never on the public port.
//!
//! Each `Application` owns its [`Metrics`] (a registry of its own, not the process-global one),
//! so several servers in one process (the tests) never see each other's counts. The README's
//! "Metrics" section describes every series for dashboards.
use std::{net::TcpListener, sync::Arc, time::Instant};

use actix_http::{HttpService, KeepAlive};
use actix_server::ServerBuilder;
use actix_service::{IntoServiceFactory, map_config};
use actix_web::{
    App, Error, HttpResponse,
    body::MessageBody,
    dev::{AppConfig, ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use sea_orm::{DatabaseBackend, DatabaseConnection};

use crate::layer::LayerStatus;

/// Route label of requests no route matched (unknown paths, redirects to the slashed path):
/// raw paths would make a series per path a client invents.
const UNMATCHED_ROUTE: &str = "unmatched";

/// The counters and gauges of one server.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket sessions (joined to the hub).
    pub websocket_connections: IntGauge,
    /// Pushes by their `type`, once per push whatever the number of sockets.
    pushes: IntCounterVec,
    /// Sockets a push was handed to (a push to 3 sockets counts 3).
    push_deliveries: IntCounter,
    /// Sockets closed for not reading their pushes (send queue full, 1008).
    pub websocket_slow_closed: IntCounter,
    /// Handshakes answered with an error, by reason.
    handshakes_refused: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    db_pool_connections: IntGauge,
    db_pool_idle: IntGauge,
    /// 1 while the Redis link is up; only registered when Redis is configured.
    redis_connected: Option<IntGauge>,
}

impl Metrics {
    /// A fresh registry with every series; `with_redis` adds the Redis link gauge.
    pub fn new(with_redis: bool) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let websocket_connections = IntGauge::new("herald_websocket_connections", "Open WebSocket connections")?;
        let pushes = IntCounterVec::new(
            Opts::new("herald_pushes_total", "Pushes sent to this node's sockets, by type"),
            &["type"],
        )?;
        let push_deliveries = IntCounter::new(
            "herald_push_deliveries_total",
            "Pushes handed to a socket (one per socket a push was for)",
        )?;
        let websocket_slow_closed = IntCounter::new(
            "herald_websocket_slow_closed_total",
            "WebSocket connections closed as too slow (their send queue was full)",
        )?;
        let handshakes_refused = IntCounterVec::new(
            Opts::new(
                "herald_websocket_handshakes_refused_total",
                "WebSocket handshakes refused, by reason",
            ),
            &["reason"],
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "herald_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "herald_http_request_duration_seconds",
                "Time to answer an HTTP request, by method and route",
            ),
            &["method", "route"],
        )?;
        let db_pool_connections = IntGauge::new(
            "herald_db_pool_connections",
            "Database connections open in the pool (idle or in use)",
        )?;
        let db_pool_idle = IntGauge::new(
            "herald_db_pool_idle_connections",
            "Idle database connections in the pool",
        )?;
        registry.register(Box::new(websocket_connections.clone()))?;
        registry.register(Box::new(pushes.clone()))?;
        registry.register(Box::new(push_deliveries.clone()))?;
        registry.register(Box::new(websocket_slow_closed.clone()))?;
        registry.register(Box::new(handshakes_refused.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(db_pool_connections.clone()))?;
        registry.register(Box::new(db_pool_idle.clone()))?;
        let redis_connected = if with_redis {
            let gauge = IntGauge::new("herald_redis_connected", "1 while the link to Redis is up, else 0")?;
            registry.register(Box::new(gauge.clone()))?;
            Some(gauge)
        } else {
            None
        };
        Ok(Self {
            registry,
            websocket_connections,
            pushes,
            push_deliveries,
            websocket_slow_closed,
            handshakes_refused,
            http_requests,
            http_duration,
            db_pool_connections,
            db_pool_idle,
            redis_connected,
        })
    }

    /// Counts one push, labelled with the `type` its JSON starts with (every push is written
    /// `{"type":"...",...}`), so new push types need no code here; `sockets` it goes to.
    pub fn count_push(&self, text: &str, sockets: usize) {
        let kind = text
            .strip_prefix(r#"{"type":""#)
            .and_then(|rest| rest.split_once('"'))
            .map_or("other", |(kind, _)| kind);
        self.pushes.with_label_values(&[kind]).inc();
        self.push_deliveries.inc_by(sockets as u64);
    }

    /// Counts a refused handshake by its status: the reason a dashboard groups by.
    pub fn count_refused_handshake(&self, status: u16) {
        let reason = match status {
            400 => "bad_handshake",
            401 => "unauthorized",
            403 => "origin_not_allowed",
            404 => "not_found",
            405 => "method_not_allowed",
            429 => "too_many",
            500..=599 => "server_error",
            _ => "other",
        };
        self.handshakes_refused.with_label_values(&[reason]).inc();
    }

    /// Counts one answered HTTP request (`route` is the pattern, e.g. `/api/notifications/{id}/mark-read/`).
    pub fn count_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let status = status.to_string();
        self.http_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.http_duration.with_label_values(&[method, route]).observe(seconds);
    }

    /// The text exposition, after reading the gauges that are sampled rather than counted.
    pub fn render(&self, db: &DatabaseConnection, layer: &LayerStatus) -> String {
        let (size, idle) = pool_usage(db);
        self.db_pool_connections.set(i64::from(size));
        self.db_pool_idle.set(idle as i64);
        if let Some(gauge) = &self.redis_connected {
            gauge.set(i64::from(layer.is_ready()));
        }
        let mut text = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            log::error!("cannot encode the metrics: {e}");
        }
        text
    }
}

/// Standard methods by name; anything else one label, so clients cannot invent series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Connections in the pool and how many are idle.
fn pool_usage(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}

/// Middleware of the public App: counts each request by its route pattern and status, and its time.
pub async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    // The App holds this server's `Metrics` as app data of its own (`startup`).
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().clone();
    let res = next.call(req).await;
    if let Some(metrics) = metrics {
        let seconds = started.elapsed().as_secs_f64();
        let (route, status) = match &res {
            Ok(res) => (res.request().match_pattern(), res.status().as_u16()),
            Err(e) => (None, e.as_response_error().status_code().as_u16()),
        };
        let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
        metrics.count_request(&method, route, status, seconds);
    }
    res
}

/// What the metrics listener needs to answer.
struct Scrape {
    metrics: Arc<Metrics>,
    db: DatabaseConnection,
    layer: LayerStatus,
}

async fn scrape(scrape: web::Data<Scrape>) -> HttpResponse {
    let text = scrape.metrics.render(&scrape.db, &scrape.layer);
    HttpResponse::Ok().content_type(prometheus::TEXT_FORMAT).body(text)
}

/// Adds the metrics listener to the server: `GET /metrics` and nothing else (404).
pub fn listen(
    builder: ServerBuilder,
    listener: TcpListener,
    metrics: Arc<Metrics>,
    db: DatabaseConnection,
    layer: LayerStatus,
) -> std::io::Result<ServerBuilder> {
    let state = web::Data::new(Scrape { metrics, db, layer });
    builder.listen("herald-metrics", listener, move || {
        let app = App::new()
            .app_data(state.clone())
            .service(web::resource("/metrics").route(web::get().to(scrape)))
            .default_service(web::to(crate::error::not_found));
        HttpService::build()
            .keep_alive(KeepAlive::default())
            .finish(map_config(app.into_factory(), |_| AppConfig::default()))
            .tcp()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_counted_by_the_type_they_start_with() {
        let metrics = Metrics::new(false).expect("valid metrics");
        metrics.count_push(r#"{"type":"notification","notification":{}}"#, 3);
        metrics.count_push(r#"{"type":"notification","notification":{}}"#, 1);
        metrics.count_push(r#"{"type":"some_new_type"}"#, 2);
        metrics.count_push("not json", 1);
        assert_eq!(metrics.pushes.with_label_values(&["notification"]).get(), 2);
        assert_eq!(metrics.pushes.with_label_values(&["some_new_type"]).get(), 1);
        assert_eq!(metrics.pushes.with_label_values(&["other"]).get(), 1);
        assert_eq!(metrics.push_deliveries.get(), 7);
    }

    #[test]
    fn two_servers_do_not_share_counts() {
        let a = Metrics::new(false).expect("valid metrics");
        let b = Metrics::new(false).expect("valid metrics");
        a.websocket_slow_closed.inc();
        assert_eq!(b.websocket_slow_closed.get(), 0);
    }
}
