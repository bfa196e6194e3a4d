//! BENCHMARKS.md's lead table: issue 21's figures and targets from one sitting of
//! bench/lead-table.sh, medians over its runs, each Herald configuration against the floor and
//! node_ws of the same sitting.
//!
//! The directory holds `machine.json` (the machine that day), `run-N/<config>.json` (one
//! compare.sh sitting each; the inbox runs as `<config>-inbox.json`) and, when those scripts
//! ran too, `reconnect-N.json`, `bulk/<backend>-N.json` and `hundred-k.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The configurations of one sitting, as compare.sh names them, and how the table heads them.
const CONFIGS: [(&str, &str); 5] = [
    ("floor", "floor"),
    ("herald", "Herald (SQLite)"),
    ("herald_pg", "Herald (PostgreSQL + Redis)"),
    ("herald_2node", "Herald, 2 nodes (PostgreSQL + Redis)"),
    ("node_ws", "node_ws"),
];

/// One figure of a report: where it is and how it is printed.
struct Figure {
    key: &'static str,
    label: &'static str,
    digits: usize,
    /// Read from the main report, or from the inbox run's.
    inbox: bool,
    read: fn(&Value) -> Option<f64>,
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn f(v: &Value, path: &str) -> Option<f64> {
    at(v, path).and_then(Value::as_f64)
}

fn peruser(v: &Value, mode: &str, field: &str) -> Option<f64> {
    at(v, "peruser.runs")?
        .as_array()?
        .iter()
        .find(|r| r.get("mode").and_then(Value::as_str) == Some(mode))
        .and_then(|r| at(r, field))
        .and_then(Value::as_f64)
}

/// Lost, duplicated and misdelivered messages of every phase, and socket failures.
fn wrong(v: &Value) -> Option<f64> {
    let mut n = 0.0;
    for path in ["global.lost", "global.duplicated", "connect.failed"] {
        n += f(v, path).unwrap_or(0.0);
    }
    for run in at(v, "peruser.runs").and_then(Value::as_array).into_iter().flatten() {
        for k in ["lost", "duplicated", "misdelivered", "id_mismatch"] {
            n += f(run, k).unwrap_or(0.0);
        }
    }
    Some(n)
}

const FIGURES: [Figure; 14] = [
    Figure {
        key: "connect",
        label: "connect rate (handshakes/s)",
        digits: 0,
        inbox: false,
        read: |v| f(v, "connect.handshakes_per_s"),
    },
    Figure {
        key: "cpu_handshake",
        label: "server CPU ms per handshake",
        digits: 3,
        inbox: false,
        read: |v| f(v, "connect.server_cpu_ms_per_handshake"),
    },
    Figure {
        key: "kib",
        label: "server KiB per idle socket",
        digits: 2,
        inbox: false,
        read: |v| f(v, "connect.server_kib_per_socket"),
    },
    Figure {
        key: "p50",
        label: "global fan-out p50 ms",
        digits: 1,
        inbox: false,
        read: |v| f(v, "global.latency.p50_ms"),
    },
    Figure {
        key: "p99",
        label: "global fan-out p99 ms",
        digits: 1,
        inbox: false,
        read: |v| f(v, "global.latency.p99_ms"),
    },
    Figure {
        key: "deliveries",
        label: "global deliveries/s",
        digits: 0,
        inbox: false,
        read: |v| f(v, "global.deliveries_per_s"),
    },
    Figure {
        key: "cpu_delivery",
        label: "server CPU µs per global delivery",
        digits: 2,
        inbox: false,
        read: |v| f(v, "global.server_cpu_us_per_delivery"),
    },
    Figure {
        key: "rate_p99",
        label: "per-user at a fixed rate: create→arrival p99 ms",
        digits: 2,
        inbox: false,
        read: |v| peruser(v, "rate", "latency.p99_ms"),
    },
    Figure {
        key: "flat",
        label: "per-user flat out: creates/s",
        digits: 0,
        inbox: false,
        read: |v| peruser(v, "flat", "creates_per_s"),
    },
    Figure {
        key: "flat_deliveries",
        label: "per-user flat out: deliveries/s",
        digits: 0,
        inbox: false,
        read: |v| peruser(v, "flat", "deliveries_per_s"),
    },
    Figure {
        key: "list_small",
        label: "GET ?limit=50 req/s, user with 50",
        digits: 0,
        inbox: true,
        read: |v| f(v, "inbox.small.requests_per_s"),
    },
    Figure {
        key: "list_large",
        label: "GET ?limit=50 req/s, user with the large inbox",
        digits: 0,
        inbox: true,
        read: |v| f(v, "inbox.large.requests_per_s"),
    },
    Figure {
        key: "inbox_size",
        label: "  the large inbox: notifications",
        digits: 0,
        inbox: true,
        read: |v| f(v, "inbox.size"),
    },
    Figure {
        key: "wrong",
        label: "lost + duplicated + misdelivered + failed connects",
        digits: 0,
        inbox: false,
        read: wrong,
    },
];

/// The median of the values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// A figure over the runs of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    pub values: Vec<f64>,
}

