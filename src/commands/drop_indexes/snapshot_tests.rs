//! Snapshots of the drop-indexes report in every format, from reports built
//! by hand with the README tour's figures: a drop, a dry run, refusals and
//! failures, an interrupted wait for the run lock and an empty selection.

use super::{assemble, DropStatus, DroppedIndex};
use crate::commands::create_indexes::report::snapshot_tests::TOUR;
use crate::report::snapshot::assert_formats;
use crate::report::{Outcome, Report};

/// The tour's index `i` as `status`, with its size and `ms` to drop it.
fn row(i: usize, status: DropStatus, ms: f64) -> DroppedIndex {
    let (name, _, _, size) = TOUR[i];
    DroppedIndex {
        name: name.into(),
        table: "public.orders".into(),
        status,
        duration_ms: ms,
        size_bytes: size,
        error: None,
    }
}

#[test]
fn the_tour_drop() {
    // `drop-indexes idx_orders_scene`
    let r = assemble(
        vec![row(8, DropStatus::Dropped, 1.27)],
        false,
        false,
        vec![],
        vec![],
    );
    assert_eq!(r.outcome(), Outcome::Clean);
    assert_formats!("dropped", r);
}

#[test]
fn a_dry_run_shows_the_sql() {
    let rows: Vec<DroppedIndex> = (0..TOUR.len())
        .map(|i| row(i, DropStatus::WouldDrop, 0.0))
        .collect();
    let sql = rows
        .iter()
        .map(|r| {
            format!(
                "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"{}\"",
                r.name
            )
        })
        .collect();
    assert_formats!("dry-run", assemble(rows, true, false, Vec::new(), sql));
}

#[test]
fn absent_refused_and_failed_indexes() {
    let rows = vec![
        row(0, DropStatus::Dropped, 2.04),
        DroppedIndex {
            size_bytes: 0,
            ..row(4, DropStatus::Absent, 0.0)
        },
        DroppedIndex {
            error: Some("an index of that name exists on table order_archive, not on public.orders; it is not managed here and was left alone".into()),
            ..row(6, DropStatus::Failed, 0.0)
        },
        DroppedIndex {
            error: Some("canceling statement due to lock timeout".into()),
            ..row(10, DropStatus::Failed, 60_001.5)
        },
    ];
    let r = assemble(
        rows,
        false,
        false,
        vec![],
        vec!["DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_store_date\"".into()],
    );
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("failures", r);
}

#[test]
fn interrupted_while_waiting_for_the_run_lock() {
    let rows = (0..2)
        .map(|i| DroppedIndex {
            size_bytes: 0,
            error: Some("interrupted while waiting for the run lock".into()),
            ..row(i, DropStatus::NotStarted, 0.0)
        })
        .collect();
    let r = assemble(rows, false, true, Vec::new(), Vec::new());
    assert_eq!(r.outcome(), Outcome::Interrupted);
    assert_formats!("interrupted", r);
}

#[test]
fn a_partitioned_table_says_what_its_drop_locks() {
    let r = assemble(
        vec![row(8, DropStatus::WouldDrop, 0.0)],
        true,
        false,
        vec!["the table is partitioned (13 partitions): a partitioned index cannot be dropped concurrently, so each DROP INDEX takes ACCESS EXCLUSIVE on the table and every partition for a moment; it waits at most the lock timeout (1m) for them, then retries (3 retries)".into()],
        vec!["DROP INDEX IF EXISTS \"public\".\"idx_orders_scene\"".into()],
    );
    assert_formats!("partitioned", r);
}

#[test]
fn nothing_selected() {
    assert_formats!(
        "empty",
        assemble(Vec::new(), false, false, Vec::new(), Vec::new())
    );
}
