// What the server has for each managed index: missing, matching, INVALID or
// drifted. Shared by create-indexes (what to do) and verify (what to report).
//
// Definitions are compared the way the server sees them, not as text: each
// expected definition is built once on an empty temporary copy of the table
// inside a transaction that is rolled back, and pg_get_indexdef of that copy
// is compared with pg_get_indexdef of the live index. So `(date DESC)` and
// `USING btree ("date" DESC NULLS FIRST)` match, and a changed INCLUDE,
// predicate, method or column order does not.

use crate::db::describe_pg_error;
use crate::db::PgContext;
use crate::sqlfiles::{IndexSet, IndexSpec};
use anyhow::{anyhow, bail, Result};
use postgres::Client;
use serde::Serialize;

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
}

/// The table the set is on, as the server resolves it: (schema, table).
pub fn resolve_table(client: &mut Client, set: &IndexSet) -> Result<(String, String)> {
    let spec = set.table();
    let row = client
        .query_one(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            &[&spec.qualified_table()],
        )
        .map_err(|e| match e.as_db_error() {
            Some(db) => anyhow!("looking up table {}: {}", spec.qualified_table(), db.message()),
            None if e.to_string().contains("unexpected number of rows") => anyhow!(
                "table {} does not exist (indexes from {}); create it first, e.g. `o2o-db seed --create-schema`",
                spec.qualified_table(),
                set.origin
            ),
            None => anyhow!("looking up table {}: {}", spec.qualified_table(), describe_pg_error(&e)),
        })?;
    Ok((row.get(0), row.get(1)))
}

/// Inspects every index of `set` on the server.
pub fn inspect(client: &mut Client, set: &IndexSet) -> Result<Vec<LiveIndex>> {
    let (schema, table) = resolve_table(client, set)?;
    let expected = expected_definitions(client, set, &schema, &table)?;
    // One round trip for the whole set.
    let names: Vec<&str> = set.indexes.iter().map(|i| i.name.as_str()).collect();
    let rows = client
        .query(
            "SELECT c.relname::text, c.oid, i.indisvalid, i.indisready, pg_get_indexdef(c.oid), pg_relation_size(c.oid), t.relname::text, \
                    EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid) \
             FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = ANY($1) AND n.nspname = $2",
            &[&names, &schema],
        )
        .pg_context("cannot read the managed indexes from the catalog")?;
    let mut out = Vec::with_capacity(set.indexes.len());
    for (spec, expected) in set.indexes.iter().zip(expected) {
        let row = rows.iter().find(|r| r.get::<_, String>(0) == spec.name);
        let live = match row {
            None => LiveIndex {
                name: spec.name.clone(),
                state: State::Missing,
                expected,
                live: None,
                valid: false,
                ready: false,
                building: false,
                size_bytes: 0,
                oid: None,
            },
            Some(row) => {
                let valid: bool = row.get(2);
                let ready: bool = row.get(3);
                let live_def: String = row.get(4);
                let on_table: String = row.get(6);
                let same = on_table == table && normalize(&live_def) == normalize(&expected);
                let state = if !valid || !ready {
                    State::Invalid
                } else if same {
                    State::Matches
                } else {
                    State::Drifted
                };
                LiveIndex {
                    name: spec.name.clone(),
                    state,
                    expected,
                    live: Some(live_def),
                    valid,
                    ready,
                    building: row.get(7),
                    size_bytes: row.get(5),
                    oid: Some(row.get(1)),
                }
            }
        };
        out.push(live);
    }
    Ok(out)
}

/// The server's own rendering of each spec, as it would be on the real table.
fn expected_definitions(
    client: &mut Client,
    set: &IndexSet,
    schema: &str,
    table: &str,
) -> Result<Vec<String>> {
    let real = format!(
        "{}.{}",
        crate::ident::quote_ident(schema),
        crate::ident::quote_ident(table)
    );
    // Any failure here (a cancel, a lost connection) says what was being done.
    let probing = |e: postgres::Error| {
        anyhow!(
            "cannot compare index definitions on a temporary copy of {real}: {}",
            describe_pg_error(&e)
        )
    };
    let mut tx = client.transaction().map_err(probing)?;
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE o2o_db_probe (LIKE {real}) ON COMMIT DROP"
    ))
    .pg_context("cannot create a temporary table to compare index definitions")?;
    let mut defs = Vec::with_capacity(set.indexes.len());
    for (i, spec) in set.indexes.iter().enumerate() {
        let probe_name = format!("o2o_db_probe_{i}");
        let probe = IndexSpec {
            schema: None,
            table: "o2o_db_probe".into(),
            ..spec.clone()
        };
        tx.batch_execute("SAVEPOINT probe").map_err(probing)?;
        if let Err(e) = tx.batch_execute(&probe.create_sql_named(&probe_name, false)) {
            tx.batch_execute("ROLLBACK TO SAVEPOINT probe")
                .map_err(probing)?;
            bail!(
                "{}:{}: index {} is not valid for table {real}: {}",
                set.origin,
                spec.line,
                spec.name,
                describe_pg_error(&e)
            );
        }
        let def: String = tx
            .query_one(
                "SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = pg_my_temp_schema()",
                &[&probe_name],
            )
            .map_err(probing)?
            .get(0);
        defs.push(rename(&def, &spec.name, &real));
    }
    tx.rollback().map_err(probing)?;
    Ok(defs)
}

/// Rewrites a probe's definition to name the real index and table.
fn rename(def: &str, name: &str, real_table: &str) -> String {
    // "CREATE [UNIQUE ]INDEX o2o_db_probe_N ON pg_temp_3.o2o_db_probe USING ..."
    let (head, rest) = def.split_once(" ON ").unwrap_or((def, ""));
    let unique = head.starts_with("CREATE UNIQUE");
    let rest = rest.split_once(' ').map_or("", |(_, r)| r);
    format!(
        "CREATE {}INDEX {} ON {real_table} {rest}",
        if unique { "UNIQUE " } else { "" },
        crate::ident::quote_ident(name)
    )
}

/// The part of a definition that matters: UNIQUE or not, and everything after the table.
fn normalize(def: &str) -> String {
    let unique = def.starts_with("CREATE UNIQUE");
    let rest = def
        .split_once(" ON ")
        .map(|(_, r)| r)
        .and_then(|r| r.split_once(' ').map(|(_, r)| r))
        .unwrap_or(def);
    format!("{unique}|{}", rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_ignores_names_and_schemas() {
        assert_eq!(
            normalize("CREATE INDEX a ON public.orders USING btree (date DESC)"),
            normalize("CREATE INDEX \"b\" ON \"public\".\"orders\" USING btree (date DESC)")
        );
        assert_ne!(
            normalize("CREATE UNIQUE INDEX a ON public.orders USING btree (date)"),
            normalize("CREATE INDEX a ON public.orders USING btree (date)")
        );
        assert_eq!(
            rename("CREATE INDEX o2o_db_probe_0 ON pg_temp_3.o2o_db_probe USING btree (store_name, date)", "idx", "\"public\".\"orders\""),
            "CREATE INDEX \"idx\" ON \"public\".\"orders\" USING btree (store_name, date)"
        );
    }
}
