//! Several tool processes: listener children hold shares of the sockets, and this process (the
//! driver) creates each global round and merges what they received.
//!
//! One process may hold only 20,000 files here, so 100,000 sockets need several. The driver
//! starts `--listeners` copies of this binary (`--listen K`). Each registers and logs in its
//! share of the users, opens its share of the sockets when told (round-robin over every node,
//! continuing the driver's socket numbering), and records every global of the driver's run it
//! reads, with the time it read it. Times cross processes as microseconds since the Unix epoch:
//! one machine, one clock.
//!
//! The protocol is a line each way. Listener → driver on its stdout: `authed <users>`,
//! `ready <connected>`, `done <round>` (every one of its sockets has that round), and
//! `report <json>`. Driver → listener on its stdin: `connect`, `report`. A listener exits when
//! its stdin closes; its progress goes to the shared stderr.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Args;
use crate::procfs::{self, CpuMeter};
use crate::report::{Global, GlobalRound, ListenerShare};
use crate::run::{BETWEEN_ROUNDS, Bench, ConnectMeasured, GRACE, secs};
use crate::sockets::{Event, Phase};
use crate::stats::{dist, rate, round3};

/// Bound on collecting the listeners' reports once the rounds are over.
const REPORT_BOUND: Duration = Duration::from_secs(60);
/// Bound on a listener's exit after its stdin closed.
const EXIT_BOUND: Duration = Duration::from_secs(10);

/// Converts this process's `Instant`s to microseconds since the Unix epoch, from one reading
/// of both clocks: the readers timestamp frames with the cheap monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix_us: u64,
}

impl Clock {
    pub fn now() -> Self {
        let unix_us = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Self {
            instant: Instant::now(),
            unix_us,
        }
    }

    pub fn unix_us(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.instant).as_micros() as u64;
        let before = self.instant.saturating_duration_since(at).as_micros() as u64;
        (self.unix_us + since).saturating_sub(before)
    }
}

/// What one listener saw of one global round.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListenerRound {
    /// Its open sockets: each should get the round once.
    pub expected: usize,
    /// Sockets that got it (at least once).
    pub delivered: usize,
    /// Copies beyond the first.
    pub duplicated: usize,
    /// Sockets that never got it.
    pub lost: usize,
    /// When each socket read its first copy, µs since the Unix epoch.
    pub arrivals_unix_us: Vec<u64>,
}

/// A listener's whole report, sent to the driver as one JSON line.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ListenerReport {
    pub index: usize,
    pub pid: u32,
    pub users: usize,
    pub requested: usize,
    pub attempted: usize,
    pub connected: usize,
    pub failures: BTreeMap<String, u64>,
    pub handshake_micros: Vec<u64>,
    /// Its own resident memory once its sockets were open, KiB (what the tool needs per socket).
    pub rss_kib: Option<u64>,
    /// Its open sockets per node, in --url's order.
    pub per_node: Vec<usize>,
    pub rounds: Vec<ListenerRound>,
    /// Globals of the run with a round number past the last.
    pub late: usize,
    pub sockets_closed: BTreeMap<String, u64>,
    pub other_frames: u64,
    pub bad_frames: u64,
}

/// Counts each round's copies per socket among `events`: `sockets` are the ones that were open.
pub fn tally_rounds(rounds: usize, sockets: &[u32], events: &[Event], clock: &Clock) -> (Vec<ListenerRound>, usize) {
    let mut per_round: Vec<HashMap<u32, (usize, Instant)>> = vec![HashMap::new(); rounds];
    let mut late = 0;
    for e in events.iter().filter(|e| e.global && e.phase == Phase::Global) {
        let Some(seen) = per_round.get_mut(e.seq as usize) else {
            late += 1;
            continue;
        };
        let entry = seen.entry(e.sock).or_insert((0, e.at));
        entry.0 += 1;
        entry.1 = entry.1.min(e.at);
    }
    let out = per_round
        .into_iter()
        .map(|seen| {
            let mut arrivals: Vec<u64> = seen.values().map(|&(_, at)| clock.unix_us(at)).collect();
            arrivals.sort_unstable();
            ListenerRound {
                expected: sockets.len(),
                delivered: seen.len(),
                duplicated: seen.values().map(|&(n, _)| n - 1).sum(),
                lost: sockets.iter().filter(|s| !seen.contains_key(s)).count(),
                arrivals_unix_us: arrivals,
            }
        })
        .collect();
    (out, late)
}

