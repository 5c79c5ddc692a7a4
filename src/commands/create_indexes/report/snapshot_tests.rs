//! Snapshots of the create-indexes report in every format, from reports built
//! by hand with the README tour's figures: a build, a dry run, a run with
//! failures and drift, an interrupted run and an empty index set.

use super::super::replicas::ReplicaWait;
use super::{CreateIndexesReport, IndexResult, PartitionsDone, Status, Summary};
use crate::report::snapshot::assert_formats;
use crate::report::{Outcome, Report};

/// The README tour's managed indexes: name, key columns, build time (ms), size (bytes).
pub(crate) const TOUR: [(&str, &str, f64, i64); 11] = [
    ("idx_orders_store_date", "store_name, date", 134.98, 720_896),
    (
        "idx_orders_store_channel",
        "store_name, channel",
        139.14,
        696_320,
    ),
    (
        "idx_orders_store_product",
        "store_name, product_name",
        164.85,
        720_896,
    ),
    ("idx_orders_date_channel", "date, channel", 96.42, 720_896),
    ("idx_orders_store_name", "store_name", 85.36, 688_128),
    ("idx_orders_product_name", "product_name", 121.75, 688_128),
    ("idx_orders_channel", "channel", 94.36, 671_744),
    ("idx_orders_category_l1", "category_l1", 84.03, 671_744),
    ("idx_orders_scene", "scene", 67.60, 679_936),
    ("idx_orders_time_period", "time_period", 68.26, 671_744),
    ("idx_orders_date_desc", "date DESC", 65.78, 688_128),
];

/// How the tour's runs describe their sessions.
const HOW: &str = "CONCURRENTLY, 1 session, lock_timeout 1m, statement_timeout 2h, 3 lock retries";

/// The tour's indexes, each built as `status` (durations and sizes only where it was built).
fn indexes(status: Status) -> Vec<IndexResult> {
    TOUR.iter()
        .map(|&(name, columns, ms, size)| {
            let built = matches!(status, Status::Created | Status::Rebuilt);
            IndexResult {
                name: name.into(),
                table: "public.orders".into(),
                definition: format!("CREATE INDEX {name} ON public.orders USING btree ({columns})"),
                status,
                duration_ms: if built { ms } else { 0.0 },
                size_bytes: if built || status == Status::Skipped {
                    size
                } else {
                    0
                },
                error: None,
                partitions: None,
                columns: columns.into(),
            }
        })
        .collect()
}

/// A report over `indexes` with the summary counted from them, as the command assembles it.
fn report(indexes: Vec<IndexResult>) -> CreateIndexesReport {
    CreateIndexesReport {
        summary: Summary::count(&indexes),
        indexes,
        dry_run: false,
        interrupted: false,
        analyzed: false,
        notices: Vec::new(),
        sql: Vec::new(),
        how: HOW.into(),
        replicas: Vec::new(),
    }
}

#[test]
fn the_tour_build() {
    assert_formats!(
        "built",
        CreateIndexesReport {
            analyzed: true,
            ..report(indexes(Status::Created))
        }
    );
}

#[test]
fn a_dry_run_shows_the_sql_and_the_sessions_in_the_way() {
    let mut sql: Vec<String> = TOUR
        .iter()
        .map(|(name, columns, ..)| {
            format!("CREATE INDEX CONCURRENTLY \"{name}\" ON \"public\".\"orders\" ({columns})")
        })
        .collect();
    sql.push("ANALYZE \"public\".\"orders\"".into());
    assert_formats!(
        "dry-run",
        CreateIndexesReport {
            dry_run: true,
            sql,
            notices: vec![
                "a build will wait for this session's transaction to end: pid 4711 (psql, idle in transaction for 12m 3s, snapshot xmin 7469): UPDATE orders SET scene = '午餐' WHERE order_id = 42".into(),
            ],
            ..report(indexes(Status::WouldCreate))
        }
    );
}

