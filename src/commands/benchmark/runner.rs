//! Runs the suite's queries and records their latencies, alone on a dedicated
//! connection or from several client threads sharing the pool.
//!
//! Only the execution of a statement prepared once per connection is timed:
//! preparing, drawing parameters, waiting for a pool connection and
//! reconnecting all happen outside the clock, and rows are counted, not
//! decoded, so the tool's own overhead stays out of the figures. A failed run
//! is counted and the run goes on on a fresh connection.
//!
//! Through a pooler that shares server connections per transaction a named
//! statement would outlive its transaction on a server connection another
//! client gets next (and collide with that client's own `s0`, `s1`, ...), so
//! there each run sends the unnamed statement (parse, plan and execute in one
//! round trip, as pgbench -M extended) and only transaction-local settings.
//!
//! This file holds what both modes share (the job, the plan, one timed run,
//! preparing, the progress bar); runner/ holds the two modes.

mod concurrent;
mod sequential;

pub use concurrent::concurrent;
pub use sequential::sequential;

use super::stats::Recorder;
use crate::db::read_only;
use crate::db::PgContext;
use crate::params::{as_sql_params, ParamPool, ParamRow};
use crate::report;
use crate::seed_data::Rng;
use crate::stop::Stop;
use anyhow::Result;
use postgres::types::{ToSql, Type};
use postgres::{Client, Statement};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One query ready to run: its SQL and where its parameters come from.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub sql: String,
    /// Where the query is defined, for error messages.
    pub origin: String,
    pub params: ParamPool,
    /// With --fixed-params: the one row bound on every run.
    pub fixed: Option<ParamRow>,
}

impl Job {
    /// The parameters of the next run: the fixed row, or one drawn from the data.
    fn params<'a>(&'a self, rng: &mut Rng) -> &'a ParamRow {
        match &self.fixed {
            Some(row) => row,
            None => self.params.draw(rng),
        }
    }
}

/// How long each query is timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// Exactly this many runs (over all clients together).
    Runs(u64),
    /// As many runs as fit in this time.
    For(Duration),
}

#[derive(Debug, Clone, Copy)]
pub struct RunSettings<'a> {
    /// Untimed runs per query before timing starts.
    pub warmup: u32,
    pub plan: Plan,
    /// 1: one dedicated connection; more: that many threads sharing the pool.
    pub clients: u32,
    pub seed: u64,
    /// Ends the run after the current query runs; the report shows what was measured.
    pub stop: &'a Stop,
    pub statements: Statements,
}

/// How each run's statement reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Statements {
    /// Prepared once per connection; only its execution is timed (pgbench -M prepared).
    Prepared,
    /// The unnamed statement each run: the timings include parse and plan
    /// (pgbench -M extended). Through a pooler sharing connections per transaction.
    Unnamed,
}

/// One job's statement on one connection.
#[derive(Debug, Clone)]
enum Runnable {
    Prepared(Statement),
    Unnamed {
        sql: String,
        /// --compare-seqscan's settings, local to each run's transaction.
        seq_only: bool,
    },
}

/// What the planner may use: everything, or sequential scans only (the
/// "before the indexes" session of --compare-seqscan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scans {
    Planner,
    SeqOnly,
}

/// The session settings that take the indexes away from the planner.
const SEQ_SCAN_ONLY: &str =
    "SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off";
/// The same, for one transaction only (nothing stays on a pooled server connection).
const SEQ_SCAN_ONLY_LOCAL: &str = "SET LOCAL enable_indexscan = off; \
     SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off";

/// One query's recorded runs and the wall-clock time they took.
#[derive(Debug, Clone)]
pub struct Measured {
    pub recorder: Recorder,
    pub wall: Duration,
}

/// Runs a job's statement once, in a READ ONLY transaction (see
/// crate::db::read_only), and returns its latency and how many rows it produced.
/// Only the execution is timed, not the transaction around it. `execute`
/// drains the result in one call and takes the count from the server's
/// "SELECT n" tag: no row is decoded or even built, unlike `query`, whose
/// rows would add client time to every measurement.
fn timed_run(
    client: &mut Client,
    runnable: &Runnable,
    params: &ParamRow,
) -> Result<(Duration, u64), postgres::Error> {
    read_only::run(client, |tx| match runnable {
        Runnable::Prepared(statement) => {
            let params = as_sql_params(params);
            let started = Instant::now();
            let rows = tx.execute(statement, &params)?;
            Ok((started.elapsed(), rows))
        }
        Runnable::Unnamed { sql, seq_only } => {
            if *seq_only {
                tx.batch_execute(SEQ_SCAN_ONLY_LOCAL)?;
            }
            let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
                .iter()
                .map(|p| (p as &(dyn ToSql + Sync), p.ty.clone()))
                .collect();
            let started = Instant::now();
            let rows = tx.execute_typed(sql, &typed)?;
            Ok((started.elapsed(), rows))
        }
    })
}

/// Every job's statement on a connection: prepared (after the seq-scan
/// settings when asked), or the SQL sent unnamed on each run.
fn prepare_all(
    client: &mut Client,
    jobs: &[Job],
    scans: Scans,
    statements: Statements,
) -> Result<Vec<Runnable>> {
    if statements == Statements::Unnamed {
        return Ok(jobs
            .iter()
            .map(|job| Runnable::Unnamed {
                sql: job.sql.clone(),
                seq_only: scans == Scans::SeqOnly,
            })
            .collect());
    }
    if scans == Scans::SeqOnly {
        client
            .batch_execute(SEQ_SCAN_ONLY)
            .pg_context("disabling index scans")?;
    }
    jobs.iter()
        .map(|job| {
            client
                .prepare(&job.sql)
                .map(Runnable::Prepared)
                .with_pg_context(|| format!("query {} ({})", job.name, job.origin))
        })
        .collect()
}

/// A progress bar for one query's timed runs (hidden off a terminal).
struct Progress {
    bar: indicatif::ProgressBar,
    plan: Plan,
    started: Instant,
}

impl Progress {
    fn new(job: &Job, plan: Plan, scans: Scans) -> Progress {
        let len = match plan {
            Plan::Runs(n) => n,
            Plan::For(d) => d.as_millis() as u64,
        };
        let label = match scans {
            Scans::Planner => job.name.clone(),
            Scans::SeqOnly => format!("{} (seq scan)", job.name),
        };
        Progress {
            bar: report::progress_bar(len, &label),
            plan,
            started: Instant::now(),
        }
    }

    fn tick(&self) {
        if self.bar.is_hidden() {
            return;
        }
        match self.plan {
            Plan::Runs(_) => self.bar.inc(1),
            Plan::For(_) => self
                .bar
                .set_position(self.started.elapsed().as_millis() as u64),
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
