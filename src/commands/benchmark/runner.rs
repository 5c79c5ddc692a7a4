//! Runs the suite's queries and records their latencies, alone on a dedicated
//! connection or from several client threads sharing the pool.
//!
//! Only the execution of a statement prepared once per connection is timed:
//! preparing, drawing parameters, waiting for a pool connection and
//! reconnecting all happen outside the clock, and rows are counted, not
//! decoded, so the tool's own overhead stays out of the figures. A failed run
//! is counted and the run goes on on a fresh connection.

use super::stats::Recorder;
use crate::conninfo::ConnInfo;
use crate::db::read_only;
use crate::db::PgContext;
use crate::db::{self, describe_pg_error, Pool, PooledConnection};
use crate::params::{as_sql_params, ParamPool, ParamRow};
use crate::report;
use crate::seed_data::Rng;
use crate::stop::Stop;
use anyhow::{anyhow, Result};
use postgres::types::ToSql;
use postgres::{Client, Statement};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One query's recorded runs and the wall-clock time they took.
#[derive(Debug, Clone)]
pub struct Measured {
    pub recorder: Recorder,
    pub wall: Duration,
}

// --------------------------------------------------------------- executing

/// Runs a prepared statement once, in a READ ONLY transaction (see
/// crate::db::read_only), and returns its latency and how many rows it produced.
/// Only the execution is timed, not the transaction around it. `execute`
/// drains the result in one call and takes the count from the server's
/// "SELECT n" tag: no row is decoded or even built, unlike `query`, whose
/// rows would add client time to every measurement.
fn timed_run(
    client: &mut Client,
    statement: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(Duration, u64), postgres::Error> {
    read_only::run(client, |tx| {
        let started = Instant::now();
        let rows = tx.execute(statement, params)?;
        Ok((started.elapsed(), rows))
    })
}

/// Prepares every job's statement on a connection (after the seq-scan settings when asked).
fn prepare_all(client: &mut Client, jobs: &[Job], scans: Scans) -> Result<Vec<Statement>> {
    if scans == Scans::SeqOnly {
        client
            .batch_execute(SEQ_SCAN_ONLY)
            .pg_context("disabling index scans")?;
    }
    jobs.iter()
        .map(|job| {
            client
                .prepare(&job.sql)
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

// -------------------------------------------------------------- sequential

/// How many reconnects in a row may fail before the run gives up.
const MAX_RECONNECTS: u32 = 10;

/// The result of one run.
enum Run {
    Done { latency: Duration, rows: u64 },
    Failed(String),
}

/// The dedicated connection of a sequential run, with every statement prepared;
/// replaced by a fresh one after an error.
struct Session<'a> {
    conn: &'a ConnInfo,
    jobs: &'a [Job],
    scans: Scans,
    open: Option<(Client, Vec<Statement>)>,
    failed_reconnects: u32,
}

impl<'a> Session<'a> {
    fn open(conn: &'a ConnInfo, jobs: &'a [Job], scans: Scans) -> Result<Session<'a>> {
        let mut client = db::connect(conn)?;
        let statements = prepare_all(&mut client, jobs, scans)?;
        Ok(Session {
            conn,
            jobs,
            scans,
            open: Some((client, statements)),
            failed_reconnects: 0,
        })
    }

    /// Runs job `i` once. Err only when the server stays unreachable.
    fn run(&mut self, i: usize, params: &ParamRow) -> Result<Run> {
        if self.open.is_none() {
            if let Err(e) = self.reconnect() {
                self.failed_reconnects += 1;
                if self.failed_reconnects >= MAX_RECONNECTS {
                    return Err(e.context(format!(
                        "lost the connection during query {} and could not reconnect ({MAX_RECONNECTS} attempts)",
                        self.jobs[i].name
                    )));
                }
                // Back off 100 ms, 200 ms, ... up to 800 ms while the server comes back.
                std::thread::sleep(Duration::from_millis(
                    100 << (self.failed_reconnects - 1).min(3),
                ));
                return Ok(Run::Failed(format!("{e:#}")));
            }
        }
        let Some((client, statements)) = self.open.as_mut() else {
            return Ok(Run::Failed("not connected".into()));
        };
        let params = as_sql_params(params);
        Ok(match timed_run(client, &statements[i], &params) {
            Ok((latency, rows)) => Run::Done { latency, rows },
            Err(e) => {
                let job = &self.jobs[i];
                if let Some(stop) = read_only::refusal(&e, &job.origin, &job.name) {
                    return Err(stop);
                }
                // A killed backend, a cancelled statement: start the next run on a clean session.
                self.open = None;
                Run::Failed(describe_pg_error(&e))
            }
        })
    }

    fn reconnect(&mut self) -> Result<()> {
        let mut client = db::connect(self.conn)?;
        let statements = prepare_all(&mut client, self.jobs, self.scans)?;
        self.failed_reconnects = 0;
        self.open = Some((client, statements));
        Ok(())
    }
}

/// Runs each job in turn on one dedicated connection.
pub fn sequential(
    conn: &ConnInfo,
    jobs: &[Job],
    settings: &RunSettings,
    scans: Scans,
) -> Result<Vec<Measured>> {
    let mut session = Session::open(conn, jobs, scans)?;
    let mut measured = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if settings.stop.requested() {
            break;
        }
        let mut rng = Rng::new(settings.seed);
        for _ in 0..settings.warmup {
            if settings.stop.requested() {
                break;
            }
            session.run(i, job.params(&mut rng))?;
        }
        let progress = Progress::new(job, settings.plan, scans);
        let mut recorder = Recorder::new()?;
        let started = Instant::now();
        loop {
            let done = match settings.plan {
                Plan::Runs(n) => recorder.attempts() >= n,
                Plan::For(d) => started.elapsed() >= d,
            };
            if done || settings.stop.requested() {
                break;
            }
            match session.run(i, job.params(&mut rng))? {
                Run::Done { latency, rows } => recorder.record(latency, rows),
                Run::Failed(message) => recorder.error(message),
            }
            progress.tick();
        }
        let wall = started.elapsed();
        progress.finish();
        measured.push(Measured { recorder, wall });
    }
    Ok(measured)
}

// -------------------------------------------------------------- concurrent

/// The statements prepared on one pooled connection, kept with it.
struct Prepared(Vec<Statement>);

/// Job `i`'s statement on this pooled connection, prepared on first use.
fn statement(
    conn: &mut PooledConnection,
    jobs: &[Job],
    i: usize,
    scans: Scans,
) -> Result<Statement> {
    if let Some(prepared) = r2d2::PooledConnection::extensions(conn).get::<Prepared>() {
        return Ok(prepared.0[i].clone());
    }
    let statements = prepare_all(conn, jobs, scans)?;
    let statement = statements[i].clone();
    r2d2::PooledConnection::extensions_mut(conn).insert(Prepared(statements));
    Ok(statement)
}

/// Opens as many pool connections as clients can use at once and prepares
/// the statements on each, so connecting is not timed as waiting.
fn prime(pool: &Pool, jobs: &[Job], scans: Scans, clients: u32) -> Result<()> {
    let mut held = Vec::new();
    for _ in 0..clients.min(pool.max_size()) {
        let mut conn = pool.get()?;
        statement(&mut conn, jobs, 0, scans)?;
        held.push(conn);
    }
    Ok(())
}

/// Runs each job in turn from `settings.clients` threads sharing the pool.
pub fn concurrent(
    pool: &Pool,
    jobs: &[Job],
    settings: &RunSettings,
    scans: Scans,
) -> Result<Vec<Measured>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    prime(pool, jobs, scans, settings.clients)?;
    let mut measured = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if settings.stop.requested() {
            break;
        }
        if settings.warmup > 0 {
            phase(
                pool,
                jobs,
                i,
                settings,
                Plan::Runs(u64::from(settings.warmup)),
                scans,
                None,
            )?;
        }
        let progress = Progress::new(job, settings.plan, scans);
        measured.push(phase(
            pool,
            jobs,
            i,
            settings,
            settings.plan,
            scans,
            Some(&progress),
        )?);
        progress.finish();
    }
    Ok(measured)
}

