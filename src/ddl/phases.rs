//! A partitioned table's index work, run in the order its statements depend
//! on: the parent indexes (ON ONLY) on one session, then every partition's
//! build and attach on `--jobs` sessions at once, then, for a replace whose
//! new index turned valid, the swap. A phase's failure for one index keeps
//! that index out of the later phases; the others go on.

use super::executor::{usable, Executor, Observer, RunOutcome, Task};
use super::plan::partitioned::Work;
use postgres::Client;
use std::collections::HashMap;
use std::time::Duration;

/// What became of one managed index's work.
#[derive(Debug, Default, Clone)]
pub struct RowOutcome {
    /// Each failed task: "what: why".
    pub errors: Vec<String>,
    /// Partitions this run built or attached.
    pub built: usize,
    /// The time its statements ran, added up.
    pub duration: Duration,
}

#[derive(Debug, Default)]
pub struct PhasedOutcome {
    pub rows: HashMap<usize, RowOutcome>,
    pub interrupted: bool,
}

/// Runs `works` (each with its report row) and watches them on `control`.
pub fn run(
    executor: &Executor<'_>,
    control: &mut Client,
    observer: &mut dyn Observer,
    works: &[(usize, Work)],
) -> PhasedOutcome {
    let mut out = PhasedOutcome::default();
    let mut ids = Owners::default();
    let one_session = Executor {
        jobs: 1,
        ..*executor
    };

    let structure: Vec<Task> = works
        .iter()
        .filter(|(_, w)| !w.structure.is_empty())
        .map(|(row, w)| ids.task(*row, w.builds.name.clone(), w.structure.clone()))
        .collect();
    // Partition by partition, every index of one before the next: a
    // partition's pages stay in cache across its builds, and --jobs sessions
    // take different partitions (two builds on one table wait for each other).
    let mut partitions: Vec<(usize, String, Vec<_>, String)> = works
        .iter()
        .flat_map(|(row, w)| {
            w.partitions.iter().map(|p| {
                (
                    *row,
                    format!("{} on {}", w.builds.name, p.partition),
                    p.steps.clone(),
                    p.partition.clone(),
                )
            })
        })
        .collect();
    let mut order: Vec<String> = Vec::new();
    for (_, _, _, partition) in &partitions {
        if !order.contains(partition) {
            order.push(partition.clone());
        }
    }
    partitions.sort_by_key(|(_, _, _, p)| order.iter().position(|o| o == p));

    let first = one_session.run(structure, control, observer);
    let mut stopped = record(&mut out, &first, &ids.owner, false);
    if !stopped {
        let tasks: Vec<Task> = partitions
            .into_iter()
            .filter(|(row, _, _, _)| failed(&out, *row).is_none())
            .map(|(row, name, steps, partition)| Task {
                table: Some(partition),
                ..ids.task(row, name, steps)
            })
            .collect();
        let second = executor.run(tasks, control, observer);
        stopped = record(&mut out, &second, &ids.owner, true);
    }
    if !stopped {
        let mut swaps = Vec::new();
        for (row, w) in works.iter().filter(|(_, w)| !w.swap.is_empty()) {
            if failed(&out, *row).is_some() || !w.left.is_empty() {
                continue;
            }
            if usable(control, &w.builds.qualified_name()).ok().flatten() == Some(true) {
                swaps.push(ids.task(*row, format!("{}: swap", w.builds.name), w.swap.clone()));
            } else {
                out.rows.entry(*row).or_default().errors.push(format!(
                    "{} is not valid on every partition yet, so the old index was kept",
                    w.builds.name
                ));
            }
        }
        let third = one_session.run(swaps, control, observer);
        record(&mut out, &third, &ids.owner, false);
    }
    out
}

/// Task ids across the phases, each with its row and name.
#[derive(Default)]
struct Owners {
    owner: HashMap<usize, (usize, String)>,
}

impl Owners {
    fn task(&mut self, row: usize, name: String, steps: Vec<super::executor::Step>) -> Task {
        let id = self.owner.len() + 1;
        self.owner.insert(id, (row, name.clone()));
        Task {
            id,
            name,
            steps,
            table: None,
        }
    }
}

/// The errors of `row` so far, if any.
fn failed(out: &PhasedOutcome, row: usize) -> Option<&Vec<String>> {
    out.rows
        .get(&row)
        .map(|r| &r.errors)
        .filter(|e| !e.is_empty())
}

/// Files a phase's results under their rows; true when the run must stop
/// (interrupted, a lock failure, no session).
fn record(
    out: &mut PhasedOutcome,
    phase: &RunOutcome,
    owner: &HashMap<usize, (usize, String)>,
    builds: bool,
) -> bool {
    for (id, result) in &phase.results {
        let Some((row, name)) = owner.get(id) else {
            continue;
        };
        let entry = out.rows.entry(*row).or_default();
        entry.duration += result.duration;
        match &result.error {
            Some(e) => entry.errors.push(format!("{name}: {e}")),
            None if builds => entry.built += 1,
            None => {}
        }
    }
    let why = if phase.interrupted {
        "interrupted before it started".to_string()
    } else if let Some(blocked) = &phase.stopped_by {
        format!("not started: {blocked} could not get its lock, so the run stopped")
    } else if let Some(e) = &phase.session_error {
        e.clone()
    } else {
        "not started".into()
    };
    for id in &phase.not_started {
        if let Some((row, name)) = owner.get(id) {
            out.rows
                .entry(*row)
                .or_default()
                .errors
                .push(format!("{name}: {why}"));
        }
    }
    out.interrupted |= phase.interrupted;
    phase.interrupted || phase.stopped_by.is_some() || phase.session_error.is_some()
}