/// One round over every listener: counts summed, latencies from `sent_unix_us` (the moment
/// before the driver's POST) to each arrival. Returns the round, its latencies (µs) and its
/// span (POST → last arrival, s).
pub fn merge_round(round: usize, sent_unix_us: u64, parts: &[&ListenerRound]) -> (GlobalRound, Vec<u64>, Option<f64>) {
    let mut r = GlobalRound {
        round,
        ..GlobalRound::default()
    };
    let mut lat = Vec::new();
    for p in parts {
        r.expected += p.expected;
        r.delivered += p.delivered;
        r.duplicated += p.duplicated;
        r.lost += p.lost;
        lat.extend(p.arrivals_unix_us.iter().map(|&a| a.saturating_sub(sent_unix_us)));
    }
    let span = lat.iter().max().map(|&us| us as f64 / 1e6);
    if let Some(span) = span {
        r.fanout_ms = Some(round3(span * 1000.0));
        r.deliveries_per_s = rate(r.delivered as u64, span);
    }
    r.latency = dist(lat.clone());
    (r, lat, span)
}

/// `total` split into `parts` shares as even as can be, the larger first.
pub fn shares(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

/// Writes one protocol line to the driver.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush().context("writing to the driver")
}

/// Lines from our stdin, read on a thread of their own (the channel closes with stdin).
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
    });
    rx
}

/// `herald-bench --listen K`: one listener's life (see the module's text).
pub async fn serve(args: Args) -> anyhow::Result<()> {
    let index = args.listen.unwrap_or(0);
    let run = args.run_id.clone().ok_or_else(|| anyhow!("--listen needs --run-id"))?;
    let clock = Clock::now();
    let rounds = args.rounds;
    let setup = secs(args.setup_timeout);
    let per_round = secs(args.timeout) + GRACE + BETWEEN_ROUNDS;
    let mut commands = stdin_lines();
    let mut bench = Bench::new(args, run, false).await?;
    bench.auth().await?;
    say(&format!("authed {}", bench.users.len()))?;
    match tokio::time::timeout(setup, commands.recv()).await {
        Ok(Some(line)) if line == "connect" => {}
        Ok(Some(other)) => bail!("listener {index}: expected connect, got {other:?}"),
        Ok(None) => return Ok(()),
        Err(_) => bail!("listener {index}: no connect within {setup:?}"),
    }
    bench.connect().await;
    let open: Vec<u32> = bench.sockets.keys().copied().collect();
    let rss_kib = procfs::rss_kib(std::process::id());
    say(&format!("ready {}", open.len()))?;
    // Tell the driver as each round reaches every socket still open (one that closed cannot
    // get it, and counts as lost in the report); stop when it asks for the report, or when
    // its rounds cannot still be running.
    let bound = Instant::now() + per_round * rounds as u32 + Duration::from_secs(60);
    let mut done = vec![false; rounds];
    let asked = loop {
        let still_open = open.len().saturating_sub(bench.shared.closed_count()) as u64;
        for (k, d) in done.iter_mut().enumerate() {
            if !*d && still_open > 0 && bench.shared.round_count(k) >= still_open {
                *d = true;
                say(&format!("done {k}"))?;
            }
        }
        if Instant::now() >= bound {
            break false;
        }
        match tokio::time::timeout(Duration::from_millis(2), commands.recv()).await {
            Ok(Some(line)) if line == "report" => break true,
            Ok(Some(other)) => bail!("listener {index}: unknown command {other:?}"),
            Ok(None) => return Ok(()),
            Err(_) => {}
        }
    };
    if !asked {
        eprintln!("listener {index}: the driver's rounds ran past {bound:?}; reporting");
    }
    let events = bench.shared.take_events();
    let (round_tallies, late) = tally_rounds(rounds, &open, &events, &clock);
    let connect = bench.report.connect.take().unwrap_or_default();
    let report = ListenerReport {
        index,
        pid: std::process::id(),
        users: bench.users.len(),
        requested: connect.requested,
        attempted: connect.attempted,
        connected: connect.connected,
        failures: connect.failures,
        handshake_micros: std::mem::take(&mut bench.handshake_micros),
        rss_kib,
        per_node: bench.report.nodes.iter().map(|n| n.sockets).collect(),
        rounds: round_tallies,
        late,
        sockets_closed: bench.closed_by_reason(),
        other_frames: bench.shared.other_frames.load(std::sync::atomic::Ordering::Relaxed),
        bad_frames: bench.shared.bad_frames.load(std::sync::atomic::Ordering::Relaxed),
    };
    say(&format!("report {}", serde_json::to_string(&report)?))?;
    // The sockets stay open until the driver has every report and closes our stdin.
    let _ = tokio::time::timeout(EXIT_BOUND + REPORT_BOUND, async {
        while commands.recv().await.is_some() {}
    })
    .await;
    Ok(())
}