/// One query's runs from all clients; their recorders merged.
fn phase(
    pool: &Pool,
    jobs: &[Job],
    i: usize,
    settings: &RunSettings,
    plan: Plan,
    scans: Scans,
    progress: Option<&Progress>,
) -> Result<Measured> {
    let claimed = AtomicU64::new(0);
    let started = Instant::now();
    let results: Vec<Result<Recorder>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..settings.clients)
            .map(|c| {
                let claimed = &claimed;
                let seed = settings.seed.wrapping_add(u64::from(c));
                scope.spawn(move || {
                    let next = || {
                        !settings.stop.requested()
                            && match plan {
                                Plan::Runs(n) => claimed.fetch_add(1, Ordering::Relaxed) < n,
                                Plan::For(d) => started.elapsed() < d,
                            }
                    };
                    client_loop(pool, jobs, i, scans, seed, next, progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a benchmark client thread panicked")))
            })
            .collect()
    });
    let wall = started.elapsed();
    let mut recorder = Recorder::new()?;
    for r in results {
        recorder.merge(&r?);
    }
    Ok(Measured { recorder, wall })
}

/// One client: check out, run, give back, while `next` grants another run.
fn client_loop(
    pool: &Pool,
    jobs: &[Job],
    i: usize,
    scans: Scans,
    seed: u64,
    next: impl Fn() -> bool,
    progress: Option<&Progress>,
) -> Result<Recorder> {
    let job = &jobs[i];
    let mut rng = Rng::new(seed);
    let mut recorder = Recorder::new()?;
    while next() {
        let params = job.params(&mut rng);
        let asked = Instant::now();
        let checkout = pool.get();
        let waited = asked.elapsed();
        match checkout {
            Err(e) => recorder.error(format!("{e:#}")),
            Ok(mut conn) => {
                recorder.waited(waited);
                match statement(&mut conn, jobs, i, scans) {
                    Err(e) => {
                        recorder.error(format!("{e:#}"));
                        discard_if_broken(&mut conn);
                    }
                    Ok(statement) => {
                        let params = as_sql_params(params);
                        match timed_run(&mut conn, &statement, &params) {
                            Ok((latency, rows)) => recorder.record(latency, rows),
                            Err(e) => {
                                if let Some(stop) = read_only::refusal(&e, &job.origin, &job.name) {
                                    return Err(stop);
                                }
                                recorder.error(describe_pg_error(&e));
                                discard_if_broken(&mut conn);
                            }
                        }
                    }
                }
            }
        }
        if let Some(p) = progress {
            p.tick();
        }
    }
    Ok(recorder)
}

/// After an error: forget the connection's statements, and let a dead
/// connection find out it is dead, so the pool drops it instead of handing it
/// out again (r2d2 discards connections whose client is closed).
fn discard_if_broken(conn: &mut PooledConnection) {
    r2d2::PooledConnection::extensions_mut(conn).remove::<Prepared>();
    let _ = conn.is_valid(Duration::from_secs(2));
}
