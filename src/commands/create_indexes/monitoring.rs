//! create-indexes' summary for Prometheus: how many managed indexes ended in
//! each status, and per index its status, build time and size, so a
//! dashboard shows the last maintenance run beside verify's index metrics.

use super::report::{CreateIndexesReport, IndexResult};
use crate::report::prometheus::{flag, seconds, Exposition, Kind, Labels};
use anyhow::Result;
use std::io::Write;

pub fn prometheus(r: &CreateIndexesReport, w: &mut dyn Write) -> Result<()> {
    let s = &r.summary;
    let mut e = Exposition::new();
    let counts = [
        ("created", s.created),
        ("skipped", s.skipped),
        ("rebuilt", s.rebuilt),
        ("drifted", s.drifted),
        ("failed", s.failed),
    ];
    e.family(
        "o2o_db_create_indexes_indexes",
        Kind::Gauge,
        "Managed indexes by how the run (or dry run) left them.",
        counts
            .iter()
            .map(|(status, n)| (vec![("status", (*status).to_string())], *n as f64))
            .collect(),
    );
    let labels = |i: &IndexResult| -> Labels {
        vec![
            ("table", i.table.clone()),
            ("index", i.name.clone()),
            ("status", status_name(i)),
        ]
    };
    e.family(
        "o2o_db_create_indexes_index_status",
        Kind::Gauge,
        "1 for each managed index, labelled with its status in the run.",
        r.indexes.iter().map(|i| (labels(i), 1.0)).collect(),
    );
    e.family(
        "o2o_db_create_indexes_index_build_seconds",
        Kind::Gauge,
        "How long the index's build (or drop and build) took in the run.",
        r.indexes
            .iter()
            .filter(|i| i.duration_ms > 0.0)
            .map(|i| (labels(i), seconds(i.duration_ms)))
            .collect(),
    );
    e.family(
        "o2o_db_create_indexes_index_size_bytes",
        Kind::Gauge,
        "The index's size after the run.",
        r.indexes
            .iter()
            .filter(|i| i.size_bytes > 0)
            .map(|i| (labels(i), i.size_bytes as f64))
            .collect(),
    );
    e.family(
        "o2o_db_create_indexes_interrupted",
        Kind::Gauge,
        "1 when a signal stopped the run.",
        vec![(vec![], flag(r.interrupted))],
    );
    e.family(
        "o2o_db_create_indexes_dry_run",
        Kind::Gauge,
        "1 when the run only planned (--dry-run).",
        vec![(vec![], flag(r.dry_run))],
    );
    e.family(
        "o2o_db_create_indexes_replica_ready",
        Kind::Gauge,
        "--wait-replicas: 1 when the replica replayed past the builds and has every managed index.",
        r.replicas
            .iter()
            .map(|rep| (vec![("replica", rep.name.clone())], flag(!rep.flagged())))
            .collect(),
    );
    w.write_all(e.into_string().as_bytes())?;
    Ok(())
}

/// The status as JSON spells it: `not_started`, `would_create`.
fn status_name(i: &IndexResult) -> String {
    serde_json::to_value(i.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
