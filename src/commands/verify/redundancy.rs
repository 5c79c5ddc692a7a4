//! redundancy: an index whose key columns are a leading prefix of another
//! valid index of the same kind costs writes and buys nothing, because the
//! longer index answers the same queries. Indexes never scanned since the
//! statistics were reset are listed too, as information: the report's
//! "check regularly whether indexes are used; drop unused ones".

use super::context::Ctx;
use super::Verdict;
use crate::catalog::partitions::{INDEX_TREE_SCANS, INDEX_TREE_SIZE};
use crate::config::{Config, NodeRole};
use crate::ident::quote_qualified;
use anyhow::Result;
use postgres::types::Type;

/// One key column: what it indexes and how (two keys match only if all agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The column name or expression, as pg_get_indexdef renders it.
    pub column: String,
    pub opclass: u32,
    pub collation: u32,
    /// pg_index.indoption: 1 = DESC, 2 = NULLS FIRST.
    pub option: i16,
}

/// A valid index on the table, as far as redundancy is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKeys {
    pub name: String,
    pub method: String,
    /// Unique, primary key or exclusion: it enforces something, so it is never redundant.
    pub constraint: bool,
    pub keys: Vec<Key>,
    pub include: Vec<String>,
    /// The partial index's predicate, "" for none.
    pub predicate: String,
    pub scans: i64,
    pub bytes: i64,
}

/// How `covering` answers the queries of the index it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Forward,
    /// Every key order reversed: a btree read backwards gives the same order.
    Backward,
}

/// Whether `b` makes `a` redundant, and how.
pub fn covered_by(a: &IndexKeys, b: &IndexKeys) -> Option<Direction> {
    if a.name == b.name
        || a.constraint
        || a.method != b.method
        || a.predicate != b.predicate
        || a.keys.len() > b.keys.len()
    {
        return None;
    }
    // Only a btree can answer a query on a leading prefix of its keys.
    if a.method != "btree" && a.keys.len() != b.keys.len() {
        return None;
    }
    let same_key = |x: &Key, y: &Key| {
        x.column == y.column && x.opclass == y.opclass && x.collation == y.collation
    };
    let prefix = b.keys.iter().take(a.keys.len());
    if !a
        .keys
        .iter()
        .zip(prefix.clone())
        .all(|(x, y)| same_key(x, y))
    {
        return None;
    }
    let forward = a
        .keys
        .iter()
        .zip(prefix.clone())
        .all(|(x, y)| x.option == y.option);
    let backward = a.method == "btree"
        && a.keys
            .iter()
            .zip(prefix)
            .all(|(x, y)| x.option ^ 3 == y.option);
    let direction = if forward {
        Direction::Forward
    } else if backward {
        Direction::Backward
    } else {
        return None;
    };
    // Columns `a` carries for index-only scans must be in `b` too.
    let carried = |c: &String| b.keys.iter().any(|k| &k.column == c) || b.include.contains(c);
    if !a.include.iter().all(carried) {
        return None;
    }
    // Two identical indexes cover each other: name only one of them as redundant.
    let mutual = !b.constraint
        && a.keys.len() == b.keys.len()
        && b.include
            .iter()
            .all(|c| a.include.contains(c) || a.keys.iter().any(|k| &k.column == c));
    if mutual && a.name < b.name {
        return None;
    }
    Some(direction)
}

/// Each redundant index with the indexes covering it, best first: forward,
/// then the one the workload scans most, then the smallest, then by name.
pub fn redundant(indexes: &[IndexKeys]) -> Vec<(&IndexKeys, Vec<(&IndexKeys, Direction)>)> {
    indexes
        .iter()
        .filter_map(|a| {
            let mut by: Vec<(&IndexKeys, Direction)> = indexes
                .iter()
                .filter_map(|b| covered_by(a, b).map(|d| (b, d)))
                .collect();
            by.sort_by(|(x, dx), (y, dy)| {
                (dx, -x.scans, x.bytes, &x.name).cmp(&(dy, -y.scans, y.bytes, &y.name))
            });
            (!by.is_empty()).then_some((a, by))
        })
        .collect()
}