/// One listener child as the driver sees it.
struct Listener {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// The driver's listeners and the lines they send, in arrival order.
struct Fleet {
    listeners: Vec<Listener>,
    lines: mpsc::UnboundedReceiver<(usize, Option<String>)>,
}

impl Fleet {
    /// Starts one listener per share; listener `k` holds sockets `base_k..base_k + sockets[k]`.
    fn spawn(args: &Args, run: &str, users: &[usize], sockets: &[usize]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this tool's binary")?;
        let (tx, lines) = mpsc::unbounded_channel();
        let mut listeners = Vec::new();
        let mut base = 0;
        // The handshakes in flight are the option's, over all the listeners together.
        let concurrency = args.connect_concurrency.div_ceil(sockets.len()).max(1);
        for (k, (&u, &s)) in users.iter().zip(sockets).enumerate() {
            // Every size is given, so a listener never falls back on a default of its own.
            let mut cmd = Command::new(&exe);
            cmd.arg("--listen")
                .arg(k.to_string())
                .arg("--run-id")
                .arg(run)
                .arg("--url")
                .arg(args.urls.join(","))
                .args(["--phases", "connect,global"])
                .args(["--users", &u.to_string(), "--sockets", &s.to_string()])
                .args(["--socket-base", &base.to_string()])
                .args(["--rounds", &args.rounds.to_string()])
                .args(["--timeout", &args.timeout.to_string()])
                .args(["--setup-timeout", &args.setup_timeout.to_string()])
                .args(["--connect-concurrency", &concurrency.to_string()])
                .args(["--auth-concurrency", &args.auth_concurrency.to_string()])
                .args(["--source-addrs", &args.source_addrs.to_string()])
                .args(["--threads", &args.threads.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            let mut child = cmd.spawn().with_context(|| format!("starting listener {k}"))?;
            let stdout = child.stdout.take().ok_or_else(|| anyhow!("listener {k}: no stdout"))?;
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((k, Some(line))).is_err() {
                        return;
                    }
                }
                let _ = tx.send((k, None));
            });
            listeners.push(Listener {
                stdin: child.stdin.take(),
                child,
            });
            base += s;
        }
        Ok(Self { listeners, lines })
    }

    fn pids(&self) -> Vec<u32> {
        self.listeners.iter().map(|l| l.child.id()).collect()
    }