impl Spread {
    pub fn median(&self) -> Option<f64> {
        median(&self.values)
    }

    fn cell(&self, digits: usize) -> String {
        let Some(m) = self.median() else {
            return "—".to_owned();
        };
        let lo = self.values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if self.values.len() > 1 {
            format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
        } else {
            format!("{m:.digits$}")
        }
    }
}

/// How a target compares a value with its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    AtMost,
    AtLeast,
}

/// Whether `value` meets `bound` `limit`; `None` when it is unknown.
pub fn meets(value: Option<f64>, bound: Bound, limit: f64) -> Option<bool> {
    let v = value?;
    Some(match bound {
        Bound::AtMost => v <= limit,
        Bound::AtLeast => v >= limit,
    })
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    }
}

/// One row of the targets table: `config`'s figure `key` against `reference`'s (or, with no
/// reference, against the bound itself).
struct Target {
    what: &'static str,
    key: &'static str,
    config: &'static str,
    /// Divide by this configuration's figure (`Some("self:<key>")`: by another figure of the same one).
    reference: Option<&'static str>,
    bound: Bound,
    limit: f64,
}

const TARGETS: [Target; 17] = [
    Target {
        what: "server CPU per global delivery ≤ 1.10× the floor",
        key: "cpu_delivery",
        config: "herald",
        reference: Some("floor"),
        bound: Bound::AtMost,
        limit: 1.10,
    },
    Target {
        what: "server CPU per global delivery ≤ 1.10× the floor",
        key: "cpu_delivery",
        config: "herald_pg",
        reference: Some("floor"),
        bound: Bound::AtMost,
        limit: 1.10,
    },
    Target {
        what: "global deliveries/s ≥ 0.95× the floor",
        key: "deliveries",
        config: "herald",
        reference: Some("floor"),
        bound: Bound::AtLeast,
        limit: 0.95,
    },
    Target {
        what: "global deliveries/s ≥ 0.95× the floor",
        key: "deliveries",
        config: "herald_pg",
        reference: Some("floor"),
        bound: Bound::AtLeast,
        limit: 0.95,
    },
    Target {
        what: "global fan-out p99 ≤ 1.10× the floor",
        key: "p99",
        config: "herald",
        reference: Some("floor"),
        bound: Bound::AtMost,
        limit: 1.10,
    },
    Target {
        what: "global fan-out p99 ≤ 1.10× the floor",
        key: "p99",
        config: "herald_pg",
        reference: Some("floor"),
        bound: Bound::AtMost,
        limit: 1.10,
    },
    Target {
        what: "connect rate ≥ 0.85× the floor",
        key: "connect",
        config: "herald",
        reference: Some("floor"),
        bound: Bound::AtLeast,
        limit: 0.85,
    },
    Target {
        what: "connect rate ≥ 0.85× the floor",
        key: "connect",
        config: "herald_pg",
        reference: Some("floor"),
        bound: Bound::AtLeast,
        limit: 0.85,
    },
    Target {
        what: "server CPU per handshake ≤ 1.8× the floor's",
        key: "cpu_handshake",
        config: "herald",
        reference: Some("floor"),
        bound: Bound::AtMost,
        limit: 1.8,
    },
    Target {
        what: "server CPU per handshake ≤ 1.8× the floor's",
        key: "cpu_handshake",
        config: "herald_pg",
        reference: Some("floor"),
        bound: Bound::AtMost,
        limit: 1.8,
    },
    Target {
        what: "server memory per idle socket ≤ 2.5 KiB",
        key: "kib",
        config: "herald",
        reference: None,
        bound: Bound::AtMost,
        limit: 2.5,
    },
    Target {
        what: "server memory per idle socket ≤ 2.5 KiB",
        key: "kib",
        config: "herald_pg",
        reference: None,
        bound: Bound::AtMost,
        limit: 2.5,
    },
    Target {
        what: "per-user flat out, PostgreSQL, one node ≥ 0.8× SQLite",
        key: "flat",
        config: "herald_pg",
        reference: Some("herald"),
        bound: Bound::AtLeast,
        limit: 0.8,
    },
    Target {
        what: "two nodes: global deliveries/s ≥ 0.9× one node's",
        key: "deliveries",
        config: "herald_2node",
        reference: Some("herald_pg"),
        bound: Bound::AtLeast,
        limit: 0.9,
    },
    Target {
        what: "two nodes: summed CPU per delivery ≤ 1.15× one node's",
        key: "cpu_delivery",
        config: "herald_2node",
        reference: Some("herald_pg"),
        bound: Bound::AtMost,
        limit: 1.15,
    },
    Target {
        what: "list page of 50, large inbox ≥ 0.5× the req/s of a user with 50",
        key: "list_large",
        config: "herald",
        reference: Some("self:list_small"),
        bound: Bound::AtLeast,
        limit: 0.5,
    },
    Target {
        what: "list page of 50, large inbox ≥ 0.5× the req/s of a user with 50",
        key: "list_large",
        config: "herald_pg",
        reference: Some("self:list_small"),
        bound: Bound::AtLeast,
        limit: 0.5,
    },
];

