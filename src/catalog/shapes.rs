//! Index definitions compared without writing anything, so verify and
//! `create-indexes --dry-run` work for a role that may only read, under
//! `default_transaction_read_only` and on a hot standby.
//!
//! Both sides are reduced to a [`Shape`]: the table's live indexes from
//! pg_index (method, options, operator classes, collations, and each column
//! or expression as pg_get_indexdef prints it), the managed ones from their
//! file. Every expression of both is then deparsed by the server itself in a
//! read-only `EXPLAIN (VERBOSE)` of a SELECT on the table, so `(date DESC)`
//! and `USING btree ("date" DESC NULLS FIRST)` match, `lower(store_name)` and
//! `lower((store_name)::text)` match, and a changed INCLUDE, predicate, method
//! or column order does not.

use crate::db::{describe_pg_error, read_only, PgContext};
use crate::params::RawValue;
use crate::sqlfiles::shape::{parse_definition, DefinitionParts, KeyPart};
use crate::sqlfiles::IndexSpec;
use anyhow::{anyhow, Result};
use postgres::types::Type;
use postgres::Client;
use serde_json::Value;

/// What makes two indexes answer the same queries the same way: uniqueness
/// and the definition's parts, each expression as the server deparses it and
/// each collation and operator class None when it is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub unique: bool,
    pub parts: DefinitionParts,
}

/// An index of the managed table, as the catalog has it.
#[derive(Debug, Clone)]
pub struct TableIndex {
    pub oid: u32,
    pub name: String,
    pub valid: bool,
    pub ready: bool,
    /// pg_get_indexdef.
    pub definition: String,
    pub size_bytes: i64,
    /// A CREATE INDEX (CONCURRENTLY) of it is running right now.
    pub building: bool,
    pub shape: Shape,
    /// The table it indexes (pg_index.indrelid).
    pub table: u32,
    /// The partitioned index it is attached to, for an index of a partition.
    pub attached_to: Option<u32>,
    /// It backs a constraint (primary key, unique, exclusion).
    pub constraint: bool,
}

/// Every index of `table` (quoted, qualified) with its shape; one catalog
/// query and one EXPLAIN.
pub fn table_indexes(client: &mut Client, table: &str) -> Result<Vec<TableIndex>> {
    let oid: Option<u32> = client
        .query_typed_one("SELECT to_regclass($1)::oid", &[(&table, Type::TEXT)])
        .pg_context("looking up the table")?
        .get(0);
    indexes_of(client, &Vec::from_iter(oid), table)
}