    fn tell(&mut self, k: usize, line: &str) -> anyhow::Result<()> {
        let stdin = self.listeners[k]
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("listener {k}: stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush().with_context(|| format!("listener {k}: writing {line:?}"))
    }

    fn tell_all(&mut self, line: &str) -> anyhow::Result<()> {
        (0..self.listeners.len()).try_for_each(|k| self.tell(k, line))
    }

    /// Waits until every listener has sent a line `<word> <rest>`; answers each one's rest.
    /// Lines of other words (a late `done`) are skipped; a listener that exits is an error.
    async fn wait_all(&mut self, word: &str, deadline: Instant) -> anyhow::Result<Vec<String>> {
        let mut got: Vec<Option<String>> = vec![None; self.listeners.len()];
        while got.iter().any(Option::is_none) {
            let next = tokio::time::timeout_at(deadline.into(), self.lines.recv())
                .await
                .map_err(|_| anyhow!("listeners did not all say {word:?} in time"))?;
            match next {
                Some((k, Some(line))) => {
                    if let Some(rest) = line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
                        got[k] = Some(rest.to_owned());
                    }
                }
                Some((k, None)) => bail!("listener {k} exited before saying {word:?} (its log is above)"),
                None => bail!("every listener has gone"),
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Waits until every listener said `done <round>`, or `deadline`; whether all did.
    async fn wait_round(&mut self, round: usize, deadline: Instant) -> bool {
        let want = format!("done {round}");
        let mut done = vec![false; self.listeners.len()];
        while done.contains(&false) {
            match tokio::time::timeout_at(deadline.into(), self.lines.recv()).await {
                Ok(Some((k, Some(line)))) if line == want => done[k] = true,
                Ok(Some((_, Some(_)))) => {}
                // A listener that has gone cannot finish the round; the report shows the loss.
                Ok(Some((_, None))) | Ok(None) | Err(_) => return false,
            }
        }
        true
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Closing their stdin ends the listeners; kill whichever has not gone in time.
        for l in &mut self.listeners {
            l.stdin = None;
        }
        let deadline = Instant::now() + EXIT_BOUND;
        for l in &mut self.listeners {
            while Instant::now() < deadline && matches!(l.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(l.child.try_wait(), Ok(None)) {
                let _ = l.child.kill();
            }
            let _ = l.child.wait();
        }
    }
}

/// One global round as the driver sent it.
struct Posted {
    /// Just before the POST, µs since the Unix epoch.
    unix_us: u64,
    post_ms: f64,
    error: Option<String>,
    /// The POST succeeded but not every listener had the round within --timeout.
    timed_out: bool,
}

/// The driver's side of `--listeners N`: the connect phase through the listeners, then the
/// global rounds (its own POSTs), then their reports merged into `bench.report`.
pub async fn drive(bench: &mut Bench) -> anyhow::Result<()> {
    let n = bench.args.listeners;
    let users = shares(bench.args.users, n);
    let sockets = shares(bench.args.sockets, n);
    let clock = Clock::now();
    let setup = secs(bench.args.setup_timeout);
    let pids = bench.args.pids.clone();
    eprintln!("listeners: {n} processes, sockets {sockets:?}, users {users:?}");
    let mut fleet = Fleet::spawn(&bench.args, &bench.run, &users, &sockets)?;
    fleet.wait_all("authed", Instant::now() + setup).await?;

    // Connect: every listener at once; the servers' memory and CPU around it.
    let (rss_before, rss_before_each) = procfs::rss_sum_kib(&pids);
    let tool = fleet.pids();
    let meter = CpuMeter::start_with_tool(&pids, &tool);
    let t0 = Instant::now();
    fleet.tell_all("connect")?;
    let ready = fleet.wait_all("ready", Instant::now() + setup).await?;
    let connect_secs = t0.elapsed().as_secs_f64();
    let connect_cpu = meter.read();
    let connected: usize = ready.iter().filter_map(|r| r.parse::<usize>().ok()).sum();
    eprintln!("listeners: {connected} sockets open in {connect_secs:.2}s");
    tokio::time::sleep(Duration::from_millis(if bench.args.smoke { 300 } else { 1000 })).await;
    let (rss_after, rss_after_each) = procfs::rss_sum_kib(&pids);

    // Global rounds: this process POSTs, the listeners say when every socket has it.
    let mut sent: Vec<Posted> = Vec::new();
    let global_meter = CpuMeter::start_with_tool(&pids, &tool);
    let split0 = procfs::cpu_split_sum(&pids);
    if bench.args.has_phase("global") {
        for round in 0..bench.args.rounds {
            let title = bench.shared.title(Phase::Global, round);
            let timeout = secs(bench.args.timeout);
            let t_send = Instant::now();
            let posted = match tokio::time::timeout(timeout, bench.api.create_global(&bench.admin, &title)).await {
                Ok(Ok(_id)) => None,
                Ok(Err(e)) => Some(format!("{e:#}")),
                Err(_) => Some("POST timed out".to_owned()),
            };
            let post_ms = round3(t_send.elapsed().as_secs_f64() * 1000.0);
            // Even when the POST failed the row may exist and be pushed: look, briefly.
            let wait = if posted.is_none() {
                timeout
            } else {
                timeout.min(Duration::from_secs(2))
            };
            let reached = fleet.wait_round(round, t_send + wait).await;
            let timed_out = posted.is_none() && !reached;
            eprintln!(
                "  round {round} posted: {} after {:.1} ms",
                if reached {
                    "every listener has it"
                } else {
                    "not every listener has it"
                },
                t_send.elapsed().as_secs_f64() * 1000.0
            );
            sent.push(Posted {
                unix_us: clock.unix_us(t_send),
                post_ms,
                error: posted,
                timed_out,
            });
            tokio::time::sleep(GRACE).await;
            tokio::time::sleep(BETWEEN_ROUNDS).await;
        }
    }
    let global_cpu = global_meter.read();
    let split = procfs::cpu_split_sum(&pids).zip(split0);

    fleet.tell_all("report")?;
    let texts = fleet.wait_all("report", Instant::now() + REPORT_BOUND).await?;
    let mut reports = texts
        .iter()
        .map(|t| serde_json::from_str::<ListenerReport>(t).context("a listener's report"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    reports.sort_by_key(|r| r.index);
    drop(fleet);

    // Connect figures over every listener.
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut handshakes = Vec::new();
    let mut per_node = vec![0usize; bench.nodes.len()];
    for r in &mut reports {
        for (k, v) in std::mem::take(&mut r.failures) {
            *failures.entry(k).or_default() += v;
        }
        handshakes.append(&mut r.handshake_micros);
        for (t, c) in per_node.iter_mut().zip(&r.per_node) {
            *t += c;
        }
        for (k, v) in std::mem::take(&mut r.sockets_closed) {
            *bench.report.sockets_closed.entry(k).or_default() += v;
        }
        bench.report.other_frames += r.other_frames;
        bench.report.bad_frames += r.bad_frames;
    }
    bench.report.listeners = reports
        .iter()
        .map(|r| ListenerShare {
            index: r.index,
            pid: r.pid,
            users: r.users,
            sockets_requested: r.requested,
            sockets_connected: r.connected,
            rss_kib: r.rss_kib,
        })
        .collect();
    bench.record_connect(
        ConnectMeasured {
            attempted: reports.iter().map(|r| r.attempted).sum(),
            requested: bench.args.sockets,
            connected,
            failures,
            secs: connect_secs,
            handshake_micros: handshakes,
            source_addresses: bench.args.source_addrs,
            per_node,
        },
        (rss_before, rss_before_each),
        (rss_after, rss_after_each),
        &connect_cpu,
    );

    // Global figures: each round merged over the listeners.
    if bench.args.has_phase("global") {
        let mut g = Global {
            sockets: connected,
            late: reports.iter().map(|r| r.late).sum(),
            ..Global::default()
        };
        let mut all_latency = Vec::new();
        let mut span_total = 0.0;
        for (round, posted) in sent.into_iter().enumerate() {
            let parts: Vec<&ListenerRound> = reports.iter().filter_map(|r| r.rounds.get(round)).collect();
            if parts.len() != reports.len() {
                bench.problem(format!("global round {round}: a listener did not report it"));
            }
            let (mut r, lat, span) = merge_round(round, posted.unix_us, &parts);
            r.post_ms = posted.post_ms;
            r.error = posted.error;
            r.timed_out = posted.timed_out;
            all_latency.extend(lat);
            span_total += span.unwrap_or(0.0);
            bench.add_round(&mut g, r);
        }
        bench.close_global(&mut g, all_latency, span_total, &global_cpu, split);
        bench.report.global = Some(g);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sock: u32, seq: u32, at: Instant) -> Event {
        Event {
            sock,
            global: true,
            phase: Phase::Global,
            seq,
            id: i64::from(seq) + 1,
            at,
        }
    }

    #[test]
    fn shares_are_even_and_cover_the_total() {
        assert_eq!(shares(100_000, 6), vec![16_667, 16_667, 16_667, 16_667, 16_666, 16_666]);
        assert_eq!(shares(300, 2), vec![150, 150]);
        assert_eq!(shares(5, 3), vec![2, 2, 1]);
        assert_eq!(shares(7, 1), vec![7]);
    }

    #[test]
    fn a_listener_counts_each_socket_once_per_round() {
        let clock = Clock::now();
        let t = clock.instant + Duration::from_millis(10);
        let events = vec![
            event(1, 0, t),
            event(2, 0, t + Duration::from_millis(5)),
            // socket 2 twice in round 1, socket 3 never; the earlier copy is the arrival
            event(2, 1, t + Duration::from_millis(30)),
            event(2, 1, t + Duration::from_millis(20)),
            event(1, 1, t),
            // a round past the last, and a personal notification, are not rounds' copies
            event(1, 7, t),
            Event {
                global: false,
                ..event(3, 0, t)
            },
        ];
        let (rounds, late) = tally_rounds(2, &[1, 2, 3], &events, &clock);
        assert_eq!(late, 1);
        assert_eq!(
            (
                rounds[0].expected,
                rounds[0].delivered,
                rounds[0].duplicated,
                rounds[0].lost
            ),
            (3, 2, 0, 1)
        );
        assert_eq!(
            (
                rounds[1].expected,
                rounds[1].delivered,
                rounds[1].duplicated,
                rounds[1].lost
            ),
            (3, 2, 1, 1)
        );
        let base = clock.unix_us;
        assert_eq!(rounds[1].arrivals_unix_us, vec![base + 10_000, base + 30_000]);
    }

    #[test]
    fn a_round_is_complete_only_if_every_socket_of_every_listener_got_it_once() {
        let sent = 1_000_000;
        let good = ListenerRound {
            expected: 2,
            delivered: 2,
            arrivals_unix_us: vec![sent + 1_000, sent + 4_000],
            ..ListenerRound::default()
        };
        let also_good = ListenerRound {
            expected: 1,
            delivered: 1,
            arrivals_unix_us: vec![sent + 2_000],
            ..ListenerRound::default()
        };
        let (r, lat, span) = merge_round(0, sent, &[&good, &also_good]);
        assert_eq!((r.expected, r.delivered, r.lost, r.duplicated), (3, 3, 0, 0));
        assert_eq!(lat.len(), 3);
        assert_eq!(span, Some(0.004));
        assert_eq!(r.fanout_ms, Some(4.0));
        assert_eq!(r.latency.as_ref().map(|d| d.max_ms), Some(4.0));

        let complete = |parts: &[&ListenerRound]| merge_round(1, sent, parts).0.reached_every_socket_once();
        assert!(complete(&[&good, &also_good]));
        let duplicated = ListenerRound {
            duplicated: 1,
            ..also_good.clone()
        };
        assert!(!complete(&[&good, &duplicated]));
        let lost = ListenerRound {
            delivered: 0,
            lost: 1,
            arrivals_unix_us: Vec::new(),
            ..also_good.clone()
        };
        assert!(!complete(&[&good, &lost]));
    }

    #[test]
    fn clock_maps_instants_to_unix_micros() {
        let c = Clock::now();
        assert_eq!(c.unix_us(c.instant + Duration::from_micros(1500)), c.unix_us + 1500);
        assert_eq!(c.unix_us(c.instant), c.unix_us);
    }
}