pub fn redundancy(ctx: &mut Ctx) -> Result<Verdict> {
    let table = ctx.table()?;
    let managed: Vec<String> = ctx
        .index_set()?
        .indexes
        .iter()
        .map(|i| i.name.clone())
        .collect();
    let origin = ctx.index_set()?.origin.clone();
    let client = ctx.client()?;
    let sql = format!(
        "SELECT c.relname::text, am.amname::text, i.indisunique OR i.indisprimary OR i.indisexclusion, \
                i.indnkeyatts::int, \
                ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnatts) k), \
                i.indclass::oid[], i.indcollation::oid[], i.indoption::int2[], \
                COALESCE(pg_get_expr(i.indpred, i.indrelid, true), ''), \
                {INDEX_TREE_SCANS}, {INDEX_TREE_SIZE} \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
         WHERE i.indrelid = to_regclass($1) AND i.indisvalid AND i.indisready AND i.indislive \
         ORDER BY c.relname"
    );
    let rows = client.query_typed(sql.as_str(), &[(&table.qualified(), Type::TEXT)])?;
    let indexes: Vec<IndexKeys> = rows
        .iter()
        .map(|r| {
            let n_keys = r.get::<_, i32>(3).max(0) as usize;
            let columns: Vec<String> = r.get(4);
            let opclass: Vec<u32> = r.get(5);
            let collation: Vec<u32> = r.get(6);
            let option: Vec<i16> = r.get(7);
            let keys = (0..n_keys.min(columns.len()))
                .map(|k| Key {
                    column: columns[k].clone(),
                    opclass: opclass.get(k).copied().unwrap_or(0),
                    collation: collation.get(k).copied().unwrap_or(0),
                    option: option.get(k).copied().unwrap_or(0),
                })
                .collect();
            IndexKeys {
                name: r.get(0),
                method: r.get(1),
                constraint: r.get(2),
                keys,
                include: columns.iter().skip(n_keys).cloned().collect(),
                predicate: r.get(8),
                scans: r.get(9),
                bytes: r.get(10),
            }
        })
        .collect();
    let reset = stats_reset(client)?;
    // An index unused here may serve every dashboard read on the replicas:
    // the other nodes' scans count too.
    let mut indexes = indexes;
    let others = other_nodes(ctx.config, &table.qualified());
    for (_, read) in &others {
        if let Ok((scans, _)) = read {
            for index in &mut indexes {
                index.scans += scans.get(&index.name).copied().unwrap_or(0);
            }
        }
    }

    let unused: Vec<&IndexKeys> = indexes
        .iter()
        .filter(|i| i.scans == 0 && !i.constraint)
        .collect();
    let unused_line = if unused.is_empty() {
        None
    } else {
        let names: Vec<String> = unused
            .iter()
            .map(|i| format!("{} ({})", i.name, crate::report::size_pretty(i.bytes)))
            .collect();
        // idx_scan counts the reads of the node it is read on.
        let standby_note = if ctx.standby && others.is_empty() {
            " on this standby (its own reads only: the primary and other replicas count theirs)"
        } else {
            ""
        };
        let since = |reset: &Option<String>| {
            reset
                .as_ref()
                .map(|r| format!("statistics were reset ({r})"))
                .unwrap_or_else(|| "statistics began".into())
        };
        let nodes = if others.is_empty() {
            format!("{standby_note} since {}", since(&reset))
        } else {
            let mut each = vec![format!("here since {}", since(&reset))];
            each.extend(others.iter().map(|(name, read)| match read {
                Ok((_, r)) => format!("{name} since {}", since(r)),
                Err(e) => format!("{name} not counted: {e}"),
            }));
            format!(
                " on any of {} nodes ({})",
                others.len() + 1,
                each.join("; ")
            )
        };
        Some(format!(
            "info: {} never used{nodes}:\n{}",
            unused.len(),
            names
                .chunks(3)
                .map(|c| c.join(", "))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    };

    let partitioned = !ctx.relations()?.partitions.is_empty();
    let found = redundant(&indexes);
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    for (a, by) in &found {
        let (best, direction) = by[0];
        let mut line = format!("{} is covered by {}", a.name, best.name);
        if direction == Direction::Backward {
            line.push_str(" (read backwards)");
        }
        if by.len() > 1 {
            let others: Vec<&str> = by[1..].iter().map(|(b, _)| b.name.as_str()).collect();
            line.push_str(&format!(" (also by {})", others.join(", ")));
        }
        lines.push(line);
        let drop = drop_fix(partitioned, &quote_qualified(Some(&table.schema), &a.name));
        fixes.push(if !managed.contains(&a.name) {
            drop
        } else if origin.starts_with("built-in") {
            format!("{drop}  -- it is in the built-in set: give [indexes] file a copy of sql/indexes.sql without it")
        } else {
            format!("{drop}  -- and remove it from {origin}, or create-indexes builds it again")
        });
    }
    if found.is_empty() {
        let mut detail = format!(
            "no index on {} is covered by another ({} valid indexes)",
            table.name,
            indexes.len()
        );
        if let Some(u) = unused_line {
            detail.push('\n');
            detail.push_str(&u);
        }
        return Ok(Verdict::pass(detail));
    }
    lines.extend(unused_line);
    Ok(Verdict::warn(
        lines.join("\n"),
        ctx.on_primary(fixes.join("\n")),
    ))
}

/// When the database's statistics were last reset, if ever.
fn stats_reset(client: &mut postgres::Client) -> Result<Option<String>> {
    Ok(client
        .query_typed_one(
            "SELECT to_char(stats_reset, 'YYYY-MM-DD HH24:MI TZ') FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )?
        .get(0))
}

/// Each managed index's scans on a node, by name, and since when they count.
type NodeScans = (std::collections::HashMap<String, i64>, Option<String>);

/// The `[[targets]]` other than the node verify runs on (and pgbouncer, which
/// fronts one of them): each one's scans of the table's indexes, or why it
/// could not be read.
fn other_nodes(config: &Config, table: &str) -> Vec<(String, Result<NodeScans, String>)> {
    config
        .targets
        .iter()
        .filter(|t| t.role != NodeRole::Pgbouncer && t.conn != config.conn)
        .map(|t| {
            let read = || -> Result<NodeScans> {
                let mut client = crate::db::connect(&t.conn)?;
                let sql = format!(
                    "SELECT c.relname::text, {INDEX_TREE_SCANS} FROM pg_index i \
                     JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass($1)"
                );
                let scans = client
                    .query_typed(&sql, &[(&table, postgres::types::Type::TEXT)])?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                Ok((scans, stats_reset(&mut client)?))
            };
            (t.name.clone(), read().map_err(|e| format!("{e:#}")))
        })
        .collect()
}

/// The statement that drops `index` (qualified, quoted) with the least
/// locking the server allows: concurrently, except on a partitioned table.
pub fn drop_fix(partitioned: bool, index: &str) -> String {
    if partitioned {
        format!(
            "DROP INDEX IF EXISTS {index};  -- a partitioned index cannot be dropped concurrently: this takes ACCESS EXCLUSIVE on the table and every partition for a moment; run it under SET lock_timeout = '5s'"
        )
    } else {
        format!("DROP INDEX CONCURRENTLY IF EXISTS {index};")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(column: &str, option: i16) -> Key {
        Key {
            column: column.into(),
            opclass: 3126,
            collation: 100,
            option,
        }
    }

    fn index(name: &str, keys: &[(&str, i16)]) -> IndexKeys {
        IndexKeys {
            name: name.into(),
            method: "btree".into(),
            constraint: false,
            keys: keys.iter().map(|(c, o)| key(c, *o)).collect(),
            include: vec![],
            predicate: String::new(),
            scans: 0,
            bytes: 8192 * keys.len() as i64,
        }
    }

    #[test]
    fn leading_prefixes_of_the_same_kind_are_covered() {
        let store = index("idx_orders_store_name", &[("store_name", 0)]);
        let store_date = index("idx_orders_store_date", &[("store_name", 0), ("date", 0)]);
        let date_store = index("idx_date_store", &[("date", 0), ("store_name", 0)]);
        assert_eq!(covered_by(&store, &store_date), Some(Direction::Forward));
        assert_eq!(covered_by(&store_date, &store), None);
        assert_eq!(
            covered_by(&store, &date_store),
            None,
            "not a leading prefix"
        );
        // (date DESC) is (date) read backwards; (date DESC, x) is not (date, x).
        let date_desc = index("idx_orders_date_desc", &[("date", 3)]);
        let date_channel = index("idx_orders_date_channel", &[("date", 0), ("channel", 0)]);
        assert_eq!(
            covered_by(&date_desc, &date_channel),
            Some(Direction::Backward)
        );
        let mixed = index("m", &[("date", 3), ("channel", 0)]);
        assert_eq!(
            covered_by(
                &mixed,
                &index("n", &[("date", 0), ("channel", 0), ("x", 0)])
            ),
            None
        );
        // Different kinds, predicates, opclasses or a constraint: not redundant.
        let hash = IndexKeys {
            method: "hash".into(),
            ..store.clone()
        };
        assert_eq!(covered_by(&hash, &store_date), None);
        let partial = IndexKeys {
            predicate: "(amount > 0)".into(),
            ..store.clone()
        };
        assert_eq!(covered_by(&partial, &store_date), None);
        let unique = IndexKeys {
            constraint: true,
            ..store.clone()
        };
        assert_eq!(covered_by(&unique, &store_date), None);
        let mut pattern = store.clone();
        pattern.keys[0].opclass = 10043;
        assert_eq!(covered_by(&pattern, &store_date), None);
        // INCLUDE columns must come along.
        let with_amount = IndexKeys {
            include: vec!["amount".into()],
            ..store.clone()
        };
        assert_eq!(covered_by(&with_amount, &store_date), None);
        let carrying = IndexKeys {
            include: vec!["amount".into()],
            ..store_date.clone()
        };
        assert_eq!(
            covered_by(&with_amount, &carrying),
            Some(Direction::Forward)
        );
    }

    #[test]
    fn duplicates_are_named_once_and_the_best_cover_first() {
        let a = index("idx_a", &[("scene", 0)]);
        let b = index("idx_b", &[("scene", 0)]);
        let pair = [a, b];
        let found = redundant(&pair);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.name, "idx_b");
        let store = index("idx_orders_store_name", &[("store_name", 0)]);
        let mut channel = index(
            "idx_orders_store_channel",
            &[("store_name", 0), ("channel", 0)],
        );
        channel.bytes = 90_000;
        let mut date = index("idx_orders_store_date", &[("store_name", 0), ("date", 0)]);
        date.bytes = 60_000;
        let mut all = [store, channel, date];
        let names = |all: &[IndexKeys]| -> Vec<String> {
            let found = redundant(all);
            assert_eq!(found.len(), 1);
            found[0].1.iter().map(|(i, _)| i.name.clone()).collect()
        };
        // The smallest first, unless the workload uses another more.
        assert_eq!(
            names(&all),
            ["idx_orders_store_date", "idx_orders_store_channel"]
        );
        all[1].scans = 5;
        assert_eq!(
            names(&all),
            ["idx_orders_store_channel", "idx_orders_store_date"]
        );
    }
}
