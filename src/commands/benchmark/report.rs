//! The benchmark report's shape: what `--format json` prints, `--history`
//! records and the renderers in render.rs draw, as plain data, and the outcome
//! it gives the exit code.

use super::history::DamagedLine;
use super::runner::Statements;
use super::stats::Figures;
use crate::db::CheckoutStats;
use crate::report::{Outcome, Report};
use anyhow::Result;
use serde::Serialize;

/// The run as `--format json` prints it and `--history` records it.
/// Latencies are in ms; a figure is null when every run of the query failed.
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    pub meta: Meta,
    pub queries: Vec<QueryFigures>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    pub server_version: String,
    pub database: String,
    /// The table of the managed index set, schema-qualified, that the suite's
    /// queries ran against (its schema first on every session's search_path);
    /// null when the database has no such table (a suite of another table).
    pub table: Option<String>,
    /// Rows in that table.
    pub orders: Option<i64>,
    /// Where the queries came from.
    pub suite: String,
    /// "sequential" (one dedicated connection) or "concurrent" (clients sharing the pool).
    pub mode: &'static str,
    pub clients: u32,
    /// Timed runs per query (null with --duration).
    pub iterations: Option<u64>,
    /// Seconds each query was timed for (null without --duration).
    pub duration_s: Option<f64>,
    pub warmup: u32,
    pub seed: u64,
    pub fixed_params: bool,
    pub max_p95_ms: f64,
    pub compare_seqscan: bool,
    /// Wall-clock seconds of the whole run, setup included.
    pub elapsed_s: f64,
    /// The pool's checkout counters over the run, opening and warm-up included
    /// (concurrent mode; per-query waits of the timed runs are in each query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineMeta>,
    /// Lines of the --history or --baseline file that are not runs (torn by a
    /// crash or a full disk mid-write): skipped, not an error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_history_lines: Vec<DamagedLine>,
    /// Stopped by Ctrl-C: the queries measured so far are reported.
    pub interrupted: bool,
    /// Prepared once per connection (only the execution timed), or unnamed
    /// each run through a pooler sharing connections per transaction (parse
    /// and plan timed too).
    pub statements: Statements,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolMeta {
    pub max_size: u32,
    #[serde(flatten)]
    pub checkouts: CheckoutStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineMeta {
    pub file: String,
    /// started_at of the run compared with.
    pub started_at: String,
    pub slower_percent: f64,
    /// Why the comparison may be unfair (different clients or parameters), if it may.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryFigures {
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// Successful runs per second of wall-clock time.
    pub qps: f64,
    /// Median with index and bitmap scans disabled (--compare-seqscan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seqscan_p50_ms: Option<f64>,
    /// seqscan_p50_ms / p50_ms (--compare-seqscan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// Time waiting for a pool connection per run, not part of the latencies (concurrent mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_mean_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_max_ms: Option<f64>,
    /// The baseline run's median (--baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_p50_ms: Option<f64>,
    /// How much slower (+) or faster (-) the median is than the baseline's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_change_percent: Option<f64>,
    /// p95 above max_p95_ms.
    pub over_max_p95: bool,
    /// No timed run succeeded (a --duration shorter than one run, or every run
    /// failed): there is nothing to hold against the p95 limit or the
    /// baseline, and a gate over nothing must not pass.
    pub not_measured: bool,
    /// Median more than slower_percent (and at least 0.1 ms) above the baseline's.
    pub slower_than_baseline: bool,
    /// The message of the last failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The values bound on every run, as SQL literals (--fixed-params).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// On a partitioned table: how many partitions its plans read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Pruning>,
}

/// The partitions a query's plans read after pruning, of all the table has.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Pruning {
    pub read_min: usize,
    pub read_max: usize,
    pub partitions: usize,
}

impl std::fmt::Display for Pruning {
    /// "2/14", or "1-3/14" when parameters read different numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.read_min == self.read_max {
            write!(f, "{}/{}", self.read_max, self.partitions)
        } else {
            write!(f, "{}-{}/{}", self.read_min, self.read_max, self.partitions)
        }
    }
}

impl QueryFigures {
    /// Whether this query makes the run's outcome Findings.
    pub fn flagged(&self) -> bool {
        self.over_max_p95
            || self.slower_than_baseline
            || self.not_measured
            || self.figures.errors > 0
    }
}

impl Report for BenchmarkReport {
    const FORMATS: &'static [crate::report::Format] = &[
        crate::report::Format::Table,
        crate::report::Format::Json,
        crate::report::Format::Csv,
        crate::report::Format::Prometheus,
        crate::report::Format::Nagios,
    ];

    fn render_table(&self, w: &mut dyn std::io::Write) -> Result<()> {
        super::render::table(self, w)
    }

    fn render_prometheus(&self, w: &mut dyn std::io::Write) -> Result<()> {
        super::monitoring::prometheus(self, w)
    }

    fn nagios(&self) -> Option<crate::report::NagiosCheck> {
        Some(super::monitoring::nagios(self))
    }

    fn render_csv(&self, w: &mut dyn std::io::Write) -> Result<()> {
        super::render::csv(self, w)
    }

    fn outcome(&self) -> Outcome {
        if self.meta.interrupted {
            Outcome::Interrupted
        } else {
            Outcome::from_findings(self.queries.iter().any(QueryFigures::flagged))
        }
    }
}
