//! herald-bench: load benchmark for Herald and its peers.
//!
//! It speaks only the public contract (shared/API.md): register/login, the Bearer
//! WebSocket at /ws/notifications/, the admin create endpoints and the two list
//! endpoints. So the same binary runs unchanged against Herald, the Django seed and
//! the Node peer. It only ever targets loopback addresses, and every loop in it is
//! bounded in count and in time.

mod api;
mod bulk;
mod floor;
mod lead;
mod listen;
mod procfs;
mod reconnect;
mod report;
mod run;
mod sockets;
mod stats;

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory as _, FromArgMatches as _, Parser};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "herald-bench",
    args_override_self = true,
    about = "Load benchmark for Herald (and its peers): sockets, fan-out, per-user pushes, REST",
    after_help = "Only loopback targets are accepted. --smoke: ~300 sockets over 20 users, \
                  exits non-zero on any lost, duplicated or misdelivered message or failed connect."
)]
pub struct Args {
    /// Base URL of the server under test (loopback only). Several nodes of one deployment:
    /// repeat it or give a comma-separated list; the sockets go round-robin over them, and
    /// registrations, logins, creates and REST go to the first.
    #[arg(long = "url", alias = "urls", value_delimiter = ',', action = ArgAction::Append,
          default_value = "http://127.0.0.1:8000")]
    pub urls: Vec<String>,
    #[arg(long, default_value = "admin")]
    pub admin_user: String,
    #[arg(long, default_value = "admin-pass-123")]
    pub admin_password: String,
    /// Users to register and log in (jobseekers).
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// WebSockets to open, spread round-robin over the users.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// PID of the server process, for RSS and CPU figures from /proc. Several nodes: one per
    /// --url, in the same order (repeated or comma-separated); figures are summed over them
    /// and also given per node.
    #[arg(long = "pid", value_delimiter = ',', action = ArgAction::Append)]
    pub pids: Vec<u32>,
    /// Child processes that hold the sockets (0: this process holds them). One process may
    /// hold only so many files, so 100,000 sockets need several: each listener registers its
    /// own share of --users, opens its even share of --sockets (over every --url) and records
    /// each global it gets; this process creates the globals and merges what they saw.
    /// Phases connect and global only.
    #[arg(long, default_value_t = 0)]
    pub listeners: usize,
    /// Be listener number K of a driver (the driver starts its listeners so).
    #[arg(long, hide = true)]
    pub listen: Option<usize>,
    /// Listener: the driver's run id (its globals' titles start with it).
    #[arg(long, hide = true)]
    pub run_id: Option<String>,
    /// Listener: index of its first socket among all the driver's.
    #[arg(long, hide = true, default_value_t = 0)]
    pub socket_base: usize,
    /// Global fan-out rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Per-user creates per second in the fixed-rate run.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Duration of the fixed-rate run, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub rate_secs: f64,
    /// Creates in the flat-out run.
    #[arg(long, default_value_t = 2000)]
    pub flat_count: usize,
    /// Concurrent creators in the flat-out run.
    #[arg(long, default_value_t = 32)]
    pub flat_concurrency: usize,
    /// Sockets (whole users' worth) that the per-user runs target.
    #[arg(long, default_value_t = 2000)]
    pub peruser_sockets: usize,
    /// Duration of each REST throughput run, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub rest_secs: f64,
    /// Keep-alive connections of each REST throughput run.
    #[arg(long, default_value_t = 32)]
    pub rest_connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Registrations / logins in flight at once.
    #[arg(long, default_value_t = 8)]
    pub auth_concurrency: usize,
    /// Source addresses 127.0.0.2.. to spread sockets over (IPv4 loopback targets only).
    #[arg(long, default_value_t = 16)]
    pub source_addrs: usize,
    /// Bound on each wait (one global round, one per-user run's deliveries), seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Bound on the connect phase and on the register/login phase, seconds each.
    #[arg(long, default_value_t = 300.0)]
    pub setup_timeout: f64,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Inbox phase: notifications given to the large-inbox user (raise the server's retention
    /// cap above it, e.g. HERALD_RETENTION__MAX_PER_USER=0).
    #[arg(long, default_value_t = 100_000)]
    pub inbox_size: usize,
    /// Phases to run (comma-separated subset of connect,global,peruser,rest,inbox; inbox: the
    /// list page of 50 for a user with --inbox-size notifications against one with 50; or floor alone:
    /// connect and global against this tool's own ideal server, which needs no --url; reconnect
    /// alone: restart the server under --server-bin and time the catch-up; or bulk alone: one
    /// POST /api/notifications/bulk/ to every account, timed, while --rest-connections loops of
    /// other requests record their latencies (--rest-secs of them first with nothing else
    /// running); the request and the loops are bounded by --timeout).
    #[arg(long, default_value = "connect,global,peruser,rest")]
    pub phases: String,
    /// Reconnect phase: the herald binary this tool starts, SIGKILLs and restarts (its other
    /// settings, database included, come from the environment).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Reconnect phase: the server's log (appended; default a file in the temp directory).
    #[arg(long)]
    pub server_log: Option<PathBuf>,
    /// Reconnect phase: notifications created (spread over the users) while the server is down.
    #[arg(long, default_value_t = 2000)]
    pub missed: usize,
    /// Reconnect phase: loopback port of the second process that creates them meanwhile.
    #[arg(long, default_value_t = 18999)]
    pub creator_port: u16,
    /// Sending threads of the floor's ideal server (as many as the server under test has workers).
    #[arg(long, default_value_t = 2)]
    pub floor_threads: usize,
    /// Be the floor's ideal server (the floor phase starts this tool so, as a child).
    #[arg(long, hide = true)]
    pub floor_server: bool,
    /// CI mode: small, quick, fails on any correctness problem.
    #[arg(long)]
    pub smoke: bool,
    /// Bulk phase: send to this role ("jobseeker" or "employer") instead of `"all": true`.
    #[arg(long)]
    pub bulk_role: Option<String>,
    /// Name of this run in reports.
    #[arg(long)]
    pub label: Option<String>,
    /// Tokio worker threads: 1 runs everything on one current-thread runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print a markdown table combining these JSON reports, and exit.
    #[arg(long, num_args = 1.., value_name = "JSON")]
    pub combine: Vec<PathBuf>,
    /// Print BENCHMARKS.md's lead table from the reports bench/lead-table.sh wrote into DIR
    /// (medians over its runs, ratios, targets), and exit.
    #[arg(long, value_name = "DIR")]
    pub lead_table: Option<PathBuf>,
}

