//! One statement of an index file read as a named CREATE INDEX: its name,
//! table (and schema), uniqueness and the definition after the table name.

use super::IndexSpec;
use crate::sqlfiles::shape::group;
use crate::sqlfiles::tokens::{ident, is_kw, next_token, Token};
use anyhow::{bail, Result};

/// The index `sql` creates; its `line` is left 0 for the caller to set.
pub fn parse_create_index(sql: &str) -> Result<IndexSpec> {
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
    let t = next_token(sql, on.as_ref().map_or(0, |t| t.end));
    if is_kw(&t, "only") {
        // Kept, it would make an index that never covers a partition; dropped
        // silently, it would change what the file says.
        bail!(
            "index {name}: `ON ONLY` builds an index on a partitioned table alone, INVALID until every \
             partition has one attached; o2o-db does that itself on a partitioned table (ON ONLY, then each \
             partition CONCURRENTLY, then ATTACH PARTITION), so write `ON table` without ONLY"
        );
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
    let columns = group(&definition[open..])
        .ok()
        .map(|(inside, _)| inside)
        .ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use crate::sqlfiles::IndexSet;

    #[test]
    fn parses_options_and_quotes_names() {
        let set = IndexSet::parse(
            "create unique index concurrently if not exists \"Odd\"\"name\" on public.orders using btree (lower(store_name), date desc) include (amount) where amount > 0;",
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
    fn on_only_is_refused_with_its_line_and_reason() {
        let err = IndexSet::parse(
            "CREATE INDEX a ON orders (x);\n\nCREATE INDEX b ON ONLY public.orders (y);",
            "x.sql",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("x.sql:3: index b: `ON ONLY`"), "{err}");
        assert!(err.contains("write `ON table` without ONLY"), "{err}");
    }
}
