//! The managed index set: named CREATE INDEX statements on one table.
//!
//! o2o-db decides by definition, not by name, so it keeps each statement's
//! definition (everything after the table name) verbatim and lets the server
//! normalise it for comparison (see catalog::shapes). Here we only
//! check the file's shape: every statement a named CREATE INDEX, all on the
//! same table, no duplicates.

mod create_index;

pub use super::tokens::MAX_IDENT_BYTES;

use super::split::split_statements;
use crate::ident::{quote_ident, quote_qualified};
use anyhow::{bail, Result};
use create_index::parse_create_index;
use serde::Serialize;
use std::path::Path;

/// The V8.5 report's 11 indexes on orders, compiled in.
pub const DEFAULT_INDEXES_SQL: &str = include_str!("../../sql/indexes.sql");

/// One managed index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexSpec {
    pub name: String,
    /// Schema as written, or as another index of the file names it for the same
    /// table (None: no index names one, the search path decides, normally public).
    pub schema: Option<String>,
    pub table: String,
    pub unique: bool,
    /// What follows the table name: `[USING method] (columns) [INCLUDE ...] [WHERE ...]`.
    pub definition: String,
    /// The key columns or expressions as written, for display.
    pub columns: String,
    /// 1-based line in its file.
    pub line: usize,
}

impl IndexSpec {
    /// The table, quoted and schema-qualified when the file qualified it.
    pub fn qualified_table(&self) -> String {
        quote_qualified(self.schema.as_deref(), &self.table)
    }

    /// The index, quoted and schema-qualified when the file qualified its table.
    pub fn qualified_name(&self) -> String {
        quote_qualified(self.schema.as_deref(), &self.name)
    }

    /// The statement that builds this index, with every identifier quoted.
    pub fn create_sql(&self, concurrently: bool) -> String {
        self.create_sql_named(&self.name, concurrently)
    }

    /// The same definition under another name (used to let the server normalise it).
    pub fn create_sql_named(&self, name: &str, concurrently: bool) -> String {
        format!(
            "CREATE {}INDEX {}{} ON {} {}",
            if self.unique { "UNIQUE " } else { "" },
            if concurrently { "CONCURRENTLY " } else { "" },
            quote_ident(name),
            self.qualified_table(),
            self.definition
        )
    }

    /// The statement that creates this index on a partitioned table alone,
    /// without recursing into its partitions: instant, and INVALID until each
    /// partition has an index of the definition attached.
    pub fn create_on_only_sql(&self) -> String {
        format!(
            "CREATE {}INDEX {} ON ONLY {} {}",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            self.qualified_table(),
            self.definition
        )
    }

    /// The same definition as index `name` of the table `schema.table` (a partition).
    pub fn on_table(&self, name: &str, schema: &str, table: &str) -> IndexSpec {
        IndexSpec {
            name: name.to_string(),
            schema: Some(schema.to_string()),
            table: table.to_string(),
            ..self.clone()
        }
    }

    /// The statement that drops this index.
    pub fn drop_sql(&self, concurrently: bool) -> String {
        format!(
            "DROP INDEX {}IF EXISTS {}",
            if concurrently { "CONCURRENTLY " } else { "" },
            self.qualified_name()
        )
    }
}

/// A parsed index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSet {
    /// Where it came from: a path, or "built-in sql/indexes.sql".
    pub origin: String,
    pub indexes: Vec<IndexSpec>,
}

impl IndexSet {
    /// The compiled-in V8.5 set.
    pub fn builtin() -> Result<IndexSet> {
        IndexSet::parse(DEFAULT_INDEXES_SQL, "built-in sql/indexes.sql")
    }

    /// The set from `file`, or the built-in one.
    pub fn load(file: Option<&Path>) -> Result<IndexSet> {
        super::load_or_builtin(file, IndexSet::builtin, IndexSet::parse)
    }

