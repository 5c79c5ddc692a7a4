// benchmark: figures, exact counts, queueing clients, history and baseline,
// the seq-scan speedup and suite files. kills.rs kills backends under a run;
// cli.rs takes the thresholds, exit codes and the three output formats.

mod cli;
mod kills;

use crate::support::{self, TestDb};
use o2o_db::commands::benchmark::{self, BenchmarkArgs, BenchmarkReport};
use o2o_db::report::{Outcome, Report};
use std::num::NonZeroU32;

fn runs(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

fn check_figures(report: &BenchmarkReport) {
    for q in &report.queries {
        let f = [
            q.figures.min_ms,
            q.figures.p50_ms,
            q.figures.p95_ms,
            q.figures.p99_ms,
            q.figures.max_ms,
        ];
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "{}: {f:?}", q.name);
        assert!(q.figures.min_ms > 0.0, "{}: {q:?}", q.name);
        assert!(
            q.figures.min_ms <= q.figures.mean_ms && q.figures.mean_ms <= q.figures.max_ms,
            "{}: {q:?}",
            q.name
        );
        // A population stddev is at most half the range (+ the 3-decimal rounding).
        assert!(
            q.figures.stddev_ms <= (q.figures.max_ms - q.figures.min_ms) / 2.0 + 0.001,
            "{}: {q:?}",
            q.name
        );
        assert!(q.qps > 0.0, "{}: {q:?}", q.name);
        assert!(q.figures.rows >= 1.0, "{} returned no rows: {q:?}", q.name);
    }
}

#[test]
fn sequential_figures_are_ordered_and_runs_counted_exactly() {
    let db = TestDb::seeded("bench_sequential", 3000);
    let args = BenchmarkArgs {
        iterations: runs(7),
        warmup: Some(2),
        max_p95_ms: Some(support::GENEROUS_MS),
        ..BenchmarkArgs::default()
    };
    let report = benchmark::run(&db.config(), &args).unwrap();
    assert_eq!(report.queries.len(), 9, "the whole built-in suite runs");
    for q in &report.queries {
        assert_eq!(
            (q.figures.iterations, q.figures.errors),
            (7, 0),
            "{}",
            q.name
        );
        assert!(q.seqscan_p50_ms.is_none() && q.wait_mean_ms.is_none());
    }
    check_figures(&report);
    let latest = report
        .queries
        .iter()
        .find(|q| q.name == "latest_orders")
        .unwrap();
    assert_eq!(latest.figures.rows, 50.0);
    let m = &report.meta;
    assert_eq!(m.orders, Some(3000));
    assert_eq!(
        (m.mode, m.clients, m.iterations, m.warmup),
        ("sequential", 1, Some(7), 2)
    );
    assert!(m.server_version.starts_with(char::is_numeric), "{m:?}");
    assert_eq!(report.outcome(), Outcome::Clean);
}

#[test]
fn clients_beyond_the_pool_queue_and_every_run_is_counted() {
    let db = TestDb::seeded("bench_clients", 3000);
    let mut config = db.config();
    config.pool.size = 1;
    config.pool.max_overflow = 1;
    let args = BenchmarkArgs {
        clients: 6,
        iterations: runs(40),
        only: vec!["by_store".into(), "latest_orders".into()],
        ..BenchmarkArgs::default()
    };
    let report = benchmark::run(&config, &args).unwrap();
    assert_eq!(report.queries.len(), 2);
    for q in &report.queries {
        assert_eq!((q.figures.iterations, q.figures.errors), (40, 0), "{q:?}");
        // Six clients on two connections wait for one on every query.
        let (mean, max) = (q.wait_mean_ms.unwrap(), q.wait_max_ms.unwrap());
        assert!(mean > 0.0 && mean <= max, "{q:?}");
    }
    check_figures(&report);
    let pool = report.meta.pool.as_ref().unwrap();
    assert_eq!(pool.max_size, 2);
    assert_eq!(pool.checkouts.timeouts, 0);
    assert!(pool.checkouts.checkouts >= 80, "{pool:?}");
    // Six clients on two connections queue: more checkouts waited than the
    // two that opened the lazy pool's connections, and the runs saw the wait.
    assert!(pool.checkouts.waits > 2, "{pool:?}");
    assert!(
        report.queries.iter().any(|q| q.wait_max_ms > Some(0.0)),
        "{:?}",
        report.queries
    );
    assert_eq!(report.meta.mode, "concurrent");
}