/// Every index of the tables `oids` (the partitions of `deparse_on`, or the
/// table itself) with its shape, each expression deparsed on `deparse_on`
/// (quoted, qualified; partitions have its column names): one catalog query
/// and one EXPLAIN.
pub fn indexes_of(client: &mut Client, oids: &[u32], deparse_on: &str) -> Result<Vec<TableIndex>> {
    let rows = client
        .query_typed(
            "SELECT c.oid, c.relname::text, i.indisvalid, i.indisready, pg_get_indexdef(c.oid), \
                    pg_relation_size(c.oid), \
                    EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid), \
                    i.indisunique, am.amname::text, i.indnkeyatts::int, \
                    coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false), \
                    pg_get_expr(i.indpred, i.indrelid, true), \
                    ARRAY(SELECT pg_get_indexdef(c.oid, k, true) FROM generate_series(1, i.indnatts) k ORDER BY k), \
                    ARRAY(SELECT o.indoption::int FROM unnest(i.indoption::int2[]) WITH ORDINALITY o(indoption, k) ORDER BY o.k), \
                    ARRAY(SELECT CASE WHEN opc.opcdefault THEN NULL ELSE opc.opcname::text END \
                            FROM unnest(i.indclass::oid[]) WITH ORDINALITY u(opc_oid, k) \
                            JOIN pg_opclass opc ON opc.oid = u.opc_oid ORDER BY u.k), \
                    ARRAY(SELECT CASE WHEN u.coll = 0 OR coll.collname = 'default' OR u.coll = a.attcollation \
                                      THEN NULL ELSE coll.collname::text END \
                            FROM unnest(i.indcollation::oid[]) WITH ORDINALITY u(coll, k) \
                            LEFT JOIN pg_collation coll ON coll.oid = u.coll \
                            LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[u.k - 1] \
                            ORDER BY u.k), \
                    i.indrelid, (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = c.oid), \
                    EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
             WHERE i.indrelid = ANY($1::oid[]) ORDER BY c.relname",
            &[(&oids, Type::OID_ARRAY)],
        )
        .pg_context("reading the table's indexes from the catalog")?;
    let mut indexes = Vec::with_capacity(rows.len());
    let mut exprs = Vec::new();
    for row in &rows {
        let nkeys = usize::try_from(row.get::<_, i32>(9)).unwrap_or(0);
        let columns: Vec<String> = row.get(12);
        let options: Vec<i32> = row.get(13);
        let opclasses: Vec<Option<String>> = row.get(14);
        let collations: Vec<Option<String>> = row.get(15);
        let keys = columns
            .iter()
            .take(nkeys)
            .enumerate()
            .map(|(k, expr)| {
                let option = options.get(k).copied().unwrap_or(0);
                KeyPart {
                    expr: expr.clone(),
                    collation: collations.get(k).cloned().flatten(),
                    opclass: opclasses.get(k).cloned().flatten(),
                    // pg_index.indoption: bit 0 DESC, bit 1 NULLS FIRST.
                    desc: option & 1 != 0,
                    nulls_first: option & 2 != 0,
                }
            })
            .collect();
        let shape = Shape {
            unique: row.get(7),
            parts: DefinitionParts {
                method: row.get(8),
                keys,
                include: columns.iter().skip(nkeys).cloned().collect(),
                nulls_not_distinct: row.get(10),
                predicate: row.get(11),
            },
        };
        exprs.extend(expressions(&shape));
        indexes.push(TableIndex {
            oid: row.get(0),
            name: row.get(1),
            valid: row.get(2),
            ready: row.get(3),
            definition: row.get(4),
            size_bytes: row.get(5),
            building: row.get(6),
            shape,
            table: row.get(16),
            attached_to: row.get(17),
            constraint: row.get(18),
        });
    }
    let mut deparsed = deparse(client, deparse_on, &exprs)
        .pg_context("deparsing the table's index expressions")?
        .into_iter();
    for index in &mut indexes {
        replace_expressions(&mut index.shape, &mut deparsed);
    }
    Ok(indexes)
}

/// The shapes the file asks for, deparsed on `table` in one EXPLAIN; an
/// expression the table cannot take is an error naming its file and line.
pub fn expected_shapes(
    client: &mut Client,
    specs: &[IndexSpec],
    table: &str,
    origin: &str,
) -> Result<Vec<Shape>> {
    let mut shapes = Vec::with_capacity(specs.len());
    for spec in specs {
        let parts = parse_definition(&spec.definition)
            .map_err(|e| anyhow!("{origin}:{}: index {}: {e:#}", spec.line, spec.name))?;
        shapes.push(file_shape(spec.unique, parts));
    }
    let exprs: Vec<String> = shapes.iter().flat_map(expressions).collect();
    match deparse(client, table, &exprs) {
        Ok(deparsed) => {
            let mut deparsed = deparsed.into_iter();
            for shape in &mut shapes {
                replace_expressions(shape, &mut deparsed);
            }
            Ok(shapes)
        }
        // One of them is wrong: find which, for its file and line.
        Err(all) => match refused(client, specs, table)?.first() {
            Some((spec, why)) => Err(anyhow!(
                "{origin}:{}: index {} is not valid for table {table}: {why}",
                spec.line,
                spec.name
            )),
            None => Err(anyhow!(
                "comparing index definitions on {table}: {}",
                describe_pg_error(&all)
            )),
        },
    }
}

