//! Snapshots of the benchmark report in table, JSON and CSV, from reports
//! built by hand: the README tour's seq-scan comparison; a concurrent run with
//! a baseline, findings, a query whose every run failed (null figures) and
//! fixed parameters that need CSV quoting; an interrupted run; and a run
//! interrupted before its first query; and one on a partitioned table.

use super::super::stats::Figures;
use super::super::{
    BaselineMeta, BenchmarkReport, Meta, PoolMeta, Pruning, QueryFigures, Statements,
};
use crate::db::CheckoutStats;
use crate::report::snapshot::assert_formats;
use crate::report::{Outcome, Report};

/// The README tour's `benchmark --compare-seqscan` header.
fn meta() -> Meta {
    Meta {
        statements: Statements::Prepared,
        started_at: "2026-11-26T07:38:00Z".into(),
        server_version: "15.18 (Debian 15.18-0+deb12u1)".into(),
        database: "o2o_dashboard".into(),
        table: Some("public.orders".into()),
        orders: Some(93_728),
        suite: "built-in sql/benchmark.sql".into(),
        mode: "sequential",
        clients: 1,
        iterations: Some(20),
        duration_s: None,
        warmup: 3,
        seed: 42,
        fixed_params: false,
        max_p95_ms: 100.0,
        compare_seqscan: false,
        elapsed_s: 4.187,
        pool: None,
        baseline: None,
        interrupted: false,
        damaged_history_lines: Vec::new(),
    }
}

/// A query's figures: runs, mean rows, then min, mean, stddev, p50, p95, p99
/// and max in ms, and queries per second.
fn query(name: &str, runs: u64, rows: f64, ms: [f64; 7], qps: f64) -> QueryFigures {
    let [min_ms, mean_ms, stddev_ms, p50_ms, p95_ms, p99_ms, max_ms] = ms;
    QueryFigures {
        name: name.into(),
        figures: Figures {
            iterations: runs,
            errors: 0,
            rows,
            min_ms,
            mean_ms,
            stddev_ms,
            p50_ms,
            p95_ms,
            p99_ms,
            max_ms,
        },
        qps,
        not_measured: runs == 0,
        seqscan_p50_ms: None,
        speedup: None,
        wait_mean_ms: None,
        wait_max_ms: None,
        baseline_p50_ms: None,
        baseline_change_percent: None,
        over_max_p95: false,
        slower_than_baseline: false,
        last_error: None,
        params: None,
        partitions: None,
    }
}

/// With the seq-scan median and the speedup it gives.
fn seq(q: QueryFigures, seqscan_p50_ms: f64, speedup: f64) -> QueryFigures {
    QueryFigures {
        seqscan_p50_ms: Some(seqscan_p50_ms),
        speedup: Some(speedup),
        ..q
    }
}

/// The README tour's nine queries with their seq-scan comparison.
fn tour() -> BenchmarkReport {
    let q = |name, rows, ms, qps| query(name, 20, rows, ms, qps);
    BenchmarkReport {
        meta: Meta {
            compare_seqscan: true,
            ..meta()
        },
        queries: vec![
            seq(
                q(
                    "count_all",
                    1.0,
                    [4.912, 8.861, 2.853, 9.239, 13.631, 13.72, 13.72],
                    112.9,
                ),
                9.455,
                1.02,
            ),
            seq(
                q(
                    "by_store",
                    1.0,
                    [2.834, 5.093, 2.101, 4.183, 8.807, 10.047, 10.047],
                    196.3,
                ),
                9.75,
                2.33,
            ),
            seq(
                q(
                    "store_date",
                    6.8,
                    [0.094, 0.301, 0.083, 0.29, 0.41, 0.431, 0.431],
                    3359.2,
                ),
                6.752,
                23.28,
            ),
            seq(
                q(
                    "channel_revenue",
                    6.0,
                    [0.331, 1.342, 1.071, 1.009, 4.419, 4.44, 4.44],
                    745.6,
                ),
                10.29,
                10.2,
            ),
            seq(
                q(
                    "top_products",
                    10.0,
                    [0.823, 3.221, 3.462, 1.571, 8.007, 15.519, 15.519],
                    310.4,
                ),
                11.05,
                7.03,
            ),
            seq(
                q(
                    "category_share",
                    7.0,
                    [0.462, 1.763, 1.187, 1.256, 4.011, 5.49, 5.49],
                    567.1,
                ),
                10.77,
                8.58,
            ),
            seq(
                q(
                    "by_time_period",
                    4.9,
                    [0.103, 0.391, 0.781, 0.142, 1.709, 3.441, 3.441],
                    2579.4,
                ),
                10.81,
                76.21,
            ),
            seq(
                q(
                    "by_scene",
                    2.3,
                    [0.121, 0.459, 0.763, 0.204, 0.742, 3.69, 3.69],
                    2161.0,
                ),
                11.02,
                54.02,
            ),
            seq(
                q(
                    "latest_orders",
                    50.0,
                    [0.061, 0.15, 0.349, 0.066, 0.112, 1.673, 1.673],
                    6661.3,
                ),
                29.2,
                442.42,
            ),
        ],
    }
}

