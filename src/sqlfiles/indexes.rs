//! The managed index set: named CREATE INDEX statements on one table.
//!
//! o2o-db decides by definition, not by name, so it keeps each statement's
//! definition (everything after the table name) verbatim and lets the server
//! normalise it for comparison (see commands::create_indexes). Here we only
//! check the file's shape: every statement a named CREATE INDEX, all on the
//! same table, no duplicates.

use super::split::split_statements;
use crate::ident::quote_ident;
use anyhow::{bail, Result};
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
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.table)),
            None => quote_ident(&self.table),
        }
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

    /// The statement that drops this index.
    pub fn drop_sql(&self, concurrently: bool) -> String {
        let name = match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        };
        format!(
            "DROP INDEX {}IF EXISTS {name}",
            if concurrently { "CONCURRENTLY " } else { "" }
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
        match file {
            Some(path) => {
                let text = super::read_sql_file(path)?;
                IndexSet::parse(&text, &path.display().to_string())
            }
            None => IndexSet::builtin(),
        }
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

/// A word or a quoted identifier, with its byte range in the statement.
#[derive(Debug)]
struct Token<'a> {
    text: &'a str,
    quoted: bool,
    end: usize,
}

/// Reads the next identifier-like token after `pos` (skipping whitespace).
fn next_token(sql: &str, pos: usize) -> Option<Token<'_>> {
    let rest = &sql[pos..];
    let skip = rest.len() - rest.trim_start().len();
    let start = pos + skip;
    let s = &sql[start..];
    if let Some(body) = s.strip_prefix('"') {
        let mut i = 0;
        let bytes = body.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return Some(Token {
                    text: &sql[start + 1..start + 1 + i],
                    quoted: true,
                    end: start + 2 + i,
                });
            }
            i += 1;
        }
        return None;
    }
    // As PostgreSQL's lexer: ASCII letters, digits, _ and $, and any non-ASCII character.
    let len = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$' || !c.is_ascii()))
        .map_or(s.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    Some(Token {
        text: &s[..len],
        quoted: false,
        end: start + len,
    })
}

fn is_kw(t: &Option<Token<'_>>, kw: &str) -> bool {
    t.as_ref()
        .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(kw))
}

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes); it
/// silently truncates longer ones, so two long names could become one.
pub const MAX_IDENT_BYTES: usize = 63;

/// An identifier's real name: quoted as written; unquoted, folded as
/// PostgreSQL folds it (ASCII letters only: `Ä` stays `Ä`). `what` names it
/// in the error when it is longer than PostgreSQL keeps.
fn ident(t: &Token<'_>, what: &str) -> Result<String> {
    let name = if t.quoted {
        t.text.replace("\"\"", "\"")
    } else {
        t.text.to_ascii_lowercase()
    };
    if name.len() > MAX_IDENT_BYTES {
        bail!(
            "{what} `{name}` is {} bytes; PostgreSQL keeps only the first {MAX_IDENT_BYTES} (it would \
             truncate the name, and two long names could become one): shorten it",
            name.len()
        );
    }
    Ok(name)
}

