//! The table and its managed indexes: the table has what the index file needs
//! (schema), and every managed index is there, valid, ready and defined as the
//! file says, and no other index of the table is INVALID (indexes), with the
//! exact SQL that repairs it when not.

use super::context::Ctx;
use super::redundancy::drop_fix;
use super::report::IndexFigures;
use super::Verdict;
use crate::catalog::indexes::{inspect_table, Inspection, LiveIndex, State};
use crate::catalog::partitions::{Cover, PartitionCover, INDEX_TREE_SCANS};
use crate::catalog::shapes;
use crate::db::PgContext;
use crate::ddl::plan::replace_sql;
use crate::ident::{quote_ident, quote_qualified};
use crate::sqlfiles::IndexSpec;
use anyhow::Result;
use postgres::types::Type;

/// schema: the managed table exists and takes every managed index (its
/// access method, columns and expressions), checked without writing anything
/// (catalog::shapes), so it works for read-only roles and on standbys.
pub fn schema(ctx: &mut Ctx) -> Result<Verdict> {
    let set = ctx.index_set()?.clone();
    let wanted = set.table().qualified_table();
    let row = ctx.client()?.query_typed_opt(
        "SELECT c.relkind::text, \
                (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
         FROM pg_class c WHERE c.oid = to_regclass($1)",
        &[(&wanted, Type::TEXT)],
    )?;
    let Some(row) = row else {
        return Ok(Verdict::fail(
            format!(
                "table {wanted} does not exist (the indexes of {} are on it)",
                set.origin
            ),
            ctx.on_primary(
                "create it from sql/schema.sql (psql -f sql/schema.sql), or on a test database: o2o-db seed --create-schema"
                    .into(),
            ),
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
    let problems = shapes::refused(ctx.client()?, &set.indexes, &table.qualified())?
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
        ctx.on_primary(format!(
            "add the missing columns to {} (see sql/schema.sql), or correct the index file at the lines named",
            table.qualified()
        )),
    ))
}

/// indexes: each managed index is present, valid, ready and defined as the
/// file says (judged by the server's own rendering, see catalog::indexes).
/// Every repair is DDL: on a standby it is given for the primary.
pub fn indexes(ctx: &mut Ctx) -> Result<Verdict> {
    let verdict = judge_indexes(ctx)?;
    Ok(Verdict {
        fix: verdict.fix.map(|fix| ctx.on_primary(fix)),
        ..verdict
    })
}

fn judge_indexes(ctx: &mut Ctx) -> Result<Verdict> {
    let standby = ctx.standby;
    let set = ctx.index_set()?.clone();
    let table = ctx.table()?;
    let Inspection {
        managed: live,
        unmanaged_invalid: strays,
        tree,
    } = inspect_table(ctx.client()?, &set)?;
    ctx.live_indexes = Some(live.clone());
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut fixes = Vec::new();
    for (index, spec) in live.iter().zip(&set.indexes) {
        if let (State::Missing, Some(twin)) = (&index.state, &index.served_by) {
            notes.push(format!(
                "{}: served by {twin}, an index of the same definition under another name",
                index.name
            ));
            fixes.push(format!(
                "ALTER INDEX {}.{} RENAME TO {};  -- so the managed name finds it",
                quote_ident(&table.schema),
                quote_ident(twin),
                quote_ident(&index.name)
            ));
        } else if let Some((problem, fix)) = diagnose(index, spec) {
            // A standby cannot see the primary's builds: an INVALID index
            // there may be one still being built on the primary.
            let unfinished = matches!(index.state, State::Invalid | State::Incomplete);
            if standby && unfinished {
                notes.push(format!(
                    "{problem}\n  (this standby cannot see builds on the primary: a CREATE INDEX CONCURRENTLY may still be running there; verify the primary)"
                ));
            } else {
                problems.push(problem);
            }
            fixes.extend(fix);
        }
    }
    for stray in &strays {
        problems.push(format!(
            "{}: INVALID and not in the managed set: it costs every write and serves no read",
            stray.name
        ));
        let drop = drop_fix(
            tree.is_some(),
            &quote_qualified(Some(&table.schema), &stray.name),
        );
        fixes.push(format!(
            "{drop}  -- then rebuild it if it is wanted: {}",
            stray.definition
        ));
    }
    let matching = live.len() - problems.len().min(live.len()) - notes.len();
    if problems.is_empty() && notes.is_empty() {
        let everywhere = tree.as_ref().map_or(String::new(), |t| {
            format!(", attached on all {} partitions", t.partitions.len())
        });
        return Ok(Verdict::pass(format!(
            "all {} managed indexes present, valid and as defined in {}{everywhere}",
            live.len(),
            set.origin
        )));
    }
    let mut lines = problems.clone();
    lines.extend(notes);
    let detail = format!(
        "{matching} of {} managed indexes as defined in {}; {} not:\n{}",
        live.len(),
        set.origin,
        lines.len(),
        lines.join("\n")
    );
    let fix = if fixes.is_empty() {
        "wait for the running builds to finish, then run verify again".to_string()
    } else {
        fixes.join("\n")
    };
    if problems.is_empty() {
        return Ok(Verdict::warn(detail, fix));
    }
    Ok(Verdict::fail(detail, fix))
}

/// What is wrong with one index and the statements that repair it (none while
/// a build is still running: it may yet succeed).
fn diagnose(index: &LiveIndex, spec: &IndexSpec) -> Option<(String, Vec<String>)> {
    if let Some(covers) = &index.partitions {
        return diagnose_partitioned(index, covers);
    }
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
        State::Incomplete | State::Invalid => Some((
            format!(
                "{}: INVALID ({}): left behind by a failed CREATE INDEX CONCURRENTLY; it costs writes and serves no query",
                index.name,
                if index.valid { "not ready" } else { "indisvalid = false" }
            ),
            rebuild(),
        )),
        // Built first, swapped in once valid: never a moment with neither.
        State::Drifted => Some((
            format!(
                "{}: drifted:\n  server has: {}\n  file wants: {}",
                index.name,
                index.live.as_deref().unwrap_or("?"),
                index.expected
            ),
            replace_sql(spec)
                .into_iter()
                .map(|sql| format!("{sql};"))
                .collect(),
        )),
    }
}