#[test]
fn the_tour_with_the_seqscan_comparison() {
    let r = tour();
    assert_eq!(r.outcome(), Outcome::Clean);
    assert_formats!("tour", r);
}

/// Six clients for 30 s on a pool of 5 through a transaction-mode pooler,
/// compared with last night's run.
fn concurrent() -> BenchmarkReport {
    let waits = |q: QueryFigures, mean, max| QueryFigures {
        wait_mean_ms: Some(mean),
        wait_max_ms: Some(max),
        ..q
    };
    let against = |q: QueryFigures, before: f64, change: f64| QueryFigures {
        baseline_p50_ms: Some(before),
        baseline_change_percent: Some(change),
        slower_than_baseline: change > 20.0,
        ..q
    };
    let by_store = against(
        waits(
            query(
                "by_store",
                2_412,
                1.0,
                [3.02, 6.41, 2.77, 5.74, 11.9, 15.3, 31.8],
                80.4,
            ),
            0.912,
            12.377,
        ),
        4.18,
        37.3,
    );
    let top_products = QueryFigures {
        over_max_p95: true,
        ..against(
            waits(
                query(
                    "top_products",
                    512,
                    10.0,
                    [41.2, 71.5, 30.9, 64.1, 142.0, 188.4, 240.7],
                    17.1,
                ),
                2.05,
                20.113,
            ),
            61.3,
            4.6,
        )
    };
    let mut failed = waits(
        query("latest_orders", 0, 0.0, [f64::NAN; 7], 0.0),
        0.31,
        1.2,
    );
    failed.figures.errors = 40;
    failed.last_error = Some("server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally".into());
    failed.params = Some(Vec::new());
    let store_date = QueryFigures {
        params: Some(vec![
            "'O''Brien, \"旗舰店\"'".into(),
            "'2025-06-01'::date".into(),
            "'2025-06-30'::date".into(),
        ]),
        ..against(
            waits(
                query(
                    "store_date",
                    40_118,
                    6.0,
                    [0.081, 0.288, 0.09, 0.27, 0.45, 0.61, 9.8],
                    1337.3,
                ),
                0.004,
                0.981,
            ),
            0.28,
            -3.6,
        )
    };
    BenchmarkReport {
        meta: Meta {
            // Through pgbouncer in transaction mode: unnamed statements.
            statements: Statements::Unnamed,
            mode: "concurrent",
            clients: 6,
            iterations: None,
            duration_s: Some(30.0),
            fixed_params: true,
            elapsed_s: 121.402,
            pool: Some(PoolMeta {
                max_size: 5,
                checkouts: CheckoutStats {
                    checkouts: 43_108,
                    waits: 3_977,
                    wait_ms_total: 3_512.8,
                    wait_ms_max: 20.113,
                    timeouts: 0,
                    connection_errors: 2,
                },
            }),
            baseline: Some(BaselineMeta {
                file: "/var/lib/o2o-db/bench.jsonl".into(),
                started_at: "2026-11-25T02:00:01Z".into(),
                slower_percent: 20.0,
                note: Some("the baseline ran with 1 client(s), this run with 6; one of the two runs used --fixed-params".into()),
            }),
            ..meta()
        },
        queries: vec![by_store, top_products, failed, store_date],
    }
}

#[test]
fn a_concurrent_run_with_a_baseline_findings_and_failed_runs() {
    let r = concurrent();
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("concurrent", r);
}

#[test]
fn interrupted_during_the_seqscan_pass() {
    let mut r = tour();
    r.queries.truncate(2);
    // Ctrl-C came before the second query's seq-scan runs.
    r.queries[1].seqscan_p50_ms = None;
    r.queries[1].speedup = None;
    r.meta.interrupted = true;
    assert_eq!(r.outcome(), Outcome::Interrupted);
    assert_formats!("interrupted", r);
}

#[test]
fn interrupted_before_the_first_query() {
    let r = BenchmarkReport {
        meta: Meta {
            interrupted: true,
            orders: None,
            suite: "/etc/o2o-db/suite.sql".into(),
            ..meta()
        },
        queries: Vec::new(),
    };
    assert_formats!("no-queries", r);
}

#[test]
fn on_a_partitioned_table_each_query_says_how_many_partitions_it_reads() {
    let mut r = tour();
    r.queries.truncate(3);
    let read = [(2, 2), (1, 3), (14, 14)];
    for (q, (read_min, read_max)) in r.queries.iter_mut().zip(read) {
        q.seqscan_p50_ms = None;
        q.speedup = None;
        q.partitions = Some(Pruning {
            read_min,
            read_max,
            partitions: 14,
        });
    }
    r.meta.compare_seqscan = false;
    assert_eq!(
        r.queries[1].partitions.map(|p| p.to_string()).as_deref(),
        Some("1-3/14")
    );
    assert_formats!("partitioned", r);
}
