//! Latency figures for one query: percentiles from an HDR histogram, so memory
//! stays constant however long a run lasts, and exact mean, stddev, min and max
//! from running sums (Welford), so the averages are not rounded to buckets.

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// The histogram's range and precision: 1 µs to one hour, 3 significant digits.
const HIGHEST_MICROS: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// Running count, mean, variance, min and max of durations (Welford's method,
/// merged with Chan's formula when clients' recorders are combined).
#[derive(Debug, Clone, Default)]
pub struct Moments {
    count: u64,
    mean_ns: f64,
    m2: f64,
    min_ns: u64,
    max_ns: u64,
}

impl Moments {
    pub fn add(&mut self, d: Duration) {
        let x = d.as_nanos() as u64;
        if self.count == 0 {
            self.min_ns = x;
            self.max_ns = x;
        } else {
            self.min_ns = self.min_ns.min(x);
            self.max_ns = self.max_ns.max(x);
        }
        self.count += 1;
        let delta = x as f64 - self.mean_ns;
        self.mean_ns += delta / self.count as f64;
        self.m2 += delta * (x as f64 - self.mean_ns);
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean_ns - self.mean_ns;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.mean_ns += delta * other.count as f64 / n;
        self.count += other.count;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean in ms; NaN (JSON null) with no samples.
    pub fn mean_ms(&self) -> f64 {
        self.if_any(self.mean_ns / 1e6)
    }

    /// Population standard deviation in ms, as pgbench reports it.
    pub fn stddev_ms(&self) -> f64 {
        self.if_any((self.m2 / self.count.max(1) as f64).sqrt() / 1e6)
    }

    pub fn min_ms(&self) -> f64 {
        self.if_any(self.min_ns as f64 / 1e6)
    }

    pub fn max_ms(&self) -> f64 {
        self.if_any(self.max_ns as f64 / 1e6)
    }

    fn if_any(&self, v: f64) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            v
        }
    }
}

/// Everything recorded for one query by one client (or merged over clients).
#[derive(Debug, Clone)]
pub struct Recorder {
    latency: Moments,
    histogram: Histogram<u64>,
    /// Time spent waiting for a pool connection, per run (concurrent mode).
    wait: Moments,
    rows: u64,
    errors: u64,
    last_error: Option<String>,
}

impl Recorder {
    pub fn new() -> Result<Recorder> {
        let histogram = Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
            .map_err(|e| anyhow!("cannot create a latency histogram: {e}"))?;
        Ok(Recorder {
            latency: Moments::default(),
            histogram,
            wait: Moments::default(),
            rows: 0,
            errors: 0,
            last_error: None,
        })
    }

    /// A successful run: its latency and how many rows it returned.
    pub fn record(&mut self, latency: Duration, rows: u64) {
        self.latency.add(latency);
        let micros = (latency.as_nanos() as u64).div_ceil(1000).max(1);
        self.histogram.saturating_record(micros);
        self.rows += rows;
    }

    /// A failed run: counted, and its message kept for the report.
    pub fn error(&mut self, message: String) {
        self.errors += 1;
        self.last_error = Some(message);
    }

    /// How long a run waited for a pool connection.
    pub fn waited(&mut self, d: Duration) {
        self.wait.add(d);
    }

    /// Runs recorded so far, successful or not.
    pub fn attempts(&self) -> u64 {
        self.latency.count() + self.errors
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.latency.merge(&other.latency);
        // Same bounds on both sides: adding cannot fail; saturate if it ever does.
        if self.histogram.add(&other.histogram).is_err() {
            for v in other.histogram.iter_recorded() {
                self.histogram
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.wait.merge(&other.wait);
        self.rows += other.rows;
        self.errors += other.errors;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
    }

    /// The query's figures, rounded to µs (rows to a tenth).
    pub fn figures(&self) -> Figures {
        let l = &self.latency;
        let (min, max) = (l.min_ms(), l.max_ms());
        // Bucket values are rounded up to the bucket's edge: keep them within
        // the exact extremes so min <= p50 <= p95 <= p99 <= max always holds.
        let pct = |q: f64| {
            if l.count() == 0 {
                f64::NAN
            } else {
                round(
                    (self.histogram.value_at_quantile(q) as f64 / 1000.0).clamp(min, max),
                    3,
                )
            }
        };
        let rows = if l.count() == 0 {
            0.0
        } else {
            self.rows as f64 / l.count() as f64
        };
        Figures {
            iterations: l.count(),
            errors: self.errors,
            rows: round(rows, 1),
            min_ms: round(min, 3),
            mean_ms: round(l.mean_ms(), 3),
            stddev_ms: round(l.stddev_ms(), 3),
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: round(max, 3),
        }
    }

    /// Time waiting for a pool connection per run.
    pub fn wait(&self) -> &Moments {
        &self.wait
    }

    /// The message of the last failed run.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

/// The figures of one query, in ms; a latency is NaN (JSON null) when no run succeeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Successful timed runs; the figures come from these.
    pub iterations: u64,
    /// Failed runs (not in the figures).
    pub errors: u64,
    /// Rows returned per run (mean).
    pub rows: f64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub stddev_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Rounds for display and JSON; NaN stays NaN.
pub fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    #[test]
    fn figures_are_exact_and_ordered() {
        let mut r = Recorder::new().unwrap();
        for v in 1..=100 {
            r.record(ms(v as f64 / 10.0), 2);
        }
        let s = r.figures();
        assert_eq!(s.iterations, 100);
        assert_eq!(s.rows, 2.0);
        assert!((s.mean_ms - 5.05).abs() < 1e-9, "{s:?}");
        assert!((s.stddev_ms - 2.8866).abs() < 1e-3, "{s:?}");
        assert!((s.min_ms - 0.1).abs() < 1e-9 && (s.max_ms - 10.0).abs() < 1e-9);
        assert!((s.p50_ms - 5.0).abs() < 0.01, "{s:?}");
        assert!((s.p95_ms - 9.5).abs() < 0.01, "{s:?}");
        assert!((s.p99_ms - 9.9).abs() < 0.01, "{s:?}");
        assert!(s.min_ms <= s.p50_ms && s.p99_ms <= s.max_ms);
    }

    #[test]
    fn merging_clients_equals_recording_once() {
        let (mut a, mut b, mut all) = (
            Recorder::new().unwrap(),
            Recorder::new().unwrap(),
            Recorder::new().unwrap(),
        );
        for v in [0.3, 0.5, 0.2, 7.0] {
            a.record(ms(v), 1);
            all.record(ms(v), 1);
        }
        for v in [1.5, 0.25, 3.0] {
            b.record(ms(v), 3);
            all.record(ms(v), 3);
        }
        b.error("boom".into());
        a.merge(&b);
        let (m, x) = (a.figures(), all.figures());
        assert_eq!(m.iterations, 7);
        assert_eq!(m.errors, 1);
        assert_eq!(a.last_error(), Some("boom"));
        assert!((m.mean_ms - x.mean_ms).abs() < 1e-9);
        assert!((m.stddev_ms - x.stddev_ms).abs() < 1e-9);
        assert_eq!(
            (m.p50_ms, m.p99_ms, m.min_ms),
            (x.p50_ms, x.p99_ms, x.min_ms)
        );
    }

    #[test]
    fn no_successful_run_gives_no_figures() {
        let mut r = Recorder::new().unwrap();
        r.error("server closed the connection".into());
        let s = r.figures();
        assert_eq!((s.iterations, s.errors), (0, 1));
        assert!(s.mean_ms.is_nan() && s.p95_ms.is_nan() && s.min_ms.is_nan());
    }
}
