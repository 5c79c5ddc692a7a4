//! The benchmark suite: named dashboard queries with their expectations.
//!
//! Each query is one statement preceded by `-- key: value` lines:
//!   -- name: store_date            (required, unique, letters/digits/_)
//!   -- index: yes                  (should the planner reach the table through an index?)
//!   -- params: SELECT ...          (optional: rows of bound parameters, drawn with a seed)
//!   -- description: ...            (optional, shown in reports)
//! Parameters come from the data itself, never hard-coded, and are always bound.

use super::split::split_statements;
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;

/// The dashboard's query suite, compiled in.
pub const DEFAULT_QUERIES_SQL: &str = include_str!("../../sql/benchmark.sql");

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuerySpec {
    pub name: String,
    pub sql: String,
    /// True when the planner is expected to use an index on the table.
    pub expect_index: bool,
    /// A query whose rows are candidate parameter tuples for `sql`.
    pub params_sql: Option<String>,
    pub description: String,
    pub line: usize,
}

impl QuerySpec {
    /// How many `$n` parameters the query uses (the highest n).
    pub fn param_count(&self) -> usize {
        let b = self.sql.as_bytes();
        let mut max = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                let digits: String = self.sql[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let Ok(n) = digits.parse::<usize>() {
                    max = max.max(n);
                }
                i += 1 + digits.len();
            } else {
                i += 1;
            }
        }
        max
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySuite {
    pub origin: String,
    pub queries: Vec<QuerySpec>,
}

impl QuerySuite {
    pub fn builtin() -> Result<QuerySuite> {
        QuerySuite::parse(DEFAULT_QUERIES_SQL, "built-in sql/benchmark.sql")
    }

    pub fn load(file: Option<&Path>) -> Result<QuerySuite> {
        super::load_or_builtin(file, QuerySuite::builtin, QuerySuite::parse)
    }

    pub fn parse(text: &str, origin: &str) -> Result<QuerySuite> {
        let mut queries: Vec<QuerySpec> = Vec::new();
        for stmt in split_statements(text, origin)? {
            let at = |line: usize| format!("{origin}:{line}");
            let mut name = None;
            let mut expect_index = None;
            let mut params_sql = None;
            let mut description = String::new();
            for (key, value, line) in &stmt.annotations {
                match key.as_str() {
                    "name" => {
                        if value.is_empty()
                            || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        {
                            bail!("{}: query name `{value}` must be letters, digits and _ only", at(*line));
                        }
                        name = Some(value.clone());
                    }
                    "index" => {
                        expect_index = Some(match value.to_ascii_lowercase().as_str() {
                            "yes" | "true" => true,
                            "no" | "false" => false,
                            other => bail!("{}: `-- index: {other}`: write yes or no", at(*line)),
                        })
                    }
                    "params" => params_sql = Some(value.trim_end_matches(';').trim().to_string()),
                    "description" => description = value.clone(),
                    other => bail!(
                        "{}: unknown annotation `-- {other}:`; known: name, index, params, description",
                        at(*line)
                    ),
                }
            }
            let name = name.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: query has no `-- name: ...` line above it",
                    at(stmt.line)
                )
            })?;
            let first_word = stmt
                .sql
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !matches!(first_word.as_str(), "select" | "with" | "table" | "values") {
                bail!(
                    "{}: query {name} is not a SELECT; the benchmark suite only reads (found `{first_word}`)",
                    at(stmt.line)
                );
            }
            if let Some(dup) = queries.iter().find(|q| q.name == name) {
                bail!(
                    "{}: query {name} is defined twice (first at line {})",
                    at(stmt.line),
                    dup.line
                );
            }
            let spec = QuerySpec {
                name,
                sql: stmt.sql,
                expect_index: expect_index.unwrap_or(false),
                params_sql,
                description,
                line: stmt.line,
            };
            if spec.param_count() > 0 && spec.params_sql.is_none() {
                bail!(
                    "{}: query {} uses ${} but has no `-- params: SELECT ...` line to draw values from",
                    at(spec.line),
                    spec.name,
                    spec.param_count()
                );
            }
            queries.push(spec);
        }
        if queries.is_empty() {
            bail!("{origin}: no queries; a suite lists `-- name: x` followed by a SELECT");
        }
        Ok(QuerySuite {
            origin: origin.to_string(),
            queries,
        })
    }

    /// The queries named in `only` (all when empty); unknown names are an error.
    pub fn select(&self, only: &[String]) -> Result<Vec<&QuerySpec>> {
        if only.is_empty() {
            return Ok(self.queries.iter().collect());
        }
        only.iter()
            .map(|n| {
                self.queries.iter().find(|q| &q.name == n).ok_or_else(|| {
                    let known: Vec<&str> = self.queries.iter().map(|q| q.name.as_str()).collect();
                    anyhow::anyhow!(
                        "no query named {n} in {}; known: {}",
                        self.origin,
                        known.join(", ")
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_suite_parses() {
        let suite = QuerySuite::builtin().unwrap();
        let names: Vec<&str> = suite.queries.iter().map(|q| q.name.as_str()).collect();
        for want in ["count_all", "by_store", "store_date", "latest_orders"] {
            assert!(names.contains(&want), "{names:?}");
        }
        let sd = suite
            .queries
            .iter()
            .find(|q| q.name == "store_date")
            .unwrap();
        assert!(sd.expect_index);
        assert!(sd.param_count() >= 2 && sd.params_sql.is_some());
    }

    #[test]
    fn rejects_bad_suites() {
        let cases = [
            ("SELECT 1;", "x.sql:1: query has no `-- name"),
            (
                "-- name: a\nDELETE FROM orders;",
                "x.sql:2: query a is not a SELECT",
            ),
            ("-- name: a b\nSELECT 1;", "x.sql:1: query name `a b`"),
            (
                "-- name: a\n-- index: maybe\nSELECT 1;",
                "x.sql:2: `-- index: maybe`",
            ),
            ("-- name: a\nSELECT $1;", "x.sql:2: query a uses $1"),
            (
                "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;",
                "x.sql:4: query a is defined twice",
            ),
            ("-- nme: a\nSELECT 1;", "x.sql:1: unknown annotation"),
        ];
        for (text, want) in cases {
            let err = QuerySuite::parse(text, "x.sql").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?} gave {err}");
        }
    }
}
