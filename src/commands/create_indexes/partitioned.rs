//! create-indexes on a partitioned table: what the report says of each
//! managed index after the phased run (ddl::phases), judged by what the
//! server has then, partition by partition.

use super::report::{IndexResult, Status};
use super::rows::{self, partitions_done};
use crate::catalog::indexes::{self, LiveIndex, State};
use crate::catalog::partitions::Tree;
use crate::ddl::phases::PhasedOutcome;
use crate::ddl::plan::partitioned::Work;
use crate::ddl::plan::{Action, Planned};
use crate::sqlfiles::IndexSet;
use postgres::Client;

/// The notice that says how a partitioned table is indexed.
pub fn describe(tree: &Tree, concurrently: bool) -> String {
    format!(
        "the table is partitioned ({} partitions): each index is made ON ONLY the table, then built {}on each \
         partition and attached to it; it turns valid once every partition has it",
        tree.partitions.len(),
        if concurrently { "CONCURRENTLY " } else { "" }
    )
}

/// `row` with what its work leaves undone, when it does.
pub fn with_left(row: IndexResult, id: usize, works: &[(usize, Work)]) -> IndexResult {
    let left: Vec<&String> = works
        .iter()
        .filter(|(i, _)| *i == id)
        .flat_map(|(_, w)| &w.left)
        .collect();
    if left.is_empty() {
        return row;
    }
    let text = left
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    IndexResult {
        error: Some(match row.error {
            Some(e) => format!("{e}; {text}"),
            None => text,
        }),
        ..row
    }
}

/// One row per managed index, from the server's state after the run.
pub fn result_rows(
    client: &mut Client,
    set: &IndexSet,
    planned: &[Planned],
    works: &[(usize, Work)],
    outcome: &PhasedOutcome,
    table: &str,
    notices: &mut Vec<String>,
) -> Vec<IndexResult> {
    let after = match indexes::inspect(client, set) {
        Ok(after) => Some(after),
        Err(e) => {
            notices.push(format!(
                "could not re-check the indexes after building: {e:#}"
            ));
            None
        }
    };
    planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let now = after.as_ref().and_then(|a| a.get(i));
            let row = match rows::unbuilt_row(p, table) {
                Some(row) => row,
                None => built_row(i, p, now, outcome, table),
            };
            with_left(row, i, works)
        })
        .collect()
}

fn built_row(
    i: usize,
    p: &Planned,
    now: Option<&LiveIndex>,
    outcome: &PhasedOutcome,
    table: &str,
) -> IndexResult {
    let ran = outcome.rows.get(&i).cloned().unwrap_or_default();
    let live = now.unwrap_or(&p.live);
    let complete = now.is_some_and(|n| n.state == State::Matches);
    let status = match (complete, p.action) {
        (false, _) => Status::Failed,
        (true, Action::Create) => Status::Created,
        (true, Action::Complete) => Status::Completed,
        (true, _) => Status::Rebuilt,
    };
    let partitions = partitions_done(live, ran.built);
    let error = (!complete).then(|| {
        let mut why = ran.errors.clone();
        if why.is_empty() {
            why.push(format!("the server has it as {:?} after the run", live.state).to_lowercase());
        }
        let done = partitions.map_or(String::new(), |d| {
            format!("{} of {} partitions done; ", d.done, d.total)
        });
        format!(
            "{done}{}; the next run builds only what is still missing",
            why.join("; ")
        )
    });
    IndexResult {
        status,
        duration_ms: ran.duration.as_secs_f64() * 1000.0,
        size_bytes: live.size_bytes,
        partitions,
        error,
        ..rows::row(&p.spec, table, &p.live.expected, status)
    }
}
