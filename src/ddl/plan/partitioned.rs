//! The statements for a managed index of a partitioned table, the way
//! PostgreSQL documents building one without blocking writes: the parent
//! index ON ONLY the table (instant, INVALID), an index built CONCURRENTLY on
//! each partition and attached to it; the parent turns valid when the last
//! partition is attached. A partition that is itself partitioned gets an ON
//! ONLY index attached the same way, and its own partitions below it.
//!
//! Work is planned from what each partition has (catalog::partitions), so a
//! run after a failure builds only what is still missing, and an index of
//! the definition already on a partition is attached, not built again.

use super::{build_step, drop_step, rename_sql, Action, Planned};
use crate::catalog::partitions::{Cover, PartitionCover, Tree};
use crate::ddl::executor::Step;
use crate::ident::quote_qualified;
use crate::sqlfiles::names::{partition_index_name, replacement_name};
use crate::sqlfiles::IndexSpec;
use std::collections::{HashMap, HashSet};

/// The work for one managed index of a partitioned table, in three phases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// First, one session: the ON ONLY parent indexes (the managed one, then
    /// those of partitioned partitions, each attached to its parent). Instant.
    pub structure: Vec<Step>,
    /// Then one task per leaf partition, any number at once: build, attach.
    pub partitions: Vec<PartitionWork>,
    /// Last, for a replace, once the replacement is valid: drop the old
    /// index, rename the new one and its partitions' indexes.
    pub swap: Vec<Step>,
    /// Partitions left as they are, each with why.
    pub left: Vec<String>,
    /// The index the phases build: the managed one, or its replacement.
    pub builds: IndexSpec,
}

/// One leaf partition's steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWork {
    /// `schema.name`.
    pub partition: String,
    pub steps: Vec<Step>,
}

