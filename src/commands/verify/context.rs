//! What the checks share: the config, one connection to the server, the index
//! set and query suite (loaded once, before any check, so a bad file is exit 2
//! rather than a failed check), and caches that keep the run to few round trips.

use super::VerifyArgs;
use crate::catalog::indexes::resolve_table;
use crate::catalog::partitions::{relations, Relations};
use crate::config::Config;
use crate::db::{self, PgContext};
use crate::ident::quote_qualified;
use crate::params::{ParamPool, ParamRow};
use crate::seed_data::Rng;
use crate::sqlfiles::{IndexSet, QuerySpec, QuerySuite};
use anyhow::{anyhow, Result};
use postgres::Client;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a check needs loaded or open before any check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The shared connection.
    pub server: bool,
    /// The managed index set (its table is the one the check looks at).
    pub index_set: bool,
    /// The query suite.
    pub suite: bool,
}

impl Needs {
    /// The config alone.
    pub const CONFIG: Needs = Needs {
        server: false,
        index_set: false,
        suite: false,
    };
    /// The server.
    pub const SERVER: Needs = Needs {
        server: true,
        ..Needs::CONFIG
    };
    /// The server and the managed table.
    pub const TABLE: Needs = Needs {
        index_set: true,
        ..Needs::SERVER
    };
    /// The server, the managed table and the suite's queries.
    pub const SUITE: Needs = Needs {
        suite: true,
        ..Needs::TABLE
    };

    /// What two checks need together.
    pub fn and(self, other: Needs) -> Needs {
        Needs {
            server: self.server || other.server,
            index_set: self.index_set || other.index_set,
            suite: self.suite || other.suite,
        }
    }
}

/// How long one of verify's catalog reads may wait for a lock on the table
/// before the check fails naming the holder.
const VERIFY_LOCK_TIMEOUT_MS: u64 = 10_000;

/// The managed table as the server resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    /// `"schema"."name"`, for SQL text and for to_regclass.
    pub fn qualified(&self) -> String {
        quote_qualified(Some(&self.schema), &self.name)
    }
}

pub struct Ctx<'a> {
    pub config: &'a Config,
    /// The speed check's threshold: --max-ms, else [alert] query_ms.
    pub max_ms: f64,
    /// The bound on each of the speed check's timed runs (see verify::speed_timeout).
    pub statement_timeout: Duration,
    client: Option<Client>,
    /// How long opening `client` took.
    pub connect_ms: f64,
    /// `host:port` of the host `client` reached (one of a multi-host URL's).
    pub endpoint: Option<String>,
    /// The server is a hot standby (pg_is_in_recovery): it takes no writes,
    /// its statistics counters are its own and its changes come from the
    /// primary, so the checks judge and phrase their fixes for that.
    pub standby: bool,
    index_set: Option<IndexSet>,
    suite: Option<QuerySuite>,
    table: Option<Table>,
    params: HashMap<String, ParamPool>,
    /// What the indexes check read from the server, for the per-index figures.
    pub live_indexes: Option<Vec<crate::catalog::indexes::LiveIndex>>,
    relations: Option<Relations>,
    /// What the replication check read, for the report's figures.
    pub replication: Option<super::replication::ReplicationFigures>,
    /// Per query, the partitions its plan reads of all (the planner check's
    /// EXPLAINs, shown by the speed check).
    pub pruning: HashMap<String, (usize, usize)>,
}

