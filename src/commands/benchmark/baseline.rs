//! The run before this one: the --baseline and --history files read before
//! measuring (a bad path fails at once, damaged lines are skipped and named),
//! and each query's median held against the baseline run's.

use super::history::{self, DamagedLine, History, PastRun};
use super::runner::RunSettings;
use super::stats::round;
use super::{BaselineMeta, BenchmarkArgs, QueryFigures};
use crate::report;
use anyhow::Result;
use std::path::PathBuf;

/// The files a run reads and writes, opened before it measures anything.
pub struct Records<'a> {
    /// The last run of the --baseline file, when it has one.
    pub baseline: Option<(&'a PathBuf, PastRun)>,
    /// The --history file, open for appending.
    pub history: Option<History>,
    /// The lines of either file that are not runs.
    pub damaged: Vec<DamagedLine>,
}

/// Reads the baseline and opens the history before measuring: a bad path
/// fails now, and with one file for both, the run is compared with the one
/// before it. Damaged lines (a run torn by a crash or a full disk) are
/// skipped and reported.
pub fn open(args: &BenchmarkArgs) -> Result<Records<'_>> {
    let mut damaged = Vec::new();
    let baseline = match &args.baseline {
        Some(path) => {
            let scan = history::scan(path)?;
            damaged.extend(scan.damaged);
            scan.last.map(|run| (path, run))
        }
        None => None,
    };
    if let (Some(path), None) = (&args.baseline, &baseline) {
        report::notice(&format!(
            "no baseline yet: {} has no runs; this run is not compared",
            path.display()
        ));
    }
    let history = match &args.history {
        Some(path) => {
            if args.baseline.as_ref() != Some(path) {
                damaged.extend(history::scan(path)?.damaged);
            }
            Some(History::open(path)?)
        }
        None => None,
    };
    for line in &damaged {
        eprintln!("o2o-db: warning: {line}");
    }
    Ok(Records {
        baseline,
        history,
        damaged,
    })
}

/// Compares `queries` with the baseline run `past` read from `path`, and says
/// what they were compared with.
pub fn apply(
    queries: &mut [QueryFigures],
    (path, past): (&PathBuf, PastRun),
    slower_percent: f64,
    settings: &RunSettings,
    fixed_params: bool,
) -> BaselineMeta {
    compare(queries, &past, slower_percent);
    BaselineMeta {
        file: path.display().to_string(),
        note: note(&past, settings, fixed_params),
        started_at: past.meta.started_at,
        slower_percent,
    }
}

/// A median this much slower or less is not a regression, whatever the percent:
/// sub-0.1 ms queries move by more than 20% with where the scheduler puts the
/// backend, and a nightly alert on 0.04 -> 0.08 ms would only teach people to ignore it.
pub const BASELINE_NOISE_MS: f64 = 0.1;

/// Flags the queries whose median is more than `slower_percent` (and at least
/// BASELINE_NOISE_MS) above the baseline's.
fn compare(queries: &mut [QueryFigures], past: &PastRun, slower_percent: f64) {
    for q in queries {
        let Some(before) = past.query(&q.name).and_then(|p| p.p50_ms) else {
            continue;
        };
        q.baseline_p50_ms = Some(before);
        if before > 0.0 && q.figures.p50_ms.is_finite() {
            let change = (q.figures.p50_ms / before - 1.0) * 100.0;
            q.baseline_change_percent = Some(round(change, 1));
            q.slower_than_baseline =
                change > slower_percent && q.figures.p50_ms - before >= BASELINE_NOISE_MS;
        }
    }
}

/// Says when the baseline ran under different conditions than this run.
fn note(past: &PastRun, settings: &RunSettings, fixed_params: bool) -> Option<String> {
    let mut notes = Vec::new();
    if let Some(c) = past.meta.clients.filter(|c| *c != settings.clients) {
        notes.push(format!(
            "the baseline ran with {c} client(s), this run with {}",
            settings.clients
        ));
    }
    if past.meta.fixed_params.is_some_and(|f| f != fixed_params) {
        notes.push("one of the two runs used --fixed-params".to_string());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}
