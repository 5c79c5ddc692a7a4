//! Parameters for the suite's queries, drawn from the data itself.
//!
//! A query's `-- params:` SELECT returns candidate rows; a seeded generator
//! picks one per execution, so runs are reproducible and no store name or
//! date is hard-coded. Values travel in the server's binary format untouched
//! (a column of type date is bound as a date), so any type works without
//! conversion code, and every value is a bound parameter, never spliced into SQL.

use crate::db::describe_pg_error;
use crate::db::PgContext;
use crate::seed_data::Rng;
use crate::sqlfiles::QuerySpec;
use anyhow::{bail, Result};
use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::Client;
use std::error::Error as StdError;

/// One value as the server sent it: its type and its binary encoding (None: NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    pub ty: Type,
    pub bytes: Option<Vec<u8>>,
}

impl<'a> FromSql<'a> for RawValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawValue {
            ty: ty.clone(),
            bytes: Some(raw.to_vec()),
        })
    }
    fn from_sql_null(ty: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawValue {
            ty: ty.clone(),
            bytes: None,
        })
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for RawValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if *ty != self.ty {
            return Err(format!("parameter is {ty} but the params query gives {}", self.ty).into());
        }
        match &self.bytes {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

/// A row of bound parameters for one execution.
pub type ParamRow = Vec<RawValue>;

/// The candidate parameter rows of a query, checked against the query's own parameter types.
#[derive(Debug, Clone)]
pub struct ParamPool {
    rows: Vec<ParamRow>,
}

/// How many candidate rows are read at most: enough variety, bounded memory.
pub const MAX_CANDIDATES: usize = 10_000;

impl ParamPool {
    /// Runs the query's params SELECT and checks that its columns fit the query's `$n` types.
    pub fn load(client: &mut Client, spec: &QuerySpec) -> Result<ParamPool> {
        let Some(params_sql) = &spec.params_sql else {
            return Ok(ParamPool { rows: vec![vec![]] });
        };
        let sql = format!("SELECT * FROM ({params_sql}) AS o2o_params LIMIT {MAX_CANDIDATES}");
        // A params query is suite text too: read-only, like the queries it
        // feeds. The query is prepared (for its `$n` types) in the same
        // transaction, so its statement never outlives it.
        let read = crate::db::read_only::run(client, |tx| {
            let wanted = tx.prepare(&spec.sql).map(|stmt| stmt.params().to_vec());
            if wanted.is_err() {
                return Ok((wanted, Vec::new()));
            }
            Ok((wanted, tx.query(&sql, &[])?))
        });
        let (wanted, rows) = match read {
            Ok((Ok(wanted), rows)) => (wanted, rows),
            Ok((Err(e), _)) => {
                bail!(
                    "query {} (line {}): {}",
                    spec.name,
                    spec.line,
                    describe_pg_error(&e)
                )
            }
            Err(e) => {
                if let Some(stop) = crate::db::read_only::refusal(
                    &e,
                    &format!("line {}", spec.line),
                    &format!("{} (its -- params: SELECT)", spec.name),
                ) {
                    return Err(stop);
                }
                bail!(
                    "params of query {} (line {}): {}",
                    spec.name,
                    spec.line,
                    describe_pg_error(&e)
                )
            }
        };
        let Some(first) = rows.first() else {
            bail!(
                "params of query {} (line {}) returned no rows: is the table empty? (seed it, or check the params SELECT)",
                spec.name,
                spec.line
            );
        };
        if first.len() != wanted.len() {
            bail!(
                "query {} (line {}) takes {} parameters but its params SELECT returns {} columns",
                spec.name,
                spec.line,
                wanted.len(),
                first.len()
            );
        }
        for (i, (col, ty)) in first.columns().iter().zip(&wanted).enumerate() {
            if col.type_() != ty {
                bail!(
                    "query {} (line {}): ${} is {ty} but the params SELECT's column {} is {}; cast it, e.g. `{}::{ty}`",
                    spec.name,
                    spec.line,
                    i + 1,
                    i + 1,
                    col.type_(),
                    col.name()
                );
            }
        }
        let rows = rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<_, RawValue>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParamPool { rows })
    }

    /// A pool for a query without parameters.
    pub fn none() -> ParamPool {
        ParamPool { rows: vec![vec![]] }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The next row for this generator (uniform over the candidates).
    pub fn draw(&self, rng: &mut Rng) -> &ParamRow {
        &self.rows[rng.below(self.rows.len() as u64) as usize]
    }

    /// The row at a fixed position, for reproducible single-parameter comparisons.
    pub fn row(&self, i: usize) -> &ParamRow {
        &self.rows[i % self.rows.len()]
    }
}

/// The row as `&[&dyn ToSql]` for `Client::query`.
pub fn as_sql_params(row: &ParamRow) -> Vec<&(dyn ToSql + Sync)> {
    row.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// Renders a row as SQL literals (for pgbench scripts and --dry-run display only;
/// execution always binds). Uses the server to print each value.
pub fn literals(client: &mut Client, row: &ParamRow) -> Result<Vec<String>> {
    row.iter()
        .map(|v| {
            let text: Option<String> = client
                .query_typed_one(
                    &format!("SELECT quote_nullable($1::{}::text)", v.ty),
                    &[(v, v.ty.clone())],
                )
                .pg_context("rendering a parameter")?
                .get(0);
            Ok(format!(
                "{}::{}",
                text.unwrap_or_else(|| "NULL".into()),
                v.ty
            ))
        })
        .collect()
}