    pub fn parse(text: &str, origin: &str) -> Result<IndexSet> {
        let mut indexes: Vec<IndexSpec> = Vec::new();
        // The first index that names its schema: `orders` and `public.orders`
        // in one file are one table, in the schema the file names.
        let mut qualified: Option<usize> = None;
        for stmt in split_statements(text, origin)? {
            let spec = parse_create_index(&stmt.sql)
                .map_err(|e| anyhow::anyhow!("{origin}:{}: {e}", stmt.line))?;
            let spec = IndexSpec {
                line: stmt.line,
                ..spec
            };
            if let Some(first) = indexes.first() {
                let other = qualified.map_or(first, |i| &indexes[i]);
                let same_schema = match (&other.schema, &spec.schema) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if first.table != spec.table || !same_schema {
                    bail!(
                        "{origin}:{}: index {} is on table {}, but this file manages indexes of {} (line {}); keep one table per index file",
                        spec.line,
                        spec.name,
                        spec.qualified_table(),
                        other.qualified_table(),
                        other.line
                    );
                }
            }
            if let Some(dup) = indexes.iter().find(|i| i.name == spec.name) {
                bail!(
                    "{origin}:{}: index {} is defined twice (first at line {}); give each index its own name",
                    spec.line,
                    spec.name,
                    dup.line
                );
            }
            if qualified.is_none() && spec.schema.is_some() {
                qualified = Some(indexes.len());
            }
            indexes.push(spec);
        }
        if indexes.is_empty() {
            bail!("{origin}: no CREATE INDEX statements; an index file lists named `CREATE INDEX name ON table (columns);` statements");
        }
        if let Some(schema) = qualified.and_then(|i| indexes[i].schema.clone()) {
            for spec in indexes.iter_mut() {
                spec.schema.get_or_insert_with(|| schema.clone());
            }
        }
        Ok(IndexSet {
            origin: origin.to_string(),
            indexes,
        })
    }

    /// The table every index is on.
    pub fn table(&self) -> &IndexSpec {
        &self.indexes[0]
    }

    pub fn get(&self, name: &str) -> Option<&IndexSpec> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_set_is_the_reports_eleven() {
        let set = IndexSet::builtin().unwrap();
        let names: Vec<&str> = set.indexes.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "idx_orders_store_date",
                "idx_orders_store_channel",
                "idx_orders_store_product",
                "idx_orders_date_channel",
                "idx_orders_store_name",
                "idx_orders_product_name",
                "idx_orders_channel",
                "idx_orders_category_l1",
                "idx_orders_scene",
                "idx_orders_time_period",
                "idx_orders_date_desc",
            ]
        );
        assert!(set.indexes.iter().all(|i| i.table == "orders"));
        assert_eq!(
            set.get("idx_orders_date_desc").unwrap().columns,
            "date DESC"
        );
    }

    #[test]
    fn rejects_bad_files_with_line_numbers() {
        let cases = [
            (
                "CREATE INDEX a ON orders (x);\nDROP TABLE orders;",
                "x.sql:2: expected a named `CREATE INDEX",
            ),
            (
                "\n\nCREATE INDEX ON orders (x);",
                "x.sql:3: index has no name",
            ),
            (
                "CREATE INDEX a ON orders (x);\nCREATE INDEX b ON customers (y);",
                "x.sql:2: index b is on table \"customers\"",
            ),
            (
                "CREATE INDEX a ON orders (x);\nCREATE INDEX a ON orders (y);",
                "x.sql:2: index a is defined twice",
            ),
            ("-- nothing here\n", "x.sql: no CREATE INDEX statements"),
            (
                "CREATE INDEX a ON orders;",
                "x.sql:1: index a has no column list",
            ),
            (
                "CREATE INDEX a ON orders (x;",
                "x.sql:1: index a: unbalanced",
            ),
        ];
        for (text, want) in cases {
            let err = IndexSet::parse(text, "x.sql").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?} gave {err}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let set = IndexSet::parse("\u{feff}CREATE INDEX a ON orders (x);\n", "x.sql").unwrap();
        assert_eq!(
            (set.indexes[0].name.as_str(), set.indexes[0].line),
            ("a", 1)
        );
    }

    #[test]
    fn an_unqualified_table_is_the_qualified_one_of_the_same_name() {
        let set = IndexSet::parse(
            "CREATE INDEX a ON orders (x);\nCREATE INDEX b ON public.orders (y);\nCREATE INDEX c ON ORDERS (z);",
            "x.sql",
        )
        .unwrap();
        for i in &set.indexes {
            assert_eq!(i.qualified_table(), "\"public\".\"orders\"", "{i:?}");
        }
        assert_eq!(
            set.get("a").unwrap().drop_sql(true),
            "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"a\""
        );
        let err = IndexSet::parse(
            "CREATE INDEX a ON sales.orders (x);\nCREATE INDEX b ON orders (y);\nCREATE INDEX c ON public.orders (z);",
            "x.sql",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("x.sql:3: index c is on table \"public\".\"orders\", but this file manages indexes of \"sales\".\"orders\" (line 1)"),
            "{err}"
        );
    }
}