impl<'a> Ctx<'a> {
    /// Loads the files the selected checks need and connects when one needs the
    /// server. Either failing means verify cannot run: Err, exit 2.
    pub fn open(config: &'a Config, args: &VerifyArgs, needs: Needs) -> Result<Ctx<'a>> {
        let index_set = needs
            .index_set
            .then(|| IndexSet::load(args.indexes.as_deref().or(config.indexes.file.as_deref())))
            .transpose()?;
        let suite = needs
            .suite
            .then(|| QuerySuite::load(args.queries.as_deref().or(config.benchmark.file.as_deref())))
            .transpose()?;
        let max_ms = args.max_ms.unwrap_or(config.alert.query_ms);
        let statement_timeout =
            super::speed_timeout(args.statement_timeout.map(|d| d.0), config, max_ms)?;
        let started = Instant::now();
        let reached = needs
            .server
            .then(|| db::connect_reaching(&config.conn))
            .transpose()?;
        let (client, endpoint, standby) = match reached {
            Some(db::Reached {
                mut client,
                endpoint,
            }) => {
                // A deploy gate must not hang behind a migration's ACCESS EXCLUSIVE lock.
                client
                    .batch_execute(&format!("SET lock_timeout = '{VERIFY_LOCK_TIMEOUT_MS}ms'"))
                    .pg_context("setting verify's lock timeout")?;
                let standby: bool = client
                    .query_typed_one("SELECT pg_is_in_recovery()", &[])
                    .pg_context("asking whether the server is a standby")?
                    .get(0);
                (Some(client), Some(endpoint), standby)
            }
            None => (None, None, false),
        };
        Ok(Ctx {
            config,
            max_ms,
            statement_timeout,
            client,
            connect_ms: started.elapsed().as_secs_f64() * 1000.0,
            endpoint,
            standby,
            index_set,
            suite,
            table: None,
            params: HashMap::new(),
            live_indexes: None,
            relations: None,
            replication: None,
            pruning: HashMap::new(),
        })
    }

    pub fn client(&mut self) -> Result<&mut Client> {
        self.client
            .as_mut()
            .ok_or_else(|| anyhow!("internal: this check needs a connection but none was opened"))
    }

    pub fn index_set(&self) -> Result<&IndexSet> {
        self.index_set
            .as_ref()
            .ok_or_else(|| anyhow!("internal: the index set was not loaded for this check"))
    }

    /// The suite's queries (a copy, so checks can use the connection while iterating).
    pub fn queries(&self) -> Result<Vec<QuerySpec>> {
        self.suite
            .as_ref()
            .map(|s| s.queries.clone())
            .ok_or_else(|| anyhow!("internal: the query suite was not loaded for this check"))
    }

    /// `err` with the holders of locks on the managed table named, when it is
    /// a lock timeout.
    pub fn name_lock_holders(&mut self, err: anyhow::Error) -> anyhow::Error {
        let (Some(table), Some(client)) = (self.table.clone(), self.client.as_mut()) else {
            return err;
        };
        crate::catalog::activity::name_lock_holders(client, &table.qualified(), err)
    }

    /// `fix` as it must be given on this node: on a standby, a change to the
    /// database (DDL, ANALYZE, create-indexes) is run on the primary and
    /// reaches the standby by replay.
    pub fn on_primary(&self, fix: String) -> String {
        if !self.standby {
            return fix;
        }
        let lines: Vec<String> = fix.lines().map(|l| format!("  {l}")).collect();
        format!(
            "this node is a hot standby and takes no writes: on the primary, run\n{}\n(the change reaches this standby by replay; see the replication check if it does not)",
            lines.join("\n")
        )
    }

    /// The managed table, when a check has resolved it.
    pub fn resolved_table(&self) -> Option<&Table> {
        self.table.as_ref()
    }

    /// Where the suite came from (a path, or the built-in file), for messages.
    pub fn suite_origin(&self) -> Result<&str> {
        self.suite
            .as_ref()
            .map(|s| s.origin.as_str())
            .ok_or_else(|| anyhow!("internal: the query suite was not loaded for this check"))
    }

    /// The managed table as the server resolves it; Err when it does not exist.
    pub fn table(&mut self) -> Result<Table> {
        if let Some(t) = &self.table {
            return Ok(t.clone());
        }
        let set = self
            .index_set
            .as_ref()
            .ok_or_else(|| anyhow!("internal: the index set was not loaded for this check"))?;
        let client = self.client.as_mut().ok_or_else(|| {
            anyhow!("internal: this check needs a connection but none was opened")
        })?;
        let (schema, name) = resolve_table(client, set)?;
        // The suite's queries (planner, speed) run against this table: its
        // schema goes first on the search_path, whatever else is there.
        client
            .execute(
                "SELECT set_config('search_path', quote_ident($1) || ', ' || current_setting('search_path'), false)",
                &[&schema],
            )
            .pg_context("putting the managed table's schema on the search_path")?;
        let table = Table { schema, name };
        self.table = Some(table.clone());
        Ok(table)
    }

    /// The names plans read the table under (its partitions, their indexes).
    pub fn relations(&mut self) -> Result<Relations> {
        if let Some(r) = &self.relations {
            return Ok(r.clone());
        }
        let table = self.table()?;
        let relations = relations(self.client()?, &table.qualified(), &table.name)?;
        self.relations = Some(relations.clone());
        Ok(relations)
    }

    /// One row of bound parameters for `spec`, drawn from the data; the
    /// candidates are read once per run and shared by planner and speed.
    pub fn draw_params(&mut self, spec: &QuerySpec, rng: &mut Rng) -> Result<ParamRow> {
        if !self.params.contains_key(&spec.name) {
            let pool = ParamPool::load(self.client()?, spec)?;
            self.params.insert(spec.name.clone(), pool);
        }
        match self.params.get(&spec.name) {
            Some(pool) => Ok(pool.draw(rng).clone()),
            None => Err(anyhow!("internal: parameters of {} not loaded", spec.name)),
        }
    }
}