#[test]
fn history_appends_and_the_baseline_flags_a_query_slowed_by_a_dropped_index() {
    let db = TestDb::seeded("bench_baseline", 20000);
    db.client()
        .batch_execute("CREATE INDEX bench_store_date ON orders (store_name, date); ANALYZE orders")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    let args = BenchmarkArgs {
        only: vec!["by_time_period".into()],
        iterations: runs(30),
        history: Some(history.clone()),
        baseline: Some(history.clone()),
        slower_percent: Some(50.0),
        max_p95_ms: Some(support::GENEROUS_MS),
        ..BenchmarkArgs::default()
    };
    // First night: no baseline yet, and that is no error.
    let first = benchmark::run(&db.config(), &args).unwrap();
    assert!(first.meta.baseline.is_none());
    assert_eq!(first.outcome(), Outcome::Clean);
    db.client()
        .batch_execute("DROP INDEX bench_store_date")
        .unwrap();
    let second = benchmark::run(&db.config(), &args).unwrap();
    let q = &second.queries[0];
    assert!(q.slower_than_baseline, "{q:?}");
    assert_eq!(q.baseline_p50_ms, Some(first.queries[0].figures.p50_ms));
    assert!(q.baseline_change_percent.unwrap() > 50.0, "{q:?}");
    assert_eq!(second.outcome(), Outcome::Findings);
    let b = second.meta.baseline.as_ref().unwrap();
    assert_eq!(b.started_at, first.meta.started_at);
    assert_eq!(b.slower_percent, 50.0);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["meta"]["orders"], 20000);
    assert_eq!(lines[1]["queries"][0]["name"], "by_time_period");
    assert_eq!(lines[1]["queries"][0]["slower_than_baseline"], true);
    assert!(lines[1]["meta"]["server_version"].is_string());

    // A baseline that is not a history file is refused with its line.
    std::fs::write(dir.path().join("bad.jsonl"), "not json\n").unwrap();
    let err = benchmark::run(
        &db.config(),
        &BenchmarkArgs {
            baseline: Some(dir.path().join("bad.jsonl")),
            ..BenchmarkArgs::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bad.jsonl:1: not a benchmark run"), "{err}");
}

#[test]
fn compare_seqscan_reports_every_querys_seqscan_median_and_speedup() {
    let db = TestDb::seeded("bench_seqscan", 20000);
    db.client()
        .batch_execute("CREATE INDEX bench_store_date ON orders (store_name, date); ANALYZE orders")
        .unwrap();
    let args = BenchmarkArgs {
        only: vec!["by_time_period".into(), "count_all".into()],
        iterations: runs(15),
        compare_seqscan: true,
        ..BenchmarkArgs::default()
    };
    let report = benchmark::run(&db.config(), &args).unwrap();
    assert_eq!(report.queries.len(), 2, "{:?}", report.queries);
    // Every query gets a seq-scan median and the speedup is the ratio of the
    // two medians. How large it is depends on the machine: no claim on it.
    for q in &report.queries {
        let (seq, speedup) = (q.seqscan_p50_ms.unwrap(), q.speedup.unwrap());
        assert!(seq > 0.0 && q.figures.p50_ms > 0.0, "{q:?}");
        assert!(
            (speedup - seq / q.figures.p50_ms).abs() <= 0.005 + 1e-9,
            "{q:?}"
        );
    }
}

#[test]
fn a_suite_file_and_only_pick_the_queries() {
    let db = TestDb::seeded("bench_suite", 2000);
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.sql");
    std::fs::write(
        &suite,
        "-- name: one_store\n-- index: yes\n-- params: SELECT DISTINCT store_name FROM orders\n\
         SELECT order_id FROM orders WHERE store_name = $1 LIMIT 5;\n\n\
         -- name: big_orders\nSELECT count(*) FROM orders WHERE amount > 100;\n",
    )
    .unwrap();
    let args = BenchmarkArgs {
        queries: Some(suite.clone()),
        only: vec!["one_store".into()],
        iterations: runs(3),
        ..BenchmarkArgs::default()
    };
    let report = benchmark::run(&db.config(), &args).unwrap();
    assert_eq!(report.queries.len(), 1);
    assert_eq!(report.queries[0].name, "one_store");
    assert_eq!(report.queries[0].figures.rows, 5.0);
    assert_eq!(report.meta.suite, suite.display().to_string());
    // A suite query the server rejects is a could-not-run error naming the query and file.
    std::fs::write(
        &suite,
        "-- name: broken\nSELECT no_such_column FROM orders;\n",
    )
    .unwrap();
    let err = benchmark::run(
        &db.config(),
        &BenchmarkArgs {
            only: vec![],
            ..args
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("query broken") && err.contains("suite.sql:2"),
        "{err}"
    );
    assert!(err.contains("no_such_column"), "{err}");
}
