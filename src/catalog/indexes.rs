//! What the server has for each managed index: missing, matching, INVALID or
//! drifted, judged by definition (catalog::shapes) without writing anything.
//! Shared by create-indexes (what to do) and verify (what to report).

use crate::catalog::partitions::{self, PartitionCover, Tree};
use crate::catalog::shapes::{self, TableIndex};
use crate::db::describe_pg_error;
use crate::db::PgContext;
use crate::ident::quote_qualified;
use crate::sqlfiles::names::replacement_name;
use crate::sqlfiles::shape::parse_definition;
use crate::sqlfiles::{IndexSet, IndexSpec};
use anyhow::{anyhow, Result};
use postgres::types::Type;
use postgres::Client;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The state of one managed index on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No index of that name on the table's schema.
    Missing,
    /// Present, valid, ready and defined as expected.
    Matches,
    /// Present but not valid (a failed or running CREATE INDEX CONCURRENTLY).
    Invalid,
    /// Present and valid, but defined differently.
    Drifted,
    /// On a partitioned table: defined as expected, INVALID because a
    /// partition has no index of it attached yet (see `partitions`).
    Incomplete,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveIndex {
    pub name: String,
    pub state: State,
    /// The definition the file asks for, as the server would write it.
    pub expected: String,
    /// The definition on the server (pg_get_indexdef), when present.
    pub live: Option<String>,
    pub valid: bool,
    pub ready: bool,
    /// A CREATE INDEX (CONCURRENTLY) of it is running right now.
    pub building: bool,
    pub size_bytes: i64,
    pub oid: Option<u32>,
    /// Missing under its own name, but an index of the table with exactly
    /// this definition exists under this other name.
    pub served_by: Option<String>,
    /// On a partitioned table: what each partition has of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<PartitionCover>>,
    /// On a partitioned table, when drifted: the replacement's state (what an
    /// interrupted --replace-drifted left under the replacement name).
    #[serde(skip)]
    pub replacement: Option<Replacement>,
}

/// A drifted partitioned index's replacement, built before the swap.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// Its parent index on the table: (oid, valid, defined as the file says).
    pub parent: Option<(u32, bool, bool)>,
    pub partitions: Vec<PartitionCover>,
}

impl LiveIndex {
    /// Index `name` as absent: what the others are built from.
    pub fn missing(name: &str, expected: String) -> LiveIndex {
        LiveIndex {
            name: name.to_string(),
            state: State::Missing,
            expected,
            live: None,
            valid: false,
            ready: false,
            building: false,
            size_bytes: 0,
            oid: None,
            served_by: None,
            partitions: None,
            replacement: None,
        }
    }

    /// (done, total) partitions, on a partitioned table.
    pub fn partitions_done(&self) -> Option<(usize, usize)> {
        self.partitions
            .as_ref()
            .map(|p| (p.iter().filter(|c| c.done()).count(), p.len()))
    }
}

/// The table the set is on, as the server resolves it: (schema, table); None
/// when there is no such table.
pub fn find_table(
    client: &mut Client,
    set: &IndexSet,
) -> Result<Option<(String, String)>, postgres::Error> {
    // The unnamed statement: safe through a pooler sharing connections per transaction.
    Ok(client
        .query_typed_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            &[(&set.table().qualified_table(), Type::TEXT)],
        )?
        .map(|row| (row.get(0), row.get(1))))
}

/// The table the set is on, as the server resolves it: (schema, table); Err
/// when there is no such table.
pub fn resolve_table(client: &mut Client, set: &IndexSet) -> Result<(String, String)> {
    let spec = set.table();
    match find_table(client, set) {
        Ok(Some(table)) => Ok(table),
        Ok(None) => Err(anyhow!(
            "table {} does not exist (indexes from {}); create it first, e.g. `o2o-db seed --create-schema`",
            spec.qualified_table(),
            set.origin
        )),
        Err(e) => Err(match e.as_db_error() {
            Some(db) => anyhow!("looking up table {}: {}", spec.qualified_table(), db.message()),
            None => anyhow!("looking up table {}: {}", spec.qualified_table(), describe_pg_error(&e)),
        }),
    }
}

/// Inspects every index of `set` on the server: one catalog query for the
/// table's indexes, one for the managed names, two EXPLAINs to deparse.
pub fn inspect(client: &mut Client, set: &IndexSet) -> Result<Vec<LiveIndex>> {
    Ok(inspect_table(client, set)?.managed)
}

/// The managed indexes' states, and from the same catalog read the table's
/// other indexes that are INVALID (each costs every write, serves no read).
pub struct Inspection {
    pub managed: Vec<LiveIndex>,
    pub unmanaged_invalid: Vec<TableIndex>,
    /// The partitions, when the table is partitioned.
    pub tree: Option<Tree>,
}

