//! What a run reads from the server before the clock starts: the managed
//! table its queries run against (its schema first on the search_path), the
//! server's version, the table's rows and each query's candidate parameters.

use super::runner::Job;
use crate::catalog;
use crate::config::Config;
use crate::db::{self, PgContext};
use crate::ident::quote_qualified;
use crate::params::{self, ParamPool};
use crate::seed_data::Rng;
use crate::sqlfiles::{IndexSet, QuerySpec};
use anyhow::Result;

/// The managed index set's table as the server resolves it.
pub struct ManagedTable {
    /// `schema.table`, for the report.
    pub shown: String,
    /// Quoted, for SQL text.
    pub quoted: String,
}

/// `config` with the managed table's schema first on every session's
/// search_path, and that table; None when the database has no such table
/// (a suite of another table, e.g. examples/menu without its index file).
pub fn on_managed_table(config: &Config) -> Result<(Config, Option<ManagedTable>)> {
    let set = IndexSet::load(config.indexes.file.as_deref())?;
    let mut client = db::connect(&config.conn)?;
    let found = catalog::indexes::find_table(&mut client, &set)
        .pg_context("looking up the managed table")?;
    let mut config = config.clone();
    let table = found.map(|(schema, name)| {
        config.conn.schema_first = Some(schema.clone());
        ManagedTable {
            shown: format!("{schema}.{name}"),
            quoted: quote_qualified(Some(&schema), &name),
        }
    });
    Ok((config, table))
}

/// What the run needs from the server before timing starts.
pub struct Setup {
    pub server_version: String,
    pub orders: Option<i64>,
    pub jobs: Vec<Job>,
    /// Per job, with --fixed-params: the bound values as SQL literals.
    pub fixed_literals: Vec<Option<Vec<String>>>,
}

/// Reads the server's version and row count and each query's candidate
/// parameters, on a connection closed before timing starts.
pub fn read(
    config: &Config,
    table: Option<&ManagedTable>,
    origin: &str,
    specs: &[&QuerySpec],
    seed: u64,
    fixed_params: bool,
) -> Result<Setup> {
    let mut client = db::connect(&config.conn)?;
    let server_version = scalar_text(&mut client, "SHOW server_version")?;
    let orders = match table {
        Some(t) => Some(
            client
                .query_one(format!("SELECT count(*) FROM {}", t.quoted).as_str(), &[])
                .pg_context("counting the table's rows")?
                .get(0),
        ),
        None => None,
    };
    let mut jobs = Vec::with_capacity(specs.len());
    let mut fixed_literals = Vec::with_capacity(specs.len());
    for spec in specs {
        let params = ParamPool::load(&mut client, spec)?;
        let fixed = fixed_params.then(|| params.draw(&mut Rng::new(seed)).clone());
        fixed_literals.push(match &fixed {
            Some(row) => Some(params::literals(&mut client, row)?),
            None => None,
        });
        jobs.push(Job {
            name: spec.name.clone(),
            sql: spec.sql.clone(),
            origin: format!("{origin}:{}", spec.line),
            params,
            fixed,
        });
    }
    Ok(Setup {
        server_version,
        orders,
        jobs,
        fixed_literals,
    })
}

fn scalar_text(client: &mut postgres::Client, sql: &str) -> Result<String> {
    let rows = client.simple_query(sql).pg_context(sql)?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}
