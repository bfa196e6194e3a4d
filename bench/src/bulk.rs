//! The bulk phase: times one `POST /api/notifications/bulk/` to every account while a bounded
//! loop of other requests records their latencies.
//!
//! The accounts are expected to exist already (bench/bulk.sh inserts them with SQL: registering
//! 100,000 through the API would cost an Argon2 hash each). This phase registers and logs in one
//! probe user of its own, whose token the probe requests use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::Args;
use crate::api::{self, Api, snippet};
use crate::stats::{self, Dist};

/// Requests one probe connection sends at most, whatever the bulk request's length.
const PROBE_CAP: usize = 200_000;

/// The requests the probe loop cycles through, in order.
const PROBES: [Probe; 3] = [Probe::Announcements, Probe::Inbox, Probe::Me];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// `GET /api/global-notifications/`, anonymous.
    Announcements,
    /// `GET /api/notifications/?limit=50` as the probe user.
    Inbox,
    /// `GET /api/auth/me/` as the probe user: authenticated, no login.
    Me,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Probe::Announcements => "/api/global-notifications/",
            Probe::Inbox => "/api/notifications/",
            Probe::Me => "/api/auth/me/",
        }
    }

    fn query(self) -> Option<&'static str> {
        (self == Probe::Inbox).then_some("limit=50")
    }

    fn authenticated(self) -> bool {
        self != Probe::Announcements
    }
}

/// Latencies of the probe requests over one span, all kinds together and by kind.
#[derive(Debug, Default, Serialize)]
pub struct ProbeStats {
    pub all: Option<Dist>,
    pub announcements: Option<Dist>,
    pub inbox: Option<Dist>,
    pub me: Option<Dist>,
    /// Answers other than 200, and transport errors.
    pub failures: usize,
}

/// What the bulk phase measured.
#[derive(Debug, Serialize)]
pub struct BulkReport {
    pub label: Option<String>,
    /// `{"created":N}` of the answer.
    pub created: u64,
    /// Wall time of the bulk request, seconds.
    pub secs: f64,
    pub rows_per_sec: Option<f64>,
    /// Probe latencies while nothing else runs.
    pub idle: ProbeStats,
    /// Probe latencies while the bulk request runs.
    pub during: ProbeStats,
}

/// One probe sample: which request, how long in microseconds, whether it answered 200.
type Sample = (Probe, u64, bool);

fn summarize(samples: &[Sample]) -> ProbeStats {
    let of = |kind: Option<Probe>| {
        stats::dist(
            samples
                .iter()
                .filter(|(p, _, ok)| *ok && kind.is_none_or(|k| k == *p))
                .map(|&(_, us, _)| us)
                .collect(),
        )
    };
    ProbeStats {
        all: of(None),
        announcements: of(Some(Probe::Announcements)),
        inbox: of(Some(Probe::Inbox)),
        me: of(Some(Probe::Me)),
        failures: samples.iter().filter(|(_, _, ok)| !ok).count(),
    }
}