/// [`inspect`], keeping the INVALID indexes outside the set as well.
pub fn inspect_table(client: &mut Client, set: &IndexSet) -> Result<Inspection> {
    let (schema, table) = resolve_table(client, set)?;
    let real = quote_qualified(Some(&schema), &table);
    let on_table = shapes::table_indexes(client, &real)?;
    let wanted = shapes::expected_shapes(client, &set.indexes, &real, &set.origin)?;
    let tree = partitions::tree(client, &real)?;
    let of_partitions = match &tree {
        Some(tree) => shapes::indexes_of(client, &tree.oids(), &real)?,
        None => Vec::new(),
    };
    // A managed name may also be taken by an index of another table in the schema.
    let names: Vec<&str> = set.indexes.iter().map(|i| i.name.as_str()).collect();
    let elsewhere = client
        .query_typed(
            "SELECT c.relname::text, c.oid, pg_get_indexdef(c.oid), pg_relation_size(c.oid) \
             FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = ANY($1) AND n.nspname = $2 AND i.indrelid <> to_regclass($3)",
            &[
                (&names, Type::TEXT_ARRAY),
                (&schema, Type::TEXT),
                (&real, Type::TEXT),
            ],
        )
        .pg_context("cannot read the managed indexes from the catalog")?;
    let mut out = Vec::with_capacity(set.indexes.len());
    for (spec, shape) in set.indexes.iter().zip(wanted) {
        let expected = expected_definition(spec, &real);
        let missing = LiveIndex::missing(&spec.name, expected);
        let found = on_table.iter().find(|i| i.name == spec.name);
        let covers = |name: &str, index: Option<&TableIndex>| {
            tree.as_ref()
                .map(|t| partitions::covers(t, name, index.map(|i| i.oid), &shape, &of_partitions))
        };
        let live = if let Some(index) = found {
            let usable = index.valid && index.ready;
            let state = match &tree {
                // A partitioned index is judged by its definition first: an
                // INVALID one of the right definition only lacks partitions.
                Some(_) if index.shape != shape => State::Drifted,
                Some(_) if usable => State::Matches,
                Some(_) if !index.building => State::Incomplete,
                _ if !usable => State::Invalid,
                _ if index.shape == shape => State::Matches,
                _ => State::Drifted,
            };
            let replacement = (tree.is_some() && state == State::Drifted).then(|| {
                let name = replacement_name(&spec.name);
                let new = on_table.iter().find(|i| i.name == name);
                Replacement {
                    parent: new.map(|i| (i.oid, i.valid && i.ready, i.shape == shape)),
                    partitions: covers(&name, new).unwrap_or_default(),
                }
            });
            LiveIndex {
                state,
                live: Some(index.definition.clone()),
                valid: index.valid,
                ready: index.ready,
                building: index.building,
                size_bytes: index.size_bytes,
                oid: Some(index.oid),
                partitions: covers(&spec.name, Some(index)),
                replacement,
                ..missing
            }
        } else if let Some(row) = elsewhere
            .iter()
            .find(|r| r.get::<_, String>(0) == spec.name)
        {
            // Not ours: plan and verify tell it apart by its oid.
            LiveIndex {
                state: State::Drifted,
                live: Some(row.get(2)),
                valid: true,
                ready: true,
                size_bytes: row.get(3),
                oid: Some(row.get(1)),
                ..missing
            }
        } else {
            let twin = on_table.iter().find(|i| {
                i.valid && i.ready && i.shape == shape && !names.contains(&i.name.as_str())
            });
            LiveIndex {
                served_by: twin.map(|t| t.name.clone()),
                size_bytes: twin.map_or(0, |t| t.size_bytes),
                live: twin.map(|t| t.definition.clone()),
                partitions: covers(&spec.name, None),
                ..missing
            }
        };
        // A partitioned index has no storage of its own: its partitions' indexes are its size.
        let live = match &live.partitions {
            Some(covers) if live.served_by.is_none() => LiveIndex {
                size_bytes: covers.iter().map(|c| c.size_bytes).sum(),
                ..live
            },
            _ => live,
        };
        out.push(live);
    }
    let unmanaged_invalid = on_table
        .into_iter()
        .filter(|i| !(i.valid && i.ready) && set.get(&i.name).is_none())
        .collect();
    Ok(Inspection {
        managed: out,
        unmanaged_invalid,
        tree,
    })
}

/// What the file asks for, laid out as pg_get_indexdef would write it.
fn expected_definition(spec: &IndexSpec, real_table: &str) -> String {
    let rest = parse_definition(&spec.definition)
        .map(|p| p.render())
        .unwrap_or_else(|_| spec.definition.clone());
    format!(
        "CREATE {}INDEX {} ON {real_table} {rest}",
        if spec.unique { "UNIQUE " } else { "" },
        crate::ident::quote_ident(&spec.name)
    )
}

/// The oids of the managed table's indexes: a managed name found elsewhere is not ours.
pub fn indexes_of_table(client: &mut Client, set: &IndexSet) -> Result<HashSet<u32>> {
    let rows = client
        .query_typed(
            "SELECT indexrelid FROM pg_index WHERE indrelid = to_regclass($1)",
            &[(&set.table().qualified_table(), Type::TEXT)],
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "listing the indexes of the table: {}",
                describe_pg_error(&e)
            )
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Valid (and ready) or not, and size, of each index of the set on the managed
/// table now: one catalog query, cheap enough to run after every build.
pub fn built_indexes(
    client: &mut Client,
    set: &IndexSet,
    schema: &str,
) -> Result<HashMap<String, (bool, i64)>, postgres::Error> {
    let names: Vec<&str> = set.indexes.iter().map(|i| i.name.as_str()).collect();
    let rows = client.query_typed(
        "SELECT c.relname::text, i.indisvalid AND i.indisready, pg_relation_size(c.oid) \
         FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid \
         WHERE c.relnamespace = $1::text::regnamespace AND c.relname = ANY($2) \
           AND i.indrelid = to_regclass($3)",
        &[
            (&schema, Type::TEXT),
            (&names, Type::TEXT_ARRAY),
            (&set.table().qualified_table(), Type::TEXT),
        ],
    )?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}
