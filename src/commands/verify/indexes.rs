// The table and its managed indexes: the table has what the index file needs
// (schema), and every managed index is there, valid, ready and defined as the
// file says (indexes), with the exact SQL that repairs it when not.

use super::context::Ctx;
use super::Verdict;
use crate::catalog::indexes::{inspect, LiveIndex, State};
use crate::db::describe_pg_error;
use crate::sqlfiles::IndexSpec;
use anyhow::Result;

/// The empty copy of the table the schema check builds each index on.
const PROBE_TABLE: &str = "o2o_db_schema_probe";

/// schema: the managed table exists and takes every managed index (its
/// columns, expressions and operator classes), tried on an empty temporary
/// copy in a transaction that is rolled back.
pub fn schema(ctx: &mut Ctx) -> Result<Verdict> {
    let set = ctx.index_set()?.clone();
    let wanted = set.table().qualified_table();
    let row = ctx.client()?.query_opt(
        "SELECT c.relkind::text, \
                (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
         FROM pg_class c WHERE c.oid = to_regclass($1)",
        &[&wanted],
    )?;
    let Some(row) = row else {
        return Ok(Verdict::fail(
            format!(
                "table {wanted} does not exist (the indexes of {} are on it)",
                set.origin
            ),
            "create it from sql/schema.sql (psql -f sql/schema.sql), or on a test database: o2o-db seed --create-schema",
        ));
    };
    let (kind, columns): (String, i64) = (row.get(0), row.get(1));
    if kind != "r" && kind != "p" {
        return Ok(Verdict::fail(
            format!("{wanted} is not a table (pg_class.relkind {kind}), so it cannot be indexed"),
            "point the index file at the table itself",
        ));
    }
    let table = ctx.table()?;
    let problems = probe_definitions(ctx, &set.indexes, &table.qualified())?
        .into_iter()
        .map(|(spec, error)| format!("{} ({}:{}): {error}", spec.name, set.origin, spec.line))
        .collect::<Vec<_>>();
    if problems.is_empty() {
        return Ok(Verdict::pass(format!(
            "{}.{}: {columns} columns; it takes all {} managed indexes of {}",
            table.schema,
            table.name,
            set.indexes.len(),
            set.origin
        )));
    }
    Ok(Verdict::fail(
        format!(
            "{}.{} cannot take {} of the {} managed indexes:\n{}",
            table.schema,
            table.name,
            problems.len(),
            set.indexes.len(),
            problems.join("\n")
        ),
        format!(
            "add the missing columns to {} (see sql/schema.sql), or correct the index file at the lines named",
            table.qualified()
        ),
    ))
}

/// Builds each spec on an empty temporary copy of `real_table`; returns the
/// specs the server refused, with its reason. Nothing is left behind.
fn probe_definitions<'s>(
    ctx: &mut Ctx,
    specs: &'s [IndexSpec],
    real_table: &str,
) -> Result<Vec<(&'s IndexSpec, String)>> {
    let mut tx = ctx.client()?.transaction()?;
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {PROBE_TABLE} (LIKE {real_table}) ON COMMIT DROP"
    ))?;
    let mut refused = Vec::new();
    for spec in specs {
        let probe = IndexSpec {
            schema: None,
            table: PROBE_TABLE.into(),
            ..spec.clone()
        };
        // One round trip when the build works; the rollback is skipped when it fails.
        let sql = format!(
            "SAVEPOINT o2o_db_probe; {}; ROLLBACK TO SAVEPOINT o2o_db_probe",
            probe.create_sql_named("o2o_db_schema_probe_index", false)
        );
        if let Err(e) = tx.batch_execute(&sql) {
            tx.batch_execute("ROLLBACK TO SAVEPOINT o2o_db_probe")?;
            refused.push((spec, describe_pg_error(&e)));
        }
    }
    tx.rollback()?;
    Ok(refused)
}

/// indexes: each managed index is present, valid, ready and defined as the
/// file says (judged by the server's own rendering, see catalog::indexes).
pub fn indexes(ctx: &mut Ctx) -> Result<Verdict> {
    let set = ctx.index_set()?.clone();
    let live = inspect(ctx.client()?, &set)?;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for (index, spec) in live.iter().zip(&set.indexes) {
        if let Some((problem, fix)) = diagnose(index, spec) {
            problems.push(problem);
            fixes.extend(fix);
        }
    }
    let matching = live.len() - problems.len();
    if problems.is_empty() {
        return Ok(Verdict::pass(format!(
            "all {} managed indexes present, valid and as defined in {}",
            live.len(),
            set.origin
        )));
    }
    let detail = format!(
        "{matching} of {} managed indexes as defined in {}; {} not:\n{}",
        live.len(),
        set.origin,
        problems.len(),
        problems.join("\n")
    );
    let fix = if fixes.is_empty() {
        "wait for the running builds to finish, then run verify again".to_string()
    } else {
        fixes.join("\n")
    };
    Ok(Verdict::fail(detail, fix))
}

/// What is wrong with one index and the statements that repair it (none while
/// a build is still running: it may yet succeed).
fn diagnose(index: &LiveIndex, spec: &IndexSpec) -> Option<(String, Vec<String>)> {
    let rebuild = || {
        vec![
            format!("{};", spec.drop_sql(true)),
            format!("{};", spec.create_sql(true)),
        ]
    };
    match index.state {
        State::Matches => None,
        State::Missing => Some((
            format!("{}: missing", index.name),
            vec![format!("{};", spec.create_sql(true))],
        )),
        State::Invalid if index.building => Some((
            format!(
                "{}: not valid yet: a CREATE INDEX CONCURRENTLY of it is running",
                index.name
            ),
            vec![],
        )),
        State::Invalid => Some((
            format!(
                "{}: INVALID ({}): left behind by a failed CREATE INDEX CONCURRENTLY; it costs writes and serves no query",
                index.name,
                if index.valid { "not ready" } else { "indisvalid = false" }
            ),
            rebuild(),
        )),
        State::Drifted => Some((
            format!(
                "{}: drifted:\n  server has: {}\n  file wants: {}",
                index.name,
                index.live.as_deref().unwrap_or("?"),
                index.expected
            ),
            rebuild(),
        )),
    }
}
