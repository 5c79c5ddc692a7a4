//! The create-indexes report: one row per managed index and the totals the
//! V8.5 report printed ("总计 11 / 新创建 11 / 已存在 0 / 失败 0"), as a table
//! for a DBA and as JSON for monitoring. Failed and drifted indexes are
//! findings (exit 1).

use super::replicas::ReplicaWait;
use crate::report::{self, Format, Outcome, Report};
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

/// What happened to one index (or, in a dry run, what would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Skipped,
    Rebuilt,
    /// On a partitioned table: was INVALID for want of some partitions'
    /// indexes; those were built (or found) and attached.
    Completed,
    Drifted,
    Failed,
    /// The run stopped (Ctrl-C, a lock failure) before reaching it.
    NotStarted,
    /// Dry run: it would be created.
    WouldCreate,
    /// Dry run: it would be dropped and built again (INVALID, or drifted with --replace-drifted).
    WouldRebuild,
    /// Dry run: the partitions that lack it would get it.
    WouldComplete,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Skipped => "skipped",
            Status::Rebuilt => "rebuilt",
            Status::Completed => "completed",
            Status::Drifted => "drifted",
            Status::Failed => "FAILED",
            Status::NotStarted => "not started",
            Status::WouldCreate => "would create",
            Status::WouldRebuild => "would rebuild",
            Status::WouldComplete => "would complete",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    /// Created, or in a dry run to be created.
    pub created: usize,
    pub skipped: usize,
    /// Rebuilt, or in a dry run to be rebuilt.
    pub rebuilt: usize,
    /// Completed on the partitions that lacked it, or in a dry run to be.
    pub completed: usize,
    pub drifted: usize,
    pub failed: usize,
}