fn file_shape(unique: bool, parts: DefinitionParts) -> Shape {
    let keys = parts
        .keys
        .into_iter()
        .map(|k| KeyPart {
            // The default operator class named explicitly is still the default.
            opclass: k.opclass.filter(|o| !is_default_opclass_name(o)),
            ..k
        })
        .collect();
    Shape {
        unique,
        parts: DefinitionParts { keys, ..parts },
    }
}

/// The default btree operator classes of the dashboard's column types, which a
/// file may name although the catalog then records the default.
fn is_default_opclass_name(name: &str) -> bool {
    matches!(
        name,
        "text_ops" | "int4_ops" | "int8_ops" | "date_ops" | "timestamp_ops" | "numeric_ops"
    )
}

/// The expressions of a shape, in the order `replace_expressions` reads them back.
fn expressions(shape: &Shape) -> Vec<String> {
    let parts = &shape.parts;
    parts
        .keys
        .iter()
        .map(|k| k.expr.clone())
        .chain(parts.include.iter().cloned())
        .chain(parts.predicate.iter().cloned())
        .collect()
}

fn replace_expressions(shape: &mut Shape, deparsed: &mut impl Iterator<Item = String>) {
    let parts = &mut shape.parts;
    for key in &mut parts.keys {
        key.expr = deparsed.next().unwrap_or_default();
    }
    for col in &mut parts.include {
        *col = deparsed.next().unwrap_or_default();
    }
    if let Some(p) = &mut parts.predicate {
        *p = deparsed.next().unwrap_or_default();
    }
}

/// Each expression as the server deparses it in the output list of a plan on
/// `table`: read-only, and the same deparser for the file's text and the
/// catalog's.
fn deparse(
    client: &mut Client,
    table: &str,
    exprs: &[String],
) -> Result<Vec<String>, postgres::Error> {
    if exprs.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = exprs.iter().map(|e| format!("({e})")).collect();
    let sql = format!(
        "EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT {} FROM {table} LIMIT 0",
        list.join(", ")
    );
    // One statement (the extended protocol takes no more), in a READ ONLY
    // transaction: the file's text is planned, never run.
    let row = read_only::run(client, |tx| tx.query_one(sql.as_str(), &[]))?;
    let raw: RawValue = row.get(0);
    let doc: Value = raw
        .bytes
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    let output = doc
        .get(0)
        .and_then(|d| d.get("Plan"))
        .and_then(|p| p.get("Output"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    // An output list of another length would pair expressions wrongly:
    // compare the texts as written instead (a false "drifted", never a false match).
    if output.len() == exprs.len() {
        Ok(output)
    } else {
        Ok(exprs.to_vec())
    }
}

/// The specs `table` cannot take, each with the server's reason: an unknown
/// access method, or a column or expression the table does not have. Read-only.
pub fn refused<'s>(
    client: &mut Client,
    specs: &'s [IndexSpec],
    table: &str,
) -> Result<Vec<(&'s IndexSpec, String)>> {
    let methods: Vec<String> = client
        .query_typed("SELECT amname::text FROM pg_am WHERE amtype = 'i'", &[])
        .pg_context("reading the index access methods")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut refused = Vec::new();
    for spec in specs {
        let shape = match parse_definition(&spec.definition) {
            Ok(parts) => file_shape(spec.unique, parts),
            Err(e) => {
                refused.push((spec, format!("{e:#}")));
                continue;
            }
        };
        if !methods.contains(&shape.parts.method) {
            refused.push((
                spec,
                format!(
                    "access method \"{}\" does not exist (the server has {})",
                    shape.parts.method,
                    methods.join(", ")
                ),
            ));
        } else if let Err(e) = deparse(client, table, &expressions(&shape)) {
            refused.push((spec, describe_pg_error(&e)));
        }
    }
    Ok(refused)
}