/// Runs `connections` probe loops until `stop` is set or `bound` has passed.
async fn probe(
    api: Arc<Api>,
    token: Arc<str>,
    connections: usize,
    stop: Arc<AtomicBool>,
    bound: Duration,
) -> Vec<Sample> {
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let (api, token, stop) = (api.clone(), token.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // A connection of its own per loop, so a slow answer holds up only its loop.
            let Ok(client) = api::http_client(1) else {
                return Vec::new();
            };
            let started = Instant::now();
            let mut samples = Vec::new();
            for i in 0..PROBE_CAP {
                if stop.load(Ordering::Relaxed) || started.elapsed() >= bound {
                    break;
                }
                let kind = PROBES[(i + c) % PROBES.len()];
                let mut url = api.url(kind.path());
                url.set_query(kind.query());
                let mut req = client.get(url);
                if kind.authenticated() {
                    req = req.bearer_auth(&*token);
                }
                let t = Instant::now();
                let ok = match req.send().await {
                    Ok(resp) => resp.status() == StatusCode::OK && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                samples.push((kind, t.elapsed().as_micros() as u64, ok));
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(samples) = t.await {
            all.extend(samples);
        }
    }
    all
}

/// Logs in the admin and a probe user, measures the idle probes, then the bulk request with
/// the probes running beside it.
pub async fn run(args: Args) -> anyhow::Result<BulkReport> {
    let api = Arc::new(Api::new(args.url())?);
    let admin = api
        .login(&args.admin_user, &args.admin_password)
        .await
        .context("admin login")?;
    // A name of its own per run, so a rerun against the same database still registers.
    let probe_user = format!("bulkprobe{}", std::process::id());
    api.register(&probe_user, "bulk-probe-pass-123").await?;
    let user = api.login(&probe_user, "bulk-probe-pass-123").await?;
    let token: Arc<str> = user.token.into();
    let connections = args.rest_connections.clamp(1, 64);

    let idle = probe(
        api.clone(),
        token.clone(),
        connections,
        Arc::new(AtomicBool::new(false)),
        Duration::from_secs_f64(args.rest_secs),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let bound = Duration::from_secs_f64(args.timeout);
    let probes = tokio::spawn(probe(api.clone(), token, connections, stop.clone(), bound));
    let mut body = json!({
        "title": "herald-bench bulk",
        "message": "herald-bench bulk notification",
        "notification_type": "system",
    });
    match &args.bulk_role {
        Some(role) => body["role"] = json!(role),
        None => body["all"] = json!(true),
    }
    let client = reqwest::Client::builder()
        .timeout(bound)
        .no_proxy()
        .build()
        .context("building the bulk client")?;
    let started = Instant::now();
    let resp = client
        .post(api.url("/api/notifications/bulk/"))
        .bearer_auth(&admin.token)
        .json(&body)
        .send()
        .await;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = probes.await.context("the probe loop")?;
    let resp = resp.context("POST /api/notifications/bulk/")?;
    let status = resp.status();
    let text = resp.bytes().await.context("the bulk answer")?;
    if status != StatusCode::CREATED {
        bail!("POST /api/notifications/bulk/: {status} {}", snippet(&text));
    }
    let created = serde_json::from_slice::<serde_json::Value>(&text)?
        .get("created")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("bulk answer without created: {}", snippet(&text)))?;
    Ok(BulkReport {
        label: args.label.clone(),
        created,
        secs: stats::round3(secs),
        rows_per_sec: stats::rate(created, secs),
        idle: summarize(&idle),
        during: summarize(&during),
    })
}

fn line(name: &str, s: &ProbeStats) -> String {
    match &s.all {
        Some(d) => format!(
            "{name}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
            d.n, d.p50_ms, d.p99_ms, d.max_ms, s.failures
        ),
        None => format!("{name}: no answered requests, {} failed", s.failures),
    }
}

/// The report as a few human lines.
pub fn text(r: &BulkReport) -> String {
    let mut out = format!(
        "bulk: {} rows in {:.3} s = {} rows/s\n",
        r.created,
        r.secs,
        r.rows_per_sec.map_or("-".to_owned(), |v| format!("{v:.0}"))
    );
    out.push_str(&line("other requests, idle", &r.idle));
    out.push('\n');
    out.push_str(&line("other requests, during the bulk", &r.during));
    out.push('\n');
    for (name, d) in [
        ("announcements", &r.during.announcements),
        ("inbox", &r.during.inbox),
        ("me", &r.during.me),
    ] {
        if let Some(d) = d {
            out.push_str(&format!(
                "  {name}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
                d.n, d.p50_ms, d.p99_ms, d.max_ms
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_apart_from_latencies() {
        let samples = vec![
            (Probe::Announcements, 1000, true),
            (Probe::Inbox, 3000, true),
            (Probe::Me, 2000, true),
            (Probe::Inbox, 900_000, false),
        ];
        let s = summarize(&samples);
        assert_eq!(s.failures, 1);
        let all = s.all.expect("answered requests");
        assert_eq!(all.n, 3);
        assert_eq!(all.max_ms, 3.0);
        assert_eq!(s.inbox.expect("inbox").n, 1);
        assert_eq!(s.me.expect("me").p50_ms, 2.0);
        assert!(summarize(&[]).all.is_none());
    }

    #[test]
    fn probes_cycle_through_the_three_requests() {
        assert_eq!(Probe::Inbox.query(), Some("limit=50"));
        assert_eq!(Probe::Me.query(), None);
        assert!(!Probe::Announcements.authenticated());
        assert!(PROBES.iter().filter(|p| p.authenticated()).count() == 2);
    }
}