impl Summary {
    pub fn count(indexes: &[IndexResult]) -> Summary {
        let n = |f: &dyn Fn(Status) -> bool| indexes.iter().filter(|i| f(i.status)).count();
        Summary {
            total: indexes.len(),
            created: n(&|s| matches!(s, Status::Created | Status::WouldCreate)),
            skipped: n(&|s| s == Status::Skipped),
            rebuilt: n(&|s| matches!(s, Status::Rebuilt | Status::WouldRebuild)),
            completed: n(&|s| matches!(s, Status::Completed | Status::WouldComplete)),
            drifted: n(&|s| s == Status::Drifted),
            failed: n(&|s| s == Status::Failed),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexResult {
    pub name: String,
    /// schema.table
    pub table: String,
    /// The definition the index file asks for, as the server writes it.
    pub definition: String,
    pub status: Status,
    pub duration_ms: f64,
    pub size_bytes: i64,
    /// The server's message for a failure; for a drifted index, its definition on the server.
    pub error: Option<String>,
    /// On a partitioned table: how many partitions have it attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<PartitionsDone>,
    /// The key columns as written in the file (table only).
    #[serde(skip)]
    pub columns: String,
}

/// Partitions with the index attached and valid, of all, after the run; and
/// how many this run built or attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionsDone {
    pub done: usize,
    pub total: usize,
    pub built: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateIndexesReport {
    pub summary: Summary,
    pub indexes: Vec<IndexResult>,
    /// Nothing was changed; statuses say what would happen.
    pub dry_run: bool,
    /// Stopped by Ctrl-C; the rows say how far it got.
    pub interrupted: bool,
    /// ANALYZE ran on the table after building.
    pub analyzed: bool,
    /// Sessions that would stall a build, and anything else worth knowing.
    pub notices: Vec<String>,
    /// The statements of the plan, in order (each runs on its own, outside a transaction).
    pub sql: Vec<String>,
    /// "CONCURRENTLY, 1 session, lock_timeout 1m, ..." (table only).
    #[serde(skip)]
    pub how: String,
    /// --wait-replicas: each replica after the wait.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaWait>,
}

impl Report for CreateIndexesReport {
    const FORMATS: &'static [Format] = &[Format::Table, Format::Json, Format::Prometheus];

    fn render_prometheus(&self, w: &mut dyn Write) -> Result<()> {
        super::monitoring::prometheus(self, w)
    }

    fn render_table(&self, w: &mut dyn Write) -> Result<()> {
        for notice in &self.notices {
            writeln!(w, "note: {notice}")?;
        }
        let mut t = report::table();
        let partitioned = self.indexes.iter().any(|i| i.partitions.is_some());
        let mut header = vec!["index", "columns", "status"];
        if partitioned {
            header.push("partitions");
        }
        header.extend(["duration ms", "size"]);
        t.set_header(header);
        for i in &self.indexes {
            let mut row = vec![
                i.name.clone(),
                i.columns.clone(),
                i.status.label().to_string(),
            ];
            if partitioned {
                row.push(i.partitions.map_or("-".into(), |p| {
                    format!("{}/{} ({} built)", p.done, p.total, p.built)
                }));
            }
            row.extend([duration_cell(i.duration_ms), size_cell(i.size_bytes)]);
            t.add_row(row);
        }
        writeln!(w, "{t}")?;
        let s = &self.summary;
        let prefix = if self.dry_run {
            "dry run, nothing changed: "
        } else {
            ""
        };
        writeln!(
            w,
            "{prefix}total {} / created {} / skipped {} / rebuilt {}{} / drifted {} / failed {}{}",
            s.total,
            s.created,
            s.skipped,
            s.rebuilt,
            if partitioned {
                format!(" / completed {}", s.completed)
            } else {
                String::new()
            },
            s.drifted,
            s.failed,
            if self.analyzed {
                " (table analyzed)"
            } else {
                ""
            }
        )?;
        for i in self.indexes.iter().filter(|i| i.error.is_some()) {
            let what = match i.status {
                Status::Drifted => "drifted",
                Status::NotStarted => "not started",
                _ => "failed",
            };
            writeln!(w, "{} {what}: {}", i.name, i.error.as_deref().unwrap_or(""))?;
            if i.status == Status::Drifted {
                writeln!(w, "  expected: {}", i.definition)?;
            }
        }
        if self.interrupted {
            writeln!(w, "interrupted: the rows above show how far the run got")?;
        }
        for r in &self.replicas {
            writeln!(w, "{}", replica_line(r, self.indexes.len()))?;
        }
        if self.dry_run {
            write_sql(
                w,
                &format!("the SQL it would run ({})", self.how),
                &self.sql,
            )?;
        }
        Ok(())
    }

    fn outcome(&self) -> Outcome {
        if self.interrupted {
            Outcome::Interrupted
        } else {
            Outcome::from_findings(
                self.summary.failed > 0
                    || self.summary.drifted > 0
                    || self.replicas.iter().any(ReplicaWait::flagged),
            )
        }
    }
}

/// "replica replica1: replayed past the builds in 0.12 s; all 11 managed indexes valid there".
fn replica_line(r: &ReplicaWait, managed: usize) -> String {
    let took = format!("{:.2} s", r.waited_ms / 1000.0);
    match (&r.error, r.replayed) {
        (Some(e), _) => format!("replica {}: could not be waited for: {e}", r.name),
        (None, false) => format!(
            "replica {}: not replayed past the builds after {took}: its reads do not have the new indexes yet",
            r.name
        ),
        (None, true) if r.missing.is_empty() => format!(
            "replica {}: replayed past the builds in {took}; all {managed} managed indexes valid there",
            r.name
        ),
        (None, true) => format!(
            "replica {}: replayed past the builds in {took}, but lacks {}",
            r.name,
            r.missing.join(", ")
        ),
    }
}

/// A duration cell: milliseconds, or "-" for what did not run.
pub fn duration_cell(ms: f64) -> String {
    if ms > 0.0 {
        report::ms(ms)
    } else {
        "-".into()
    }
}

/// A size cell: pg_size_pretty-like, or "-" for nothing.
pub fn size_cell(bytes: i64) -> String {
    if bytes > 0 {
        report::size_pretty(bytes)
    } else {
        "-".into()
    }
}

/// A dry run's statements, ready to paste into psql (one statement each, no transaction).
pub fn write_sql(w: &mut dyn Write, title: &str, sql: &[String]) -> Result<()> {
    if sql.is_empty() {
        return Ok(());
    }
    writeln!(w, "-- {title}:")?;
    for statement in sql {
        writeln!(w, "{statement};")?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod snapshot_tests;
