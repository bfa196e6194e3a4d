//! Latency distributions (exact: the samples are few enough to sort).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dist {
    pub n: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Nearest-rank percentiles of samples given in microseconds; `None` when empty.
pub fn dist(mut micros: Vec<u64>) -> Option<Dist> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let n = micros.len();
    let pick = |p: f64| {
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        micros[rank - 1] as f64 / 1000.0
    };
    let sum: u128 = micros.iter().map(|&v| u128::from(v)).sum();
    Some(Dist {
        n,
        p50_ms: pick(0.50),
        p90_ms: pick(0.90),
        p99_ms: pick(0.99),
        max_ms: micros[n - 1] as f64 / 1000.0,
        mean_ms: round3(sum as f64 / n as f64 / 1000.0),
    })
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A per-second rate, `None` when the span is empty.
pub fn rate(count: u64, secs: f64) -> Option<f64> {
    (secs > 0.0 && count > 0).then(|| round1(count as f64 / secs))
}

/// splitmix64: a deterministic, well-mixed pseudo-random stream (no crate needed).
pub fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let d = dist((1..=100).map(|v| v * 1000).collect()).expect("non-empty");
        assert_eq!(d.n, 100);
        assert_eq!(d.p50_ms, 50.0);
        assert_eq!(d.p99_ms, 99.0);
        assert_eq!(d.max_ms, 100.0);
        assert!(dist(Vec::new()).is_none());
        let one = dist(vec![2500]).expect("one");
        assert_eq!(one.p50_ms, 2.5);
        assert_eq!(one.p99_ms, 2.5);
    }
}