fn read_json(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Files named `<prefix><n>.json` in `dir`, in n's order.
fn numbered(dir: &Path, prefix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    for e in entries {
        let path = e?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let n = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(".json").or(Some(r)).filter(|r| !r.is_empty()))
            .and_then(|r| r.parse::<u32>().ok());
        if let Some(n) = n {
            found.push((n, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Every figure of every configuration over the sitting's runs.
type Figures = BTreeMap<(&'static str, &'static str), Spread>;

fn collect(dir: &Path) -> anyhow::Result<(Figures, usize)> {
    let runs: Vec<PathBuf> = numbered(dir, "run-")?.into_iter().filter(|p| p.is_dir()).collect();
    if runs.is_empty() {
        bail!(
            "{}: no run-N directories (bench/lead-table.sh writes them)",
            dir.display()
        );
    }
    let mut figures = Figures::new();
    for run in &runs {
        for (config, _) in CONFIGS {
            let main = read_json(&run.join(format!("{config}.json")))?;
            let inbox = read_json(&run.join(format!("{config}-inbox.json")))?;
            for fig in &FIGURES {
                let source = if fig.inbox { &inbox } else { &main };
                if let Some(x) = source.as_ref().and_then(fig.read) {
                    figures.entry((config, fig.key)).or_default().values.push(x);
                }
            }
        }
    }
    Ok((figures, runs.len()))
}

fn fig_median(figures: &Figures, config: &str, key: &str) -> Option<f64> {
    figures
        .iter()
        .find(|((c, k), _)| *c == config && *k == key)
        .and_then(|(_, s)| s.median())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".to_owned(), |v| format!("{v:.digits$}"))
}

fn label_of(config: &str) -> &str {
    CONFIGS.iter().find(|(c, _)| *c == config).map_or(config, |(_, l)| l)
}

/// The machine section from `machine.json`.
fn machine(dir: &Path, out: &mut String) -> anyhow::Result<()> {
    let Some(m) = read_json(&dir.join("machine.json"))? else {
        return Ok(());
    };
    let s = |k: &str| match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "?".to_owned(),
    };
    let _ = writeln!(
        out,
        "Machine: {} cores ({}), {} GiB; commit {}; {} to {} UTC; load average (1 min) {} at the start, {} at the end; \
         CPU probe (SHA-256 of 256 MiB on one core): {} MB/s. Runs: {}; sizes: {}.\n",
        s("nproc"),
        s("cpu"),
        s("mem_gib"),
        s("commit"),
        s("started"),
        s("ended"),
        s("loadavg_start"),
        s("loadavg_end"),
        s("probe_mb_s"),
        s("runs"),
        s("sizes"),
    );
    Ok(())
}

/// The other scripts' figures, when they ran in the same sitting.
fn extras(dir: &Path, out: &mut String) -> anyhow::Result<()> {
    let mut rows: Vec<String> = Vec::new();
    let reconnect: Vec<Value> = numbered(dir, "reconnect-")?
        .iter()
        .filter_map(|p| read_json(p).ok().flatten())
        .collect();
    if !reconnect.is_empty() {
        let total: Vec<f64> = reconnect.iter().filter_map(|v| f(v, "total_secs")).collect();
        let bad: f64 = reconnect
            .iter()
            .map(|v| {
                ["tally.lost", "tally.duplicated", "tally.stray", "gave_up"]
                    .iter()
                    .filter_map(|k| f(v, k))
                    .sum::<f64>()
            })
            .sum();
        let t = median(&total);
        rows.push(format!(
            "| reconnect storm: all caught up within 3 s of `/healthz`, every missed one once | Herald (SQLite) | {} s caught up; {bad} lost/duplicated/stray/gave up ({} runs) | 3 s | {} |",
            cell(t, 2),
            reconnect.len(),
            verdict(meets(t, Bound::AtMost, 3.0).map(|m| m && bad == 0.0))
        ));
    }
    for (backend, name) in [("sqlite", "SQLite"), ("postgres", "PostgreSQL")] {
        let runs: Vec<Value> = numbered(&dir.join("bulk"), &format!("{backend}-"))?
            .iter()
            .filter_map(|p| read_json(p).ok().flatten())
            .collect();
        if runs.is_empty() {
            continue;
        }
        let rows_s = median(&runs.iter().filter_map(|v| f(v, "rows_per_sec")).collect::<Vec<_>>());
        let p99 = median(
            &runs
                .iter()
                .filter_map(|v| f(v, "during.all.p99_ms"))
                .collect::<Vec<_>>(),
        );
        let met = meets(rows_s, Bound::AtLeast, 50_000.0).zip(meets(p99, Bound::AtMost, 50.0));
        rows.push(format!(
            "| bulk create to 100,000 users ≥ 50,000 rows/s, other requests' p99 ≤ 50 ms | Herald ({name}) | {} rows/s, p99 {} ms ({} runs) | 50,000 / 50 ms | {} |",
            cell(rows_s, 0),
            cell(p99, 1),
            runs.len(),
            verdict(met.map(|(a, b)| a && b))
        ));
    }
    if let Some(v) = read_json(&dir.join("hundred-k.json"))? {
        let rounds = at(&v, "global.rounds").and_then(Value::as_array).map_or(0, Vec::len);
        let complete = f(&v, "global.complete_rounds").unwrap_or(0.0) as usize;
        let connected = f(&v, "connect.connected");
        let requested = f(&v, "connect.requested");
        let nodes = at(&v, "nodes").and_then(Value::as_array).map_or(0, Vec::len);
        let procs = at(&v, "listeners").and_then(Value::as_array).map_or(0, Vec::len);
        let all = rounds > 0 && complete == rounds && connected.is_some() && connected == requested;
        rows.push(format!(
            "| 100,000 sockets: every global round reaches all once | {nodes} nodes, {procs} tool processes | {}/{} sockets; {complete}/{rounds} rounds complete; p99 {} ms; {} deliveries/s; {} KiB per socket (one run) | all rounds complete | {} |",
            cell(connected, 0),
            cell(requested, 0),
            cell(f(&v, "global.latency.p99_ms"), 1),
            cell(f(&v, "global.deliveries_per_s"), 0),
            cell(f(&v, "connect.server_kib_per_socket"), 2),
            verdict(Some(all))
        ));
    }
    if !rows.is_empty() {
        let _ = writeln!(out, "\nFrom the other scripts of the same sitting:\n");
        let _ = writeln!(out, "| target (issue 21) | configuration | figure | target | |");
        let _ = writeln!(out, "| --- | --- | --- | ---: | --- |");
        for r in rows {
            let _ = writeln!(out, "{r}");
        }
    }
    Ok(())
}

/// The whole lead table for the sitting in `dir`.
pub fn table(dir: &Path) -> anyhow::Result<String> {
    let (figures, runs) = collect(dir)?;
    let mut out = String::new();
    machine(dir, &mut out)?;
    let present: Vec<(&str, &str)> = CONFIGS
        .iter()
        .copied()
        .filter(|(c, _)| figures.keys().any(|(fc, _)| fc == c))
        .collect();
    let _ = writeln!(
        out,
        "Medians of {runs} run(s), the range in brackets; every configuration in each run, one after another.\n"
    );
    let heads: Vec<&str> = present.iter().map(|(_, l)| *l).collect();
    let _ = writeln!(out, "| figure | {} |", heads.join(" | "));
    let _ = writeln!(out, "| --- |{}", " ---: |".repeat(heads.len()));
    for fig in &FIGURES {
        let cells: Vec<String> = present
            .iter()
            .map(|(c, _)| {
                figures
                    .iter()
                    .find(|((fc, k), _)| fc == c && *k == fig.key)
                    .map_or("—".to_owned(), |(_, s)| s.cell(fig.digits))
            })
            .collect();
        if cells.iter().all(|c| c == "—") {
            continue;
        }
        let _ = writeln!(out, "| {} | {} |", fig.label, cells.join(" | "));
    }
    let _ = writeln!(
        out,
        "\nTargets (issue 21): the ratio is of the medians above; ÷ node_ws sets the same figure of node_ws beside it.\n"
    );
    let _ = writeln!(
        out,
        "| target | configuration | value | reference | ratio | ÷ node_ws | verdict |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | --- |");
    for t in &TARGETS {
        let value = fig_median(&figures, t.config, t.key);
        let (reference, ref_name) = match t.reference {
            Some(r) => match r.strip_prefix("self:") {
                Some(key) => (fig_median(&figures, t.config, key), "user with 50".to_owned()),
                None => (fig_median(&figures, r, t.key), label_of(r).to_owned()),
            },
            None => (None, "—".to_owned()),
        };
        let measured = if t.reference.is_some() {
            ratio(value, reference)
        } else {
            value
        };
        let vs_node = if t.reference.is_some_and(|r| r.starts_with("self:")) {
            None
        } else {
            ratio(value, fig_median(&figures, "node_ws", t.key))
        };
        let digits = FIGURES.iter().find(|f| f.key == t.key).map_or(2, |f| f.digits);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.what,
            label_of(t.config),
            cell(value, digits),
            if t.reference.is_some() {
                format!("{} ({ref_name})", cell(reference, digits))
            } else {
                "—".to_owned()
            },
            if t.reference.is_some() {
                measured.map_or("—".to_owned(), |r| format!("{r:.2}×"))
            } else {
                "—".to_owned()
            },
            vs_node.map_or("—".to_owned(), |r| format!("{r:.2}×")),
            verdict(meets(measured, t.bound, t.limit)),
        );
    }
    extras(dir, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn medians_and_bounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(meets(Some(1.1), Bound::AtMost, 1.1), Some(true));
        assert_eq!(meets(Some(1.11), Bound::AtMost, 1.1), Some(false));
        assert_eq!(meets(Some(0.94), Bound::AtLeast, 0.95), Some(false));
        assert_eq!(meets(None, Bound::AtLeast, 0.95), None);
    }

    fn report(connect: f64, deliveries: f64, cpu: f64, p99: f64, kib: f64) -> Value {
        json!({
            "connect": {"handshakes_per_s": connect, "server_cpu_ms_per_handshake": 0.05,
                        "server_kib_per_socket": kib, "failed": 0},
            "global": {"latency": {"p50_ms": p99 / 2.0, "p99_ms": p99}, "deliveries_per_s": deliveries,
                       "server_cpu_us_per_delivery": cpu, "lost": 0, "duplicated": 0},
            "peruser": {"runs": [{"mode": "flat", "creates_per_s": 1000.0, "deliveries_per_s": 5000.0,
                                  "lost": 0, "duplicated": 0, "misdelivered": 1, "id_mismatch": 0}]},
        })
    }

    #[test]
    fn the_table_takes_medians_and_judges_each_target() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("herald-bench-lead-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (n, herald_deliveries) in [(1, 90_000.0), (2, 99_000.0), (3, 97_000.0)] {
            let run = dir.join(format!("run-{n}"));
            std::fs::create_dir_all(&run)?;
            let write = |name: &str, v: Value| std::fs::write(run.join(name), v.to_string());
            write("floor.json", report(10_000.0, 100_000.0, 10.0, 100.0, 0.03))?;
            write("herald.json", report(9_000.0, herald_deliveries, 12.0, 105.0, 2.4))?;
            write("node_ws.json", report(4_000.0, 50_000.0, 20.0, 200.0, 7.0))?;
            write(
                "herald-inbox.json",
                json!({"inbox": {"size": 100000, "small": {"requests_per_s": 1000.0},
                                 "large": {"requests_per_s": 400.0}}}),
            )?;
        }
        let table = table(&dir)?;
        std::fs::remove_dir_all(&dir)?;
        // Medians with their range; a configuration that did not run has no column.
        assert!(
            table.contains("| global deliveries/s | 100000 (100000–100000) | 97000 (90000–99000) | 50000"),
            "{table}"
        );
        assert!(
            table.contains("| figure | floor | Herald (SQLite) | node_ws |\n"),
            "{table}"
        );
        let row = |what: &str, config: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("| {what}")) && l.contains(&format!("| {config} |")))
                .unwrap_or_default()
                .to_owned()
        };
        // 97,000 against the floor's 100,000: 0.97× ≥ 0.95, met; 1.94× node_ws.
        let d = row("global deliveries/s", "Herald (SQLite)");
        assert!(
            d.contains("0.97×") && d.contains("1.94×") && d.ends_with("| met |"),
            "{d}"
        );
        // 12 µs against 10: 1.20× > 1.10, missed.
        let c = row("server CPU per global delivery", "Herald (SQLite)");
        assert!(c.contains("1.20×") && c.contains("**missed**"), "{c}");
        assert!(row("server memory per idle socket", "Herald (SQLite)").ends_with("| met |"));
        // 400 req/s against the same configuration's 1000: 0.40×, missed.
        let l = row("list page of 50", "Herald (SQLite)");
        assert!(l.contains("0.40×") && l.contains("**missed**"), "{l}");
        // Nothing measured: no verdict.
        assert!(row("two nodes: global deliveries/s", "Herald, 2 nodes (PostgreSQL + Redis)").ends_with("| n/a |"));
        assert!(
            table.contains("| lost + duplicated + misdelivered + failed connects | 1 (1–1) | 1 (1–1) | 1 (1–1) |"),
            "{table}"
        );
        Ok(())
    }

    #[test]
    fn the_other_scripts_rows_judge_their_own_targets() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("herald-bench-lead-extras-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run-1"))?;
        std::fs::create_dir_all(dir.join("bulk"))?;
        std::fs::write(
            dir.join("run-1/floor.json"),
            report(1.0, 1.0, 1.0, 1.0, 1.0).to_string(),
        )?;
        let clean = json!({"tally": {"lost": 0, "duplicated": 0, "stray": 0}, "gave_up": 0});
        for (n, secs) in [(1, 2.0), (2, 5.0), (3, 2.5)] {
            let mut v = clean.clone();
            v["total_secs"] = json!(secs);
            std::fs::write(dir.join(format!("reconnect-{n}.json")), v.to_string())?;
        }
        let bulk = json!({"rows_per_sec": 60000.0, "during": {"all": {"p99_ms": 70.0}}});
        std::fs::write(dir.join("bulk/sqlite-1.json"), bulk.to_string())?;
        let hundred_k = json!({"connect": {"connected": 100000, "requested": 100000, "server_kib_per_socket": 3.2},
            "global": {"rounds": [{}, {}], "complete_rounds": 1, "latency": {"p99_ms": 900.0}, "deliveries_per_s": 1.0},
            "nodes": [{}, {}, {}, {}, {}, {}], "listeners": [{}, {}, {}, {}, {}, {}]});
        std::fs::write(dir.join("hundred-k.json"), hundred_k.to_string())?;
        let table = table(&dir)?;
        std::fs::remove_dir_all(&dir)?;
        let row = |what: &str| {
            table
                .lines()
                .find(|l| l.starts_with(what))
                .unwrap_or_default()
                .to_owned()
        };
        // The median of 2, 5 and 2.5 s is within 3 s, and nothing was lost.
        let r = row("| reconnect storm");
        assert!(r.contains("2.50 s") && r.ends_with("| met |"), "{r}");
        // 60,000 rows/s is enough, but a p99 of 70 ms is not.
        let b = row("| bulk create");
        assert!(b.contains("Herald (SQLite)") && b.ends_with("| **missed** |"), "{b}");
        // One of two rounds incomplete: missed, whatever the sockets.
        let h = row("| 100,000 sockets");
        assert!(
            h.contains("6 nodes, 6 tool processes") && h.contains("1/2 rounds") && h.ends_with("| **missed** |"),
            "{h}"
        );
        Ok(())
    }
}