fn parse_create_index(sql: &str) -> Result<IndexSpec> {
    let shown: String = sql.chars().take(60).collect();
    let expected = || {
        anyhow::anyhow!(
            "expected a named `CREATE INDEX name ON table (columns)`, found `{shown}`; index files hold only CREATE INDEX statements"
        )
    };
    let mut t = next_token(sql, 0);
    if !is_kw(&t, "create") {
        return Err(expected());
    }
    t = next_token(sql, t.as_ref().map_or(0, |t| t.end));
    let unique = is_kw(&t, "unique");
    if unique {
        t = next_token(sql, t.as_ref().map_or(0, |t| t.end));
    }
    if !is_kw(&t, "index") {
        return Err(expected());
    }
    let mut pos = t.as_ref().map_or(0, |t| t.end);
    // CONCURRENTLY and IF NOT EXISTS are o2o-db's decision, not the file's: accept and drop them.
    let mut t = next_token(sql, pos);
    if is_kw(&t, "concurrently") {
        pos = t.as_ref().map_or(pos, |t| t.end);
        t = next_token(sql, pos);
    }
    if is_kw(&t, "if") {
        let n = next_token(sql, t.as_ref().map_or(pos, |t| t.end));
        let e = next_token(sql, n.as_ref().map_or(pos, |t| t.end));
        if is_kw(&n, "not") && is_kw(&e, "exists") {
            pos = e.as_ref().map_or(pos, |t| t.end);
            t = next_token(sql, pos);
        }
    }
    let name_tok = t.ok_or_else(|| {
        anyhow::anyhow!("index has no name; managed indexes need one: `CREATE INDEX idx_orders_x ON orders (x)`")
    })?;
    if is_kw(&Some(Token { ..name_tok }), "on") {
        bail!("index has no name; managed indexes need one: `CREATE INDEX idx_orders_x ON orders (x)`");
    }
    let name = ident(&name_tok, "index name")?;
    let on = next_token(sql, name_tok.end);
    if !is_kw(&on, "on") {
        bail!("expected ON after index name {name}, found `{shown}`");
    }
    let mut t = next_token(sql, on.as_ref().map_or(0, |t| t.end));
    if is_kw(&t, "only") {
        t = next_token(sql, t.as_ref().map_or(0, |t| t.end));
    }
    let first = t.ok_or_else(|| anyhow::anyhow!("index {name} has no table after ON"))?;
    let mut end = first.end;
    let (schema, table) = if sql[end..].starts_with('.') {
        let second = next_token(sql, end + 1).ok_or_else(|| {
            anyhow::anyhow!(
                "index {name}: expected a table name after `{}.`",
                first.text
            )
        })?;
        end = second.end;
        (
            Some(ident(&first, "schema name")?),
            ident(&second, "table name")?,
        )
    } else {
        (None, ident(&first, "table name")?)
    };
    let definition = sql[end..].trim().to_string();
    let open = definition.find('(').ok_or_else(|| {
        anyhow::anyhow!(
            "index {name} has no column list: expected `({table} columns)` after the table"
        )
    })?;
    let before = definition[..open].trim();
    if !(before.is_empty() || before.to_ascii_lowercase().starts_with("using")) {
        bail!("index {name}: unexpected `{before}` before the column list");
    }
    let columns = balanced(&definition[open..]).ok_or_else(|| {
        anyhow::anyhow!("index {name}: unbalanced parentheses in the column list")
    })?;
    if columns.trim().is_empty() {
        bail!("index {name} has an empty column list");
    }
    Ok(IndexSpec {
        name,
        schema,
        table,
        unique,
        definition: definition.split_whitespace().collect::<Vec<_>>().join(" "),
        columns: columns.split_whitespace().collect::<Vec<_>>().join(" "),
        line: 0,
    })
}

/// The text inside the parenthesis group `s` starts with.
fn balanced(s: &str) -> Option<&str> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[1..i]);
                }
            }
            _ => {}
        }
    }
    None
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
    fn parses_options_and_quotes_names() {
        let set = IndexSet::parse(
            "create unique index concurrently if not exists \"Odd\"\"name\" on only public.orders using btree (lower(store_name), date desc) include (amount) where amount > 0;",
            "x.sql",
        )
        .unwrap();
        let i = &set.indexes[0];
        assert_eq!(i.name, "Odd\"name");
        assert_eq!(i.schema.as_deref(), Some("public"));
        assert!(i.unique);
        assert_eq!(i.columns, "lower(store_name), date desc");
        assert_eq!(
            i.create_sql(true),
            "CREATE UNIQUE INDEX CONCURRENTLY \"Odd\"\"name\" ON \"public\".\"orders\" using btree (lower(store_name), date desc) include (amount) where amount > 0"
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
    fn names_longer_than_postgres_keeps_are_refused_with_their_line() {
        let at_limit = "i".repeat(MAX_IDENT_BYTES);
        let ok = IndexSet::parse(&format!("CREATE INDEX {at_limit} ON orders (x);"), "x.sql");
        assert_eq!(ok.unwrap().indexes[0].name, at_limit);
        let cases = [
            (
                format!("CREATE INDEX a ON orders (x);\nCREATE INDEX {at_limit}x ON orders (y);"),
                "x.sql:2: index name `iii",
            ),
            // 32 two-byte letters are 64 bytes, whether quoted or not.
            (
                format!("\n\nCREATE INDEX \"{}\" ON orders (x);", "ü".repeat(32)),
                "x.sql:3: index name `üü",
            ),
            (
                format!("CREATE INDEX a ON {at_limit}s (x);"),
                "x.sql:1: table name `iii",
            ),
            (
                format!("CREATE INDEX a ON {at_limit}s.orders (x);"),
                "x.sql:1: schema name `iii",
            ),
        ];
        for (text, want) in cases {
            let err = IndexSet::parse(&text, "x.sql").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?} gave {err}");
            assert!(
                err.contains("bytes; PostgreSQL keeps only the first 63"),
                "{err}"
            );
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
    fn unquoted_names_fold_only_ascii_letters_as_postgres_does() {
        let set = IndexSet::parse(
            "CREATE INDEX Idx_Ärger_ÉTÉ ON Bestellungen_Öst (x);",
            "x.sql",
        )
        .unwrap();
        let i = &set.indexes[0];
        assert_eq!(i.name, "idx_Ärger_ÉtÉ");
        assert_eq!(i.table, "bestellungen_Öst");
        // Non-ASCII characters are identifier characters, even when not letters.
        let set = IndexSet::parse("CREATE INDEX idx_€ ON orders (x);", "x.sql").unwrap();
        assert_eq!(set.indexes[0].name, "idx_€");
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
