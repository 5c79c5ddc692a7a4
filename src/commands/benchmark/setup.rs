//! What a run reads from the server before the clock starts: the managed
//! table its queries run against (its schema first on the search_path), the
//! server's version, the table's rows and each query's candidate parameters.

use super::report::Pruning;
use super::runner::{Job, Statements};
use crate::catalog::{self, partitions, partitions::Relations};
use crate::config::Config;
use crate::db::{self, PgContext};
use crate::explain;
use crate::ident::{quote_ident, quote_qualified};
use crate::params::{self, ParamPool, ParamRow};
use crate::seed_data::Rng;
use crate::sqlfiles::{IndexSet, QuerySpec};
use anyhow::{bail, Result};
use postgres::types::Type;

/// The managed index set's table as the server resolves it.
pub struct ManagedTable {
    /// `schema.table`, for the report.
    pub shown: String,
    /// Quoted, for SQL text.
    pub quoted: String,
    /// The relation's own name, as plans name it.
    pub name: String,
}

/// `config` with the managed table's schema first on every session's
/// search_path, and that table; None when the database has no such table
/// (a suite of another table, e.g. examples/menu without its index file).
///
/// Through a pooler sharing server connections per transaction the
/// search_path cannot be a startup option (pgbouncer refuses those it cannot
/// track) nor a SET (it would stay on the server connection): there the
/// table must already be the one the server's search_path finds.
pub fn on_managed_table(
    config: &Config,
    statements: Statements,
) -> Result<(Config, Option<ManagedTable>)> {
    let set = IndexSet::load(config.indexes.file.as_deref())?;
    let mut client = db::connect(&config.conn)?;
    let found = catalog::indexes::find_table(&mut client, &set)
        .pg_context("looking up the managed table")?;
    let mut config = config.clone();
    let Some((schema, name)) = found else {
        return Ok((config, None));
    };
    let quoted = quote_qualified(Some(&schema), &name);
    match statements {
        Statements::Prepared => config.conn.schema_first = Some(schema.clone()),
        Statements::Unnamed => {
            // The unnamed statement: nothing named is left on the server connection.
            let same: bool = client
                .query_typed_one(
                    "SELECT to_regclass($1) IS NOT DISTINCT FROM to_regclass($2)",
                    &[(&quote_ident(&name), Type::TEXT), (&quoted, Type::TEXT)],
                )
                .pg_context("checking the search_path finds the managed table")?
                .get(0);
            if !same {
                bail!(
                    "the managed table is {schema}.{name}, but through a pooler that shares server \
                     connections per transaction o2o-db cannot put schema {schema} first on the \
                     search_path, and the server's search_path finds another {name} (or none): \
                     set the role's search_path (ALTER ROLE ... SET search_path = {}, public) \
                     or connect to PostgreSQL directly",
                    quote_ident(&schema)
                );
            }
        }
    }
    Ok((
        config,
        Some(ManagedTable {
            shown: format!("{schema}.{name}"),
            quoted,
            name,
        }),
    ))
}

/// What the run needs from the server before timing starts.
pub struct Setup {
    pub server_version: String,
    pub orders: Option<i64>,
    pub jobs: Vec<Job>,
    /// Per job, with --fixed-params: the bound values as SQL literals.
    pub fixed_literals: Vec<Option<Vec<String>>>,
    /// Per job, on a partitioned table: the partitions its plans read.
    pub pruning: Vec<Option<Pruning>>,
}

/// How many plans are explained for a query's pruning figure: enough draws to
/// show when different parameters read different numbers of partitions.
const PRUNING_DRAWS: usize = 5;

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
            scalar_text(&mut client, &format!("SELECT count(*) FROM {}", t.quoted))?
                .parse()
                .unwrap_or(0),
        ),
        None => None,
    };
    let relations = match table {
        Some(t) => Some(partitions::relations(&mut client, &t.quoted, &t.name)?),
        None => None,
    }
    .filter(|r| !r.partitions.is_empty());
    let mut jobs = Vec::with_capacity(specs.len());
    let mut fixed_literals = Vec::with_capacity(specs.len());
    let mut pruning = Vec::with_capacity(specs.len());
    for spec in specs {
        let params = ParamPool::load(&mut client, spec)?;
        let fixed = fixed_params.then(|| params.draw(&mut Rng::new(seed)).clone());
        pruning.push(match &relations {
            Some(r) => Some(read_partitions(
                &mut client,
                spec,
                &params,
                fixed.as_ref(),
                seed,
                r,
            )?),
            None => None,
        });
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
        pruning,
    })
}

/// The fewest and most partitions the query's plans read: for the fixed
/// parameters, else for the first draws of the run's seed.
fn read_partitions(
    client: &mut postgres::Client,
    spec: &QuerySpec,
    params: &ParamPool,
    fixed: Option<&ParamRow>,
    seed: u64,
    relations: &Relations,
) -> Result<Pruning> {
    let mut rng = Rng::new(seed);
    let draws: Vec<ParamRow> = match fixed {
        Some(row) => vec![row.clone()],
        None => (0..PRUNING_DRAWS)
            .map(|_| params.draw(&mut rng).clone())
            .collect(),
    };
    let mut read = Vec::with_capacity(draws.len());
    for row in &draws {
        let plan = explain::plan(client, spec, row)?;
        read.push(explain::access(&plan, relations).partitions.len());
    }
    Ok(Pruning {
        read_min: read.iter().copied().min().unwrap_or(0),
        read_max: read.iter().copied().max().unwrap_or(0),
        partitions: relations.partitions.len(),
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
