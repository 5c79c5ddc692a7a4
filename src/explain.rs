//! What a plan says about the managed table: EXPLAIN (FORMAT JSON) of a suite
//! query with bound parameters, and a walk of that document naming the
//! indexes it reads the table through, its sequential scans and the
//! partitions left after pruning. verify's planner check and benchmark's
//! pruning figures read plans the same way.

use crate::catalog::partitions::Relations;
use crate::db::{read_only, PgContext};
use crate::params::{as_sql_params, ParamRow, RawValue};
use crate::sqlfiles::QuerySpec;
use anyhow::Result;
use postgres::Client;
use serde_json::Value;
use std::collections::HashSet;

/// The plan of `query` for `params`, planned in a READ ONLY transaction and
/// never run.
pub fn plan(client: &mut Client, query: &QuerySpec, params: &ParamRow) -> Result<Value> {
    explained(client, query, params, false)
}

/// The plan the planner makes when it may not scan the table sequentially
/// (`enable_seqscan = off` for that transaction only): the best plan through
/// an index, and its cost, to hold against the one it chose.
pub fn plan_without_seqscan(
    client: &mut Client,
    query: &QuerySpec,
    params: &ParamRow,
) -> Result<Value> {
    explained(client, query, params, true)
}

fn explained(
    client: &mut Client,
    query: &QuerySpec,
    params: &ParamRow,
    no_seqscan: bool,
) -> Result<Value> {
    let explain = format!("EXPLAIN (FORMAT JSON) {}", query.sql);
    let row = read_only::run(client, |tx| {
        if no_seqscan {
            tx.batch_execute("SET LOCAL enable_seqscan = off")?;
        }
        tx.query_one(explain.as_str(), &as_sql_params(params))
    })
    .with_pg_context(|| format!("EXPLAIN of query {}", query.name))?;
    let raw: RawValue = row.get(0);
    Ok(serde_json::from_slice(
        raw.bytes.as_deref().unwrap_or(b"null"),
    )?)
}

/// The plan's estimated total cost.
pub fn total_cost(explain: &Value) -> Option<f64> {
    explain.get(0)?.get("Plan")?.get("Total Cost")?.as_f64()
}

/// How a plan reads one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Sequential scans of the table or its partitions (parallel ones included).
    pub seq_scans: usize,
    /// Indexes the plan reads the table through, in plan order, without
    /// repeats; a partition's index is named by the table's index it is attached to.
    pub indexes: Vec<String>,
    /// The partitions the plan reads (after pruning), when it reads any.
    pub partitions: HashSet<String>,
}

/// Walks an EXPLAIN (FORMAT JSON) document and reports how it reaches the table.
pub fn access(explain: &Value, table: &Relations) -> Access {
    let mut acc = Access::default();
    let roots = explain.as_array().map(Vec::as_slice).unwrap_or_default();
    for root in roots {
        if let Some(plan) = root.get("Plan") {
            walk(plan, table, false, &mut acc);
        }
    }
    acc
}

fn walk(node: &Value, table: &Relations, in_bitmap_of_table: bool, acc: &mut Access) {
    let kind = node.get("Node Type").and_then(Value::as_str).unwrap_or("");
    let relation = node.get("Relation Name").and_then(Value::as_str);
    let on_table = relation.is_some_and(|r| table.covers(r));
    if let Some(r) = relation.filter(|r| table.partitions.contains(*r)) {
        acc.partitions.insert(r.to_string());
    }
    let index = node
        .get("Index Name")
        .and_then(Value::as_str)
        .map(|i| table.root_index(i));
    match kind {
        "Seq Scan" if on_table => acc.seq_scans += 1,
        "Index Scan" | "Index Only Scan" if on_table => note(index, acc),
        // A bitmap index scan names no relation; its Bitmap Heap Scan parent does.
        "Bitmap Index Scan" if in_bitmap_of_table => note(index, acc),
        _ => {}
    }
    let bitmap = in_bitmap_of_table || (kind == "Bitmap Heap Scan" && on_table);
    let children = node.get("Plans").and_then(Value::as_array);
    for child in children.map(Vec::as_slice).unwrap_or_default() {
        walk(child, table, bitmap, acc);
    }
}

fn note(index: Option<&str>, acc: &mut Access) {
    if let Some(name) = index {
        if !acc.indexes.iter().any(|i| i == name) {
            acc.indexes.push(name.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_index_and_seq_scans_of_the_table() {
        let bitmap = json!([{"Plan": {"Node Type": "Aggregate", "Plans": [
            {"Node Type": "Bitmap Heap Scan", "Relation Name": "orders", "Plans": [
                {"Node Type": "BitmapAnd", "Plans": [
                    {"Node Type": "Bitmap Index Scan", "Index Name": "idx_a"},
                    {"Node Type": "Bitmap Index Scan", "Index Name": "idx_b"}]}]}]}}]);
        assert_eq!(
            access(&bitmap, &Relations::single("orders")),
            Access {
                seq_scans: 0,
                indexes: vec!["idx_a".into(), "idx_b".into()],
                partitions: HashSet::new(),
            }
        );
        // On a partitioned table: partitions' scans count, named by the managed index.
        let pruned = json!([{"Plan": {"Node Type": "Append", "Plans": [
            {"Node Type": "Index Scan", "Relation Name": "orders_2025_03", "Index Name": "idx_a__orders_2025_03"},
            {"Node Type": "Bitmap Heap Scan", "Relation Name": "orders_2025_04", "Plans": [
                {"Node Type": "Bitmap Index Scan", "Index Name": "orders_2025_04_store_name_idx"}]},
            {"Node Type": "Seq Scan", "Relation Name": "stores"}]}}]);
        let rels = Relations {
            table: "orders".into(),
            partitions: ["orders_2025_03", "orders_2025_04", "orders_2025_05"]
                .map(String::from)
                .into(),
            index_root: [
                ("idx_a__orders_2025_03", "idx_a"),
                ("orders_2025_04_store_name_idx", "idx_a"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .into(),
        };
        let acc = access(&pruned, &rels);
        assert_eq!(acc.indexes, ["idx_a"]);
        assert_eq!(acc.seq_scans, 0);
        assert_eq!(acc.partitions.len(), 2);
        let mixed = json!([{"Plan": {"Node Type": "Nested Loop", "Plans": [
            {"Node Type": "Index Only Scan", "Relation Name": "orders", "Index Name": "idx_c"},
            {"Node Type": "Seq Scan", "Relation Name": "orders", "Parallel Aware": true},
            {"Node Type": "Seq Scan", "Relation Name": "stores"},
            {"Node Type": "Index Scan", "Relation Name": "stores", "Index Name": "stores_pkey"}]}}]);
        let acc = access(&mixed, &Relations::single("orders"));
        assert_eq!(acc.seq_scans, 1);
        assert_eq!(acc.indexes, ["idx_c"]);
        assert_eq!(
            access(&json!(null), &Relations::single("orders")),
            Access::default()
        );
    }
}