/// Phases that run with others, in the order they run.
const PHASES: [&str; 5] = ["connect", "global", "peruser", "rest", "inbox"];
/// Phases that run alone.
const ALONE: [&str; 3] = ["floor", "reconnect", "bulk"];

impl Args {
    /// Smoke mode shrinks every size that was not given explicitly.
    fn apply_smoke(&mut self, matches: &clap::ArgMatches) {
        let defaulted = |id: &str| matches.value_source(id) != Some(ValueSource::CommandLine);
        if defaulted("sockets") {
            self.sockets = 300;
        }
        if defaulted("users") {
            self.users = 20;
        }
        if defaulted("rounds") {
            self.rounds = 3;
        }
        if defaulted("rate") {
            self.rate = 100.0;
        }
        if defaulted("rate_secs") {
            self.rate_secs = 1.0;
        }
        if defaulted("flat_count") {
            self.flat_count = 200;
        }
        if defaulted("flat_concurrency") {
            self.flat_concurrency = 8;
        }
        if defaulted("peruser_sockets") {
            self.peruser_sockets = 300;
        }
        if defaulted("rest_secs") {
            self.rest_secs = 1.0;
        }
        if defaulted("rest_connections") {
            self.rest_connections = 8;
        }
        if defaulted("timeout") {
            self.timeout = 15.0;
        }
        if defaulted("setup_timeout") {
            self.setup_timeout = 120.0;
        }
    }

    pub fn has_phase(&self, name: &str) -> bool {
        self.phases.split(',').any(|p| p.trim() == name)
    }

    /// The first node's URL: the one registrations, logins, creates and REST go to.
    pub fn url(&self) -> &str {
        self.urls.first().map_or("http://127.0.0.1:8000", String::as_str)
    }

