//! Server and self figures read from /proc (Linux only; absent figures are `None`).

/// Linux exports utime/stime in USER_HZ, which the kernel ABI fixes at 100 on every
/// architecture this tool runs on (sysconf(_SC_CLK_TCK) answers the same).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Resident set size (VmRSS) of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds consumed so far by `pid` (all its threads).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    cpu_secs_of(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds consumed so far by this process.
pub fn self_cpu_secs() -> Option<f64> {
    cpu_secs_of("/proc/self/stat")
}

/// User and system CPU seconds of `pid` apart: how much of its time the kernel took.
pub fn cpu_split(pid: u32) -> Option<(f64, f64)> {
    split_of(&format!("/proc/{pid}/stat"))
}

fn cpu_secs_of(path: &str) -> Option<f64> {
    split_of(path).map(|(user, sys)| user + sys)
}

fn split_of(path: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after
    // the last ')'. What follows starts at field 3 (state); utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime as f64 / CLOCK_TICKS_PER_SEC, stime as f64 / CLOCK_TICKS_PER_SEC))
}

/// Machine-wide CPU seconds from the first line of /proc/stat (all cores).
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    /// user + nice + system + irq (guest time is already inside user).
    pub busy: f64,
    /// softirq: on loopback this is mostly the network stack carrying our own traffic.
    pub softirq: f64,
    /// steal: time the hypervisor gave to other guests.
    pub steal: f64,
}

pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let field = |i: usize| v.get(i).copied().unwrap_or(0) as f64 / CLOCK_TICKS_PER_SEC;
    if v.len() < 4 {
        return None;
    }
    Some(MachineCpu {
        busy: field(0) + field(1) + field(2) + field(5),
        softirq: field(6),
        steal: field(7),
    })
}

/// The 1-minute load average.
pub fn loadavg1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident set sizes of several processes: their sum (`None` unless every one was read)
/// and each one's.
pub fn rss_sum_kib(pids: &[u32]) -> (Option<u64>, Vec<Option<u64>>) {
    let each: Vec<Option<u64>> = pids.iter().map(|&p| rss_kib(p)).collect();
    (sum_all(&each), each)
}

/// User and system CPU seconds of several processes, summed (`None` unless every one was read).
pub fn cpu_split_sum(pids: &[u32]) -> Option<(f64, f64)> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold((0.0, 0.0), |(u, s), &p| {
        let (pu, ps) = cpu_split(p)?;
        Some((u + pu, s + ps))
    })
}

/// The sum of every value, or `None` when there are none or one is missing: a figure summed
/// over nodes must not silently leave a node out.
pub fn sum_all<T: Copy + std::iter::Sum<T>>(values: &[Option<T>]) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    values.iter().copied().sum()
}

/// CPU figures of one stretch of a run.
#[derive(Debug, Default, Clone)]
pub struct CpuUse {
    /// The server processes (when --pid was given), summed over them.
    pub server: Option<f64>,
    /// Each server process's, in --pid's order.
    pub per_server: Vec<Option<f64>>,
    /// This tool.
    pub bench: Option<f64>,
    /// Everything else on the machine: busy CPU of all cores less servers and tool
    /// (softirq and steal apart). Well above zero means a shared, busy machine.
    pub other: Option<f64>,
    /// Softirq time of all cores (mostly loopback networking of the run itself).
    pub softirq: Option<f64>,
    /// Steal time of all cores (the hypervisor serving other guests).
    pub steal: Option<f64>,
}

/// CPU meter over one stretch of a run: the servers (when pids are known), this tool (with its
/// listener processes, if any), the rest.
pub struct CpuMeter {
    pids: Vec<u32>,
    server0: Vec<Option<f64>>,
    /// The tool's other processes (listeners), counted as the tool's.
    tool_pids: Vec<u32>,
    self0: Option<f64>,
    machine0: Option<MachineCpu>,
}

/// CPU seconds of this process and of `others`, summed.
fn tool_cpu_secs(others: &[u32]) -> Option<f64> {
    others
        .iter()
        .try_fold(self_cpu_secs()?, |sum, &p| Some(sum + cpu_secs(p)?))
}

fn delta(now: Option<f64>, then: Option<f64>) -> Option<f64> {
    Some(now? - then?)
}

impl CpuMeter {
    pub fn start(pids: &[u32]) -> Self {
        Self::start_with_tool(pids, &[])
    }

    /// A meter that counts the processes `tool_pids` as part of this tool.
    pub fn start_with_tool(pids: &[u32], tool_pids: &[u32]) -> Self {
        Self {
            pids: pids.to_vec(),
            server0: pids.iter().map(|&p| cpu_secs(p)).collect(),
            tool_pids: tool_pids.to_vec(),
            self0: tool_cpu_secs(tool_pids),
            machine0: machine_cpu(),
        }
    }

    /// CPU seconds used since `start`.
    pub fn read(&self) -> CpuUse {
        let per_server: Vec<Option<f64>> = self
            .pids
            .iter()
            .zip(&self.server0)
            .map(|(&p, &then)| delta(cpu_secs(p), then))
            .collect();
        let server = sum_all(&per_server);
        let bench = delta(tool_cpu_secs(&self.tool_pids), self.self0);
        let now = machine_cpu();
        let busy = delta(now.map(|m| m.busy), self.machine0.map(|m| m.busy));
        let other = busy.map(|m| (m - bench.unwrap_or(0.0) - server.unwrap_or(0.0)).max(0.0));
        CpuUse {
            server,
            per_server,
            bench,
            other,
            softirq: delta(now.map(|m| m.softirq), self.machine0.map(|m| m.softirq)),
            steal: delta(now.map(|m| m.steal), self.machine0.map(|m| m.steal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_figures() {
        assert!(self_cpu_secs().is_some());
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|k| k > 0));
        assert!(cpu_secs(pid).is_some());
        assert!(cpu_split(pid).is_some_and(|(u, s)| u >= 0.0 && s >= 0.0));
        assert!(machine_cpu().is_some());
        assert!(loadavg1().is_some());
    }

    #[test]
    fn sums_over_servers_leave_none_out() {
        assert_eq!(sum_all(&[Some(2u64), Some(3)]), Some(5));
        assert_eq!(sum_all(&[Some(2u64), None]), None);
        assert_eq!(sum_all::<u64>(&[]), None);
        let me = std::process::id();
        let (sum, each) = rss_sum_kib(&[me, me]);
        assert_eq!(each.len(), 2);
        assert!(sum.is_some_and(|s| s >= each[0].unwrap_or(u64::MAX)));
        // A process that does not exist (pid_max is below 2^22) makes the sum unknown.
        assert_eq!(rss_sum_kib(&[me, 4_194_305]).0, None);
        let meter = CpuMeter::start(&[me, me]);
        let cpu = meter.read();
        assert_eq!(cpu.per_server.len(), 2);
        assert!(cpu.server.is_some());
        assert!(CpuMeter::start(&[]).read().server.is_none());
        // The tool's own processes: counted as the tool's (here, this one twice).
        let tool = CpuMeter::start_with_tool(&[], &[me]).read();
        assert!(tool.bench.is_some() && tool.server.is_none());
        assert!(CpuMeter::start_with_tool(&[], &[4_194_305]).read().bench.is_none());
    }
}