impl Work {
    fn of(builds: &IndexSpec) -> Work {
        Work {
            structure: Vec::new(),
            partitions: Vec::new(),
            swap: Vec::new(),
            left: Vec::new(),
            builds: builds.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.structure.is_empty() && self.partitions.is_empty() && self.swap.is_empty()
    }

    /// The tasks the phases run for it (each a progress line).
    pub fn task_count(&self) -> usize {
        usize::from(!self.structure.is_empty())
            + self.partitions.len()
            + usize::from(!self.swap.is_empty())
    }

    /// Every statement, in the order the phases run them (the dry run's SQL).
    pub fn sql(&self) -> Vec<String> {
        self.structure
            .iter()
            .chain(self.partitions.iter().flat_map(|p| &p.steps))
            .chain(&self.swap)
            .map(|s| s.sql.clone())
            .collect()
    }
}

/// `ALTER INDEX parent ATTACH PARTITION child`: takes SHARE UPDATE EXCLUSIVE
/// on the parent index and ACCESS EXCLUSIVE on the child for a moment.
fn attach(parent: &str, child: &str) -> Step {
    Step::short_lock(format!("ALTER INDEX {parent} ATTACH PARTITION {child}"))
}

/// A partitioned index cannot be dropped concurrently: `DROP INDEX` takes
/// ACCESS EXCLUSIVE on the table and every partition for a moment.
pub fn drop_partitioned(spec: &IndexSpec) -> Step {
    Step::short_lock(spec.drop_sql(false))
}

/// The work `p` needs on `tree`; empty for the actions that build nothing.
pub fn work(p: &Planned, tree: &Tree, concurrently: bool, replace_drifted: bool) -> Work {
    let spec = &p.spec;
    let mut work = Work::of(spec);
    let covers = match p.action {
        Action::Create => {
            work.structure
                .push(Step::short_lock(spec.create_on_only_sql()));
            p.live.partitions.clone().unwrap_or_default()
        }
        Action::Complete => p.live.partitions.clone().unwrap_or_default(),
        Action::Replace => return replace(p, tree, concurrently),
        _ => return work,
    };
    partitions(&mut work, tree, &covers, concurrently, replace_drifted);
    work
}

/// A drifted index replaced: its replacement built (or completed, after an
/// interrupted run) like a new index, then swapped in.
fn replace(p: &Planned, tree: &Tree, concurrently: bool) -> Work {
    let spec = &p.spec;
    let new = IndexSpec {
        name: replacement_name(&spec.name),
        ..spec.clone()
    };
    let mut work = Work::of(&new);
    let replacement = p.live.replacement.clone();
    let covers = match replacement.as_ref().and_then(|r| r.parent) {
        None => {
            work.structure
                .push(Step::short_lock(new.create_on_only_sql()));
            replacement.map(|r| r.partitions).unwrap_or_default()
        }
        Some((_, _, true)) => replacement.map(|r| r.partitions).unwrap_or_default(),
        Some((_, _, false)) => {
            work.left.push(format!(
                "{} is taken by an index of another definition: drop it (`{};`) and run again",
                new.qualified_name(),
                new.drop_sql(false)
            ));
            return work;
        }
    };
    partitions(&mut work, tree, &covers, concurrently, true);
    if !work.left.is_empty() {
        return work;
    }
    // The old index goes only once the new one serves every partition.
    work.swap.push(drop_partitioned(spec));
    work.swap
        .push(Step::short_lock(rename_sql(&new, &spec.name)));
    for (part, cover) in tree.partitions.iter().zip(&covers) {
        let built = partition_index_name(&new.name, &part.name);
        let ours = match &cover.cover {
            Cover::Attached { index, .. } | Cover::Unattached { index } => *index == built,
            _ => true,
        };
        if ours {
            let child = new.on_table(&built, &part.schema, &part.name);
            let renamed = partition_index_name(&spec.name, &part.name);
            work.swap
                .push(Step::short_lock(rename_sql(&child, &renamed)));
        }
    }
    work
}

/// The steps that give each partition in `tree` an attached index of
/// `work.builds`, from what `covers` says each has.
fn partitions(
    work: &mut Work,
    tree: &Tree,
    covers: &[PartitionCover],
    concurrently: bool,
    replace_drifted: bool,
) {
    let spec = work.builds.clone();
    // The table → its index of `spec` (qualified), as planned top-down.
    let mut index_of: HashMap<u32, String> = HashMap::from([(tree.root, spec.qualified_name())]);
    // Partitioned partitions whose index cannot be had: their partitions wait.
    let mut blocked: HashSet<u32> = HashSet::new();
    for (part, cover) in tree.partitions.iter().zip(covers) {
        let shown = part.shown();
        if blocked.contains(&part.parent) {
            blocked.insert(part.oid);
            work.left
                .push(format!("{shown}: waits for its parent partition's index"));
            continue;
        }
        let Some(parent) = index_of.get(&part.parent).cloned() else {
            continue;
        };
        let own = spec.on_table(
            &partition_index_name(&spec.name, &part.name),
            &part.schema,
            &part.name,
        );
        let existing = |index: &str| quote_qualified(Some(&part.schema), index);
        let mut steps = Vec::new();
        match &cover.cover {
            Cover::Attached { index, valid } => {
                index_of.insert(part.oid, existing(index));
                if !valid && !part.partitioned {
                    work.left.push(format!(
                        "{shown}: its index {index} was attached while INVALID, so {} stays INVALID: \
                         drop {} (o2o-db drop-indexes {}) and run again",
                        spec.name, spec.name, spec.name
                    ));
                }
                continue;
            }
            Cover::Building { index } => {
                blocked.insert(part.oid);
                work.left.push(format!(
                    "{shown}: {index} is being built by another session right now; run again once it has finished"
                ));
                continue;
            }
            Cover::Unattached { index } => {
                let index = existing(index);
                index_of.insert(part.oid, index.clone());
                steps.push(attach(&parent, &index));
            }
            Cover::Drifted { index, definition } if !replace_drifted => {
                blocked.insert(part.oid);
                work.left.push(format!(
                    "{shown}: {index} is defined differently ({definition}); --replace-drifted drops it and builds it as defined"
                ));
                continue;
            }
            Cover::Leftover { .. } | Cover::Drifted { .. } | Cover::Missing => {
                if !matches!(cover.cover, Cover::Missing) {
                    // An INVALID leftover, or (with --replace-drifted) an index
                    // under our name that attaches to nothing.
                    steps.push(if part.partitioned {
                        drop_partitioned(&own)
                    } else {
                        drop_step(&own)
                    });
                }
                if part.partitioned {
                    steps.push(Step::short_lock(own.create_on_only_sql()));
                } else {
                    steps.push(build_step(&own, concurrently));
                }
                steps.push(attach(&parent, &own.qualified_name()));
                index_of.insert(part.oid, own.qualified_name());
            }
        }
        if part.partitioned {
            work.structure.extend(steps);
        } else {
            work.partitions.push(PartitionWork {
                partition: shown,
                steps,
            });
        }
    }
}

#[cfg(test)]
mod tests;