/// What is wrong with one index of a partitioned table, partition by
/// partition; the repair is create-indexes' (its --dry-run prints the SQL:
/// one statement per partition would swamp the report).
fn diagnose_partitioned(
    index: &LiveIndex,
    covers: &[PartitionCover],
) -> Option<(String, Vec<String>)> {
    let (done, total) = (covers.iter().filter(|c| c.done()).count(), covers.len());
    let name = &index.name;
    let repair = |how: &str| {
        vec![format!(
            "o2o-db create-indexes{how}  -- --dry-run prints its SQL"
        )]
    };
    let problem = match index.state {
        State::Matches if done == total => return None,
        State::Missing => {
            return Some((
                format!("{name}: missing (on the table and its {total} partitions)"),
                repair(""),
            ))
        }
        State::Drifted => {
            return Some((
                format!(
                    "{name}: drifted:\n  server has: {}\n  file wants: {}",
                    index.live.as_deref().unwrap_or("?"),
                    index.expected
                ),
                repair(" --replace-drifted  # builds the new index on every partition, then swaps; the old one's DROP takes ACCESS EXCLUSIVE on the table and its partitions for a moment"),
            ))
        }
        State::Invalid if index.building => {
            return Some((format!("{name}: not valid yet: a build of it is running"), vec![]))
        }
        _ => format!("{name}: INVALID until every partition has it attached: {done} of {total} partitions done"),
    };
    let lines: Vec<String> = covers
        .iter()
        .filter(|c| !c.done())
        .map(|c| {
            let p = &c.partition;
            match &c.cover {
                Cover::Missing => format!("  {p}: missing"),
                Cover::Unattached { index } => {
                    format!("  {p}: {index} has the definition but is not attached")
                }
                Cover::Leftover { index } => {
                    format!("  {p}: {index} is INVALID (a failed build's leftover)")
                }
                Cover::Drifted { index, definition } => {
                    format!("  {p}: drifted: {index} is {definition}")
                }
                Cover::Building { index } => format!("  {p}: {index} is being built right now"),
                Cover::Attached { index, .. } => format!("  {p}: {index} is attached but INVALID"),
            }
        })
        .collect();
    Some((format!("{problem}:\n{}", lines.join("\n")), repair("")))
}

/// Per managed index what the indexes check saw, with its scans, and the
/// table's last ANALYZE age: the figures `--format prometheus` exports.
/// Empty when the indexes check did not run.
pub fn figures(ctx: &mut Ctx) -> Result<(Vec<IndexFigures>, Option<f64>)> {
    let (Some(live), Some(table)) = (ctx.live_indexes.clone(), ctx.resolved_table().cloned())
    else {
        return Ok((Vec::new(), None));
    };
    let qualified = table.qualified();
    let client = ctx.client()?;
    let scans: std::collections::HashMap<String, i64> = client
        .query_typed(
            format!(
                "SELECT c.relname::text, {INDEX_TREE_SCANS} FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE i.indrelid = to_regclass($1)"
            )
            .as_str(),
            &[(&qualified, Type::TEXT)],
        )
        .pg_context("reading the indexes' scan counters")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let age: Option<f64> = client
        .query_typed_opt(
            "SELECT extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze))::float8 \
             FROM pg_stat_user_tables WHERE relid = to_regclass($1)",
            &[(&qualified, Type::TEXT)],
        )
        .pg_context("reading when the table was analyzed")?
        .and_then(|r| r.get(0));
    let shown = format!("{}.{}", table.schema, table.name);
    let indexes = live
        .iter()
        .map(|l| IndexFigures {
            name: l.name.clone(),
            table: shown.clone(),
            exists: l.state != State::Missing,
            valid: l.valid && l.ready,
            matches: l.state == State::Matches,
            size_bytes: l.size_bytes,
            scans: scans.get(&l.name).copied(),
        })
        .collect();
    Ok((indexes, age))
}
