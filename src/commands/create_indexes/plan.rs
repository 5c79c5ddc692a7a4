// What to do with each managed index, decided from its state on the server
// (by definition, not by name), and the statements that do it.

use super::executor::{Cleanup, Step, Task};
use crate::catalog::IndexSpec;
use crate::db::quote_ident;
use crate::index_state::{LiveIndex, State};
use std::collections::HashSet;

/// The decision for one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Missing: build it.
    Create,
    /// Present, valid, defined as expected.
    Skip,
    /// INVALID (a failed concurrent build) and not being built: drop it, build again.
    Rebuild,
    /// Defined differently and --replace-drifted: drop it, build it as defined.
    Replace,
    /// Defined differently: report both definitions, touch nothing.
    LeaveDrifted,
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
                (State::Missing, _) => Action::Create,
                (State::Matches, _) => Action::Skip,
                (State::Invalid, true) => Action::Busy,
                (State::Invalid, false) => Action::Rebuild,
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

/// The index's schema-qualified, quoted name.
pub fn qualified_name(spec: &IndexSpec) -> String {
    match &spec.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&spec.name)),
        None => quote_ident(&spec.name),
    }
}

/// The statement that drops `spec` concurrently, and undoes nothing on failure
/// (an index a failed concurrent drop leaves INVALID is rebuilt by the next run).
pub fn drop_step(spec: &IndexSpec) -> Step {
    Step {
        sql: spec.drop_sql(true),
        cleanup: None,
    }
}

impl Planned {
    /// The statements that carry out the decision, in order. Drops are always
    /// concurrent: a plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the table.
    pub fn steps(&self, concurrently: bool) -> Vec<Step> {
        let create = Step {
            sql: self.spec.create_sql(concurrently),
            // A failed concurrent build leaves an INVALID index behind; a plain one rolls back.
            cleanup: concurrently.then(|| Cleanup {
                index: qualified_name(&self.spec),
                drop_sql: self.spec.drop_sql(true),
            }),
        };
        match self.action {
            Action::Create => vec![create],
            Action::Rebuild | Action::Replace => vec![drop_step(&self.spec), create],
            Action::Skip | Action::LeaveDrifted | Action::Busy | Action::Foreign => Vec::new(),
        }
    }

    /// The work for a build session, if there is any.
    pub fn task(&self, id: usize, concurrently: bool) -> Option<Task> {
        let steps = self.steps(concurrently);
        (!steps.is_empty()).then(|| Task {
            id,
            name: self.spec.name.clone(),
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::IndexSet;

    fn live(state: State, building: bool) -> LiveIndex {
        LiveIndex {
            name: "idx_orders_scene".into(),
            state: state.clone(),
            expected: String::new(),
            live: None,
            valid: false,
            ready: false,
            building,
            size_bytes: 0,
            oid: (state != State::Missing).then_some(7),
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
