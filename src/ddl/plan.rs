//! What to do with each managed index, decided from its state on the server
//! (by definition, not by name), and the statements that do it.

pub mod partitioned;

use super::executor::{Cleanup, Step, Task};
use crate::catalog::indexes::{LiveIndex, State};
use crate::ident::quote_ident;
use crate::sqlfiles::names::replacement_name;
use crate::sqlfiles::IndexSpec;
use std::collections::HashSet;

/// The decision for one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Missing: build it.
    Create,
    /// Present, valid, defined as expected.
    Skip,
    /// Missing under its name, but an index of exactly its definition exists
    /// under another name: a second copy would only cost writes.
    Twin,
    /// INVALID (a failed concurrent build) and not being built: drop it, build again.
    Rebuild,
    /// Defined differently and --replace-drifted: build it as defined under a
    /// temporary name, then swap (drop the old one, rename the new one).
    Replace,
    /// Defined differently: report both definitions, touch nothing.
    LeaveDrifted,
    /// On a partitioned table: defined as expected but INVALID, because some
    /// partitions lack an attached index of it: build and attach only those.
    Complete,
    /// INVALID but a build of it is running in another session right now.
    Busy,
    /// The name is taken by an index of another table: not ours to drop.
    Foreign,
}

/// One managed index with its state and the decision.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The spec, qualified with the schema the server resolved the table in.
    pub spec: IndexSpec,
    pub live: LiveIndex,
    pub action: Action,
}

/// Decides for each index; `specs` and `live` are in the same order;
/// `on_table` holds the oids of the managed table's indexes.
pub fn decide(
    specs: &[IndexSpec],
    live: Vec<LiveIndex>,
    on_table: &HashSet<u32>,
    replace_drifted: bool,
) -> Vec<Planned> {
    specs
        .iter()
        .zip(live)
        .map(|(spec, live)| {
            let foreign = live.oid.is_some_and(|oid| !on_table.contains(&oid));
            let action = match (&live.state, live.building) {
                _ if foreign => Action::Foreign,
                (State::Missing, _) if live.served_by.is_some() => Action::Twin,
                (State::Missing, _) => Action::Create,
                (State::Matches, _) => Action::Skip,
                (State::Invalid, true) => Action::Busy,
                (State::Invalid, false) => Action::Rebuild,
                (State::Incomplete, _) => Action::Complete,
                (State::Drifted, _) if replace_drifted => Action::Replace,
                (State::Drifted, _) => Action::LeaveDrifted,
            };
            Planned {
                spec: spec.clone(),
                live,
                action,
            }
        })
        .collect()
}

/// The statement that builds `spec`. A failed concurrent build leaves an
/// INVALID index behind, which its cleanup drops; a plain one rolls back.
fn build_step(spec: &IndexSpec, concurrently: bool) -> Step {
    Step {
        cleanup: concurrently.then(|| Cleanup {
            index: spec.qualified_name(),
            drop_sql: spec.drop_sql(true),
            replaces: None,
        }),
        creates: Some(spec.qualified_name()),
        ..Step::plain(spec.create_sql(concurrently))
    }
}

/// The statement that drops `spec` concurrently, and undoes nothing on failure
/// (an index a failed concurrent drop leaves INVALID is rebuilt by the next run).
pub fn drop_step(spec: &IndexSpec) -> Step {
    Step::plain(spec.drop_sql(true))
}

/// The steps that replace `spec`'s index with its file definition: build the
/// new one under a temporary name, drop the old one once the new one is valid,
/// rename the new one into place. A failed build or drop leaves the old index
/// untouched and drops the replacement.
pub fn replace_steps(spec: &IndexSpec, concurrently: bool) -> Vec<Step> {
    let new = IndexSpec {
        name: replacement_name(&spec.name),
        ..spec.clone()
    };
    vec![
        // What an earlier, interrupted replace may have left under the temporary name.
        drop_step(&new),
        build_step(&new, concurrently),
        Step {
            cleanup: Some(Cleanup {
                index: new.qualified_name(),
                drop_sql: new.drop_sql(true),
                replaces: Some(spec.qualified_name()),
            }),
            ..Step::plain(spec.drop_sql(true))
        },
        Step::plain(rename_sql(&new, &spec.name)),
    ]
}

