//! The report's rows: what became of each index, told from the plan, the
//! executor's outcome and what the server has after the run; and the report
//! assembled from them.

use super::report::{CreateIndexesReport, IndexResult, PartitionsDone, Status, Summary};
use crate::catalog::indexes::LiveIndex;
use crate::ddl::executor::RunOutcome;
use crate::ddl::plan::{Action, Planned};
use crate::sqlfiles::{IndexSet, IndexSpec};

pub fn assemble(
    indexes: Vec<IndexResult>,
    dry_run: bool,
    interrupted: bool,
    analyzed: bool,
    notices: Vec<String>,
    sql: Vec<String>,
    how: String,
) -> CreateIndexesReport {
    CreateIndexesReport {
        summary: Summary::count(&indexes),
        indexes,
        dry_run,
        interrupted,
        analyzed,
        notices,
        sql,
        how,
        replicas: Vec::new(),
    }
}

pub fn row(spec: &IndexSpec, table: &str, definition: &str, status: Status) -> IndexResult {
    IndexResult {
        name: spec.name.clone(),
        table: table.to_string(),
        definition: definition.to_string(),
        status,
        duration_ms: 0.0,
        size_bytes: 0,
        error: None,
        partitions: None,
        columns: spec.columns.clone(),
    }
}

/// Interrupted before anything was inspected: every index not started.
pub fn not_started(set: &IndexSet, table: &str, why: &str) -> CreateIndexesReport {
    let indexes = set
        .indexes
        .iter()
        .map(|spec| IndexResult {
            error: Some(why.to_string()),
            ..row(spec, table, &spec.create_sql(false), Status::NotStarted)
        })
        .collect();
    assemble(
        indexes,
        false,
        true,
        false,
        Vec::new(),
        Vec::new(),
        String::new(),
    )
}

fn drift_message(live: &LiveIndex) -> String {
    format!(
        "defined differently on the server: {}; --replace-drifted builds it as defined under a temporary name, then swaps it in",
        live.live.as_deref().unwrap_or("?")
    )
}

const BUSY: &str = "INVALID and being built by another session right now; left alone: run again once that build has finished";

/// Rows for statuses that need no build.
pub fn unbuilt_row(p: &Planned, table: &str) -> Option<IndexResult> {
    let base = |status| IndexResult {
        size_bytes: p.live.size_bytes,
        partitions: partitions_done(&p.live, 0),
        ..row(&p.spec, table, &p.live.expected, status)
    };
    match p.action {
        Action::Skip => Some(base(Status::Skipped)),
        Action::Twin => Some(IndexResult {
            error: Some(format!(
                "exists as {}, with the same definition; nothing built (rename it to {} to make the name match)",
                p.live.served_by.as_deref().unwrap_or("?"),
                p.spec.name
            )),
            ..base(Status::Skipped)
        }),
        Action::LeaveDrifted => Some(IndexResult {
            error: Some(drift_message(&p.live)),
            ..base(Status::Drifted)
        }),
        Action::Busy => Some(IndexResult {
            error: Some(BUSY.into()),
            ..base(Status::Failed)
        }),
        Action::Foreign => Some(IndexResult {
            error: Some(format!(
                "the name is taken by an index of another table ({}); left alone: rename one of them",
                p.live.live.as_deref().unwrap_or("?")
            )),
            ..base(Status::Failed)
        }),
        Action::Create | Action::Rebuild | Action::Replace | Action::Complete => None,
    }
}

/// Partitions done of total from `live`, with `built` by this run.
pub fn partitions_done(live: &LiveIndex, built: usize) -> Option<PartitionsDone> {
    live.partitions_done()
        .map(|(done, total)| PartitionsDone { done, total, built })
}

pub fn dry_run_row(p: &Planned, table: &str) -> IndexResult {
    unbuilt_row(p, table).unwrap_or_else(|| {
        let status = match p.action {
            Action::Create => Status::WouldCreate,
            Action::Complete => Status::WouldComplete,
            _ => Status::WouldRebuild,
        };
        IndexResult {
            size_bytes: p.live.size_bytes,
            partitions: partitions_done(&p.live, 0),
            ..row(&p.spec, table, &p.live.expected, status)
        }
    })
}

pub fn result_row(
    id: usize,
    p: &Planned,
    outcome: &RunOutcome,
    after: Option<Option<(bool, i64)>>,
    table: &str,
) -> IndexResult {
    if let Some(done) = unbuilt_row(p, table) {
        return done;
    }
    let base = row(&p.spec, table, &p.live.expected, Status::Failed);
    let Some(result) = outcome.results.get(&id) else {
        let (status, why) = if outcome.interrupted {
            (
                Status::NotStarted,
                "interrupted before it started".to_string(),
            )
        } else if let Some(blocked) = &outcome.stopped_by {
            (
                Status::NotStarted,
                format!("{blocked} could not get its lock (or waited past the statement timeout for an older transaction), so the run stopped before this one: it would wait for the same session; run again once that is gone"),
            )
        } else if let Some(e) = &outcome.session_error {
            (Status::Failed, e.clone())
        } else {
            (
                Status::NotStarted,
                "the run stopped before this one".to_string(),
            )
        };
        return IndexResult {
            status,
            error: Some(why),
            ..base
        };
    };
    let duration_ms = result.duration.as_secs_f64() * 1000.0;
    if let Some(error) = &result.error {
        return IndexResult {
            duration_ms,
            error: Some(error.to_string()),
            ..base
        };
    }
    let status = if p.action == Action::Create {
        Status::Created
    } else {
        Status::Rebuilt
    };
    let problem = match after {
        Some(None) => Some("the build reported success, but the server has no such index now"),
        Some(Some((false, _))) => {
            Some("the build reported success, but the server has it as INVALID")
        }
        _ => None,
    };
    IndexResult {
        status: if problem.is_some() {
            Status::Failed
        } else {
            status
        },
        duration_ms,
        size_bytes: after.flatten().map_or(0, |(_, size)| size),
        error: problem.map(str::to_string),
        ..base
    }
}