    fn validate(&self) -> anyhow::Result<()> {
        for p in self.phases.split(',') {
            if !PHASES.contains(&p.trim()) && !ALONE.contains(&p.trim()) {
                bail!(
                    "unknown phase {p:?} (connect, global, peruser, rest, inbox; or floor, reconnect or bulk, alone)"
                );
            }
        }
        if self.urls.is_empty() || self.urls.len() > 64 {
            bail!("give 1 to 64 --url values");
        }
        let distinct: std::collections::BTreeSet<&String> = self.urls.iter().collect();
        if distinct.len() != self.urls.len() {
            bail!("a --url is given twice: each node once");
        }
        if !self.pids.is_empty() && self.pids.len() != self.urls.len() {
            bail!(
                "{} --pid values for {} --url values: give one per node, in the same order",
                self.pids.len(),
                self.urls.len()
            );
        }
        if self.urls.len() > 1
            && let Some(p) = ALONE.iter().find(|p| self.has_phase(p))
        {
            bail!("the {p} phase takes one --url");
        }
        if self.listeners > 0 {
            if self.listeners > 64 {
                bail!("--listeners is at most 64");
            }
            if !self.has_phase("connect")
                || self
                    .phases
                    .split(',')
                    .any(|p| !["connect", "global"].contains(&p.trim()))
            {
                bail!("with --listeners the phases are connect or connect,global (the listeners hold the sockets)");
            }
            if self.users < self.listeners || self.sockets < self.listeners {
                bail!(
                    "--listeners {0} needs at least {0} users and {0} sockets",
                    self.listeners
                );
            }
        }
        if self.has_phase("inbox") && !(1..=1_000_000).contains(&self.inbox_size) {
            bail!("--inbox-size must be in 1..=1000000");
        }
        if self.has_phase("floor") && self.phases.split(',').count() > 1 {
            bail!("the floor phase runs alone: it opens its own sockets to its own server");
        }
        if self.has_phase("reconnect") {
            if self.phases.split(',').count() > 1 {
                bail!("the reconnect phase runs alone: it kills and restarts its own server");
            }
            if self.server_bin.is_none() {
                bail!("--phases reconnect needs --server-bin (this tool starts and kills the server)");
            }
            if self.missed > 1_000_000 {
                bail!("--missed is at most 1e6");
            }
        }
        if self.has_phase("bulk") && self.phases.split(',').count() > 1 {
            bail!("the bulk phase runs alone: other phases' load would blur its figures");
        }
        if self.bulk_role.is_some() && !self.has_phase("bulk") {
            bail!("--bulk-role is for the bulk phase");
        }
        if !(1..=64).contains(&self.floor_threads) {
            bail!("--floor-threads must be in 1..=64");
        }
        if self.users == 0 {
            bail!("--users must be at least 1");
        }
        if !(self.rate > 0.0 && self.rate <= 100_000.0) {
            bail!("--rate must be in (0, 100000]");
        }
        if !(self.rate_secs > 0.0 && self.rate_secs <= 600.0) {
            bail!("--rate-secs must be in (0, 600]");
        }
        if !(self.rest_secs > 0.0 && self.rest_secs <= 600.0) {
            bail!("--rest-secs must be in (0, 600]");
        }
        if !(self.timeout > 0.0 && self.timeout <= 600.0) {
            bail!("--timeout must be in (0, 600]");
        }
        if !(self.setup_timeout > 0.0 && self.setup_timeout <= 3600.0) {
            bail!("--setup-timeout must be in (0, 3600]");
        }
        if self.sockets > 1_000_000 || self.users > 100_000 || self.flat_count > 1_000_000 {
            bail!("sizes are capped: sockets ≤ 1e6, users ≤ 1e5, flat-count ≤ 1e6");
        }
        if self.source_addrs > 250 {
            bail!("--source-addrs is at most 250");
        }
        Ok(())
    }
}