/// `ALTER INDEX index RENAME TO name`: the swap's last step.
pub fn rename_sql(index: &IndexSpec, name: &str) -> String {
    format!(
        "ALTER INDEX {} RENAME TO {}",
        index.qualified_name(),
        quote_ident(name)
    )
}

/// The SQL of a concurrent replace, for a DBA to run by hand.
pub fn replace_sql(spec: &IndexSpec) -> Vec<String> {
    replace_steps(spec, true)
        .into_iter()
        .map(|s| s.sql)
        .collect()
}

impl Planned {
    /// The statements that carry out the decision, in order. Drops are always
    /// concurrent: a plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the table.
    pub fn steps(&self, concurrently: bool) -> Vec<Step> {
        match self.action {
            Action::Create => vec![build_step(&self.spec, concurrently)],
            // An INVALID index serves nothing: dropping it first loses nothing.
            Action::Rebuild => vec![drop_step(&self.spec), build_step(&self.spec, concurrently)],
            Action::Replace => replace_steps(&self.spec, concurrently),
            // Only a partitioned table's index is incomplete: see partitioned::work.
            Action::Complete => Vec::new(),
            Action::Skip | Action::Twin | Action::LeaveDrifted | Action::Busy | Action::Foreign => {
                Vec::new()
            }
        }
    }

    /// The work for a build session, if there is any.
    pub fn task(&self, id: usize, concurrently: bool) -> Option<Task> {
        let steps = self.steps(concurrently);
        (!steps.is_empty()).then(|| Task {
            id,
            name: self.spec.name.clone(),
            steps,
            table: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlfiles::IndexSet;

    fn live(state: State, building: bool) -> LiveIndex {
        LiveIndex {
            state: state.clone(),
            building,
            oid: (state != State::Missing).then_some(7),
            ..LiveIndex::missing("idx_orders_scene", String::new())
        }
    }

    #[test]
    fn decisions_follow_the_state() {
        let set = IndexSet::parse(
            "CREATE INDEX idx_orders_scene ON public.orders (scene);",
            "x.sql",
        )
        .unwrap();
        let spec = &set.indexes[..];
        let ours = HashSet::from([7]);
        let one = |s, b, r| decide(spec, vec![live(s, b)], &ours, r)[0].action;
        assert_eq!(one(State::Missing, false, false), Action::Create);
        assert_eq!(one(State::Matches, false, false), Action::Skip);
        assert_eq!(one(State::Invalid, false, false), Action::Rebuild);
        assert_eq!(one(State::Invalid, true, false), Action::Busy);
        assert_eq!(one(State::Drifted, false, false), Action::LeaveDrifted);
        assert_eq!(one(State::Drifted, false, true), Action::Replace);
        // Under a managed name on another table: never dropped, whatever its state.
        let elsewhere = HashSet::from([8]);
        for state in [State::Drifted, State::Invalid] {
            let p = &decide(spec, vec![live(state, false)], &elsewhere, true)[0];
            assert_eq!(p.action, Action::Foreign);
            assert!(p.steps(true).is_empty());
        }

        let rebuild = &decide(spec, vec![live(State::Invalid, false)], &ours, false)[0];
        let sql: Vec<String> = rebuild.steps(true).into_iter().map(|s| s.sql).collect();
        assert_eq!(
            sql,
            [
                "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_scene\"",
                "CREATE INDEX CONCURRENTLY \"idx_orders_scene\" ON \"public\".\"orders\" (scene)"
            ]
        );
        let steps = rebuild.steps(false);
        assert_eq!(
            steps[1].sql,
            "CREATE INDEX \"idx_orders_scene\" ON \"public\".\"orders\" (scene)"
        );
        assert!(steps[1].cleanup.is_none());
        assert!(
            decide(spec, vec![live(State::Matches, false)], &ours, false)[0]
                .task(0, true)
                .is_none()
        );
    }
}