#[test]
fn a_dry_run_with_nothing_to_do_prints_no_sql() {
    assert_formats!(
        "dry-run-nothing-to-do",
        CreateIndexesReport {
            dry_run: true,
            ..report(indexes(Status::Skipped))
        }
    );
}

#[test]
fn failures_and_drift_are_findings_with_their_messages() {
    let mut rows = indexes(Status::Skipped);
    rows[0] = IndexResult {
        status: Status::Drifted,
        error: Some("defined differently on the server: CREATE INDEX idx_orders_store_date ON public.orders USING btree (store_name); --replace-drifted builds it as defined under a temporary name, then swaps it in".into()),
        ..rows[0].clone()
    };
    rows[1] = IndexResult {
        status: Status::Rebuilt,
        duration_ms: 141.07,
        ..rows[1].clone()
    };
    rows[2] = IndexResult {
        status: Status::Failed,
        duration_ms: 5003.2,
        size_bytes: 0,
        error: Some("canceling statement due to lock timeout (blocked by pid 4711, psql: LOCK TABLE orders IN ACCESS EXCLUSIVE MODE)".into()),
        ..rows[2].clone()
    };
    let r = report(rows);
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("findings", r);
}

#[test]
fn an_interrupted_build_shows_how_far_it_got() {
    let mut rows = indexes(Status::Created);
    for row in &mut rows[3..] {
        *row = IndexResult {
            status: Status::NotStarted,
            duration_ms: 0.0,
            size_bytes: 0,
            error: Some("interrupted before it started".into()),
            ..row.clone()
        };
    }
    rows[2] = IndexResult {
        status: Status::Failed,
        size_bytes: 0,
        error: Some("canceling statement due to user request".into()),
        ..rows[2].clone()
    };
    let r = CreateIndexesReport {
        interrupted: true,
        ..report(rows)
    };
    assert_eq!(r.outcome(), Outcome::Interrupted);
    assert_formats!("interrupted", r);
}

#[test]
fn a_partitioned_table_counts_partitions() {
    let mut rows = indexes(Status::Created);
    for row in &mut rows {
        row.partitions = Some(PartitionsDone {
            done: 13,
            total: 13,
            built: 13,
        });
    }
    rows[0] = IndexResult {
        status: Status::Completed,
        duration_ms: 12.5,
        partitions: Some(PartitionsDone {
            done: 13,
            total: 13,
            built: 1,
        }),
        ..rows[0].clone()
    };
    rows[1] = IndexResult {
        status: Status::Failed,
        partitions: Some(PartitionsDone { done: 7, total: 13, built: 7 }),
        error: Some("7 of 13 partitions done; idx_orders_store_channel on public.orders_2025_07: lock timeout: waited longer than 1s for its lock on the table; the next run builds only what is still missing".into()),
        ..rows[1].clone()
    };
    let r = CreateIndexesReport {
        notices: vec!["the table is partitioned (13 partitions): each index is made ON ONLY the table, then built CONCURRENTLY on each partition and attached to it; it turns valid once every partition has it".into()],
        ..report(rows)
    };
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("partitioned", r);
}

#[test]
fn an_empty_index_set() {
    assert_formats!("empty", report(Vec::new()));
}

#[test]
fn replicas_waited_for_after_the_build() {
    let wait = |name: &str, replayed: bool, missing: &[&str], error: Option<&str>| ReplicaWait {
        name: name.into(),
        replayed,
        waited_ms: 120.0,
        missing: missing.iter().map(|m| m.to_string()).collect(),
        error: error.map(str::to_string),
    };
    let r = CreateIndexesReport {
        analyzed: true,
        replicas: vec![
            wait("replica1", true, &[], None),
            wait("replica2", false, &[], None),
            wait("replica3", true, &["idx_orders_scene"], None),
            wait(
                "replica4",
                false,
                &[],
                Some("cannot connect to 10.0.0.4:5432/o2o_dashboard: refused"),
            ),
        ],
        ..report(indexes(Status::Created))
    };
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("replicas", r);
}