/// Raises RLIMIT_NOFILE to its hard limit; returns the soft limit now in force.
fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: could not raise RLIMIT_NOFILE: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<std::process::ExitCode> {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    if args.floor_server {
        raise_nofile();
        floor::serve(args.floor_threads)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if !args.combine.is_empty() {
        print!("{}", report::combine(&args.combine)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Some(dir) = &args.lead_table {
        print!("{}", lead::table(dir)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if args.smoke {
        args.apply_smoke(&matches);
    }
    args.validate()?;
    let nofile = raise_nofile();
    // Each socket is one fd; keep headroom for HTTP connections, the runtime and stdio.
    let headroom = 64 + args.rest_connections as u64 + args.flat_concurrency as u64 + 256;
    // With listeners each child holds its share (and checks it again itself).
    let held = if args.listeners > 0 {
        args.sockets.div_ceil(args.listeners)
    } else {
        args.sockets
    };
    if !args.has_phase("bulk") && held as u64 + headroom > nofile {
        bail!(
            "{held} sockets in one process need about {} file descriptors; RLIMIT_NOFILE is {nofile} \
             (raise `ulimit -n`, ask for fewer sockets or more --listeners)",
            held as u64 + headroom
        );
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.min(8))
            .enable_all()
            .build()
    }
    .context("starting the tokio runtime")?;
    if args.has_phase("reconnect") {
        let report = runtime.block_on(reconnect::run(&args))?;
        drop(runtime);
        if !report.ok {
            eprintln!("herald-bench reconnect: FAILED: {}", report.problems.join("; "));
            return Ok(std::process::ExitCode::FAILURE);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if args.has_phase("bulk") {
        let json = args.json.clone();
        let report = runtime.block_on(bulk::run(args))?;
        print!("{}", bulk::text(&report));
        if let Some(path) = json {
            std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if args.listen.is_some() {
        runtime.block_on(listen::serve(args))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let smoke = args.smoke;
    let report = runtime.block_on(run::run(args))?;
    // Dropping the runtime drops the remaining socket tasks.
    drop(runtime);
    if smoke && !report.ok {
        eprintln!("herald-bench --smoke: FAILED");
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(args: &[&str]) -> anyhow::Result<()> {
        let args = Args::try_parse_from(std::iter::once("herald-bench").chain(args.iter().copied()))?;
        args.validate()
    }

    #[test]
    fn the_floor_runs_alone() {
        assert!(validated(&["--phases", "floor"]).is_ok());
        let err = validated(&["--phases", "floor,global"]).expect_err("floor with another phase");
        assert!(err.to_string().contains("runs alone"), "{err}");
        assert!(validated(&["--phases", "floor", "--floor-threads", "0"]).is_err());
        assert!(validated(&["--phases", "connect,global,peruser,rest"]).is_ok());
        assert!(validated(&["--phases", "bogus"]).is_err());
        assert!(validated(&["--phases", "reconnect", "--server-bin", "herald"]).is_ok());
        assert!(validated(&["--phases", "reconnect"]).is_err());
        assert!(validated(&["--phases", "reconnect,global", "--server-bin", "herald"]).is_err());
    }

    fn parsed(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("herald-bench").chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn several_nodes_by_repeating_or_listing() {
        let a = "http://127.0.0.1:18300";
        let b = "http://127.0.0.1:18301";
        for args in [
            vec!["--url", a, "--url", b, "--pid", "7", "--pid", "8"],
            vec!["--url", &format!("{a},{b}"), "--pid", "7,8"],
            vec!["--urls", &format!("{a},{b}"), "--pid", "7,8"],
        ] {
            let p = parsed(&args);
            assert_eq!(p.urls, [a, b], "{args:?}");
            assert_eq!(p.pids, [7, 8], "{args:?}");
            assert_eq!(p.url(), a);
            assert!(p.validate().is_ok());
        }
        assert_eq!(parsed(&[]).urls, ["http://127.0.0.1:8000"]);
        // Options given twice still take the last (compare.sh appends --phases after extras).
        assert_eq!(parsed(&["--phases", "rest", "--phases", "floor"]).phases, "floor");
        let err = validated(&["--url", &format!("{a},{b}"), "--pid", "7"]).expect_err("one pid for two nodes");
        assert!(err.to_string().contains("one per node"), "{err}");
        assert!(validated(&["--url", &format!("{a},{a}")]).is_err());
        assert!(validated(&["--url", &format!("{a},{b}"), "--phases", "bulk"]).is_err());
    }

    #[test]
    fn listeners_hold_sockets_for_connect_and_global_only() {
        assert!(
            validated(&[
                "--listeners",
                "6",
                "--sockets",
                "100000",
                "--users",
                "1000",
                "--phases",
                "connect,global"
            ])
            .is_ok()
        );
        assert!(validated(&["--listeners", "2", "--phases", "connect"]).is_ok());
        assert!(
            validated(&["--listeners", "2"]).is_err(),
            "the default phases include per-user and REST"
        );
        assert!(
            validated(&["--listeners", "2", "--phases", "global"]).is_err(),
            "global needs connect"
        );
        assert!(validated(&["--listeners", "3", "--users", "2", "--phases", "connect"]).is_err());
        assert!(validated(&["--listeners", "65", "--phases", "connect"]).is_err());
    }

    #[test]
    fn the_inbox_phase_runs_with_others() {
        assert!(validated(&["--phases", "connect,rest,inbox"]).is_ok());
        assert!(validated(&["--phases", "inbox", "--inbox-size", "0"]).is_err());
        assert!(validated(&["--phases", "inbox", "--inbox-size", "1000001"]).is_err());
    }

    #[test]
    fn the_bulk_phase_runs_alone() {
        assert!(validated(&["--phases", "bulk"]).is_ok());
        assert!(validated(&["--phases", "bulk", "--bulk-role", "employer"]).is_ok());
        let err = validated(&["--phases", "bulk,rest"]).expect_err("bulk with another phase");
        assert!(err.to_string().contains("runs alone"), "{err}");
        assert!(validated(&["--phases", "rest", "--bulk-role", "employer"]).is_err());
    }
}
