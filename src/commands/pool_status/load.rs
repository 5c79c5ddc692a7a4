//! --load: does the configured pool carry N concurrent users?
//!
//! The V8.5 report claims 60 connections (20 + 40 overflow) carry 100 users.
//! N threads each loop over sessions: check a connection out of a pool built
//! from [pool], hold it for a short server-side query, give it back. The pool's
//! own counters say how many checkouts waited and for how long, and every
//! checkout gives up after the configured [pool] timeout, so a pool too small
//! for the load shows up as counted timeouts, never as a crash.
//!
//! Through pgbouncer the limit may be its pool instead: the sessions then
//! queue inside pgbouncer for one of its default_pool_size server
//! connections. With --pgbouncer, its SHOW POOLS is sampled during the load,
//! so the advice names the limit that was hit.

use crate::config::{Config, PoolSettings};
use crate::conninfo::ConnInfo;
use crate::db::pgbouncer;
use crate::db::status::PoolFigures;
use crate::db::{self, describe_pg_error, Pool, Warm};
use crate::stop::Stop;
use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use postgres::types::Type;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a load run does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadPlan {
    /// Concurrent sessions (one thread each).
    pub sessions: u32,
    pub duration: Duration,
    /// How long each session holds its connection (server-side pg_sleep).
    pub hold: Duration,
}

/// What the load did, as the pool saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadReport {
    /// Concurrent sessions.
    pub sessions: u32,
    pub duration_seconds: f64,
    pub hold_ms: f64,
    /// The application_name the load's connections carry, so they are not
    /// mistaken for the application's own.
    pub application: String,
    /// Sessions that checked out a connection and ran their query.
    pub completed: u64,
    pub sessions_per_second: f64,
    pub checkouts: u64,
    /// Checkouts that found no idle connection (queued, or a connection was opened).
    pub waits: u64,
    pub wait_ms_max: f64,
    /// Checkout time over all successful checkouts.
    pub checkout_ms_p50: f64,
    pub checkout_ms_p95: f64,
    pub checkout_ms_p99: f64,
    /// Checkouts that gave up after the [pool] timeout.
    pub timeouts: u64,
    pub timeout_ms: f64,
    /// Failed attempts to open a connection.
    pub connection_errors: u64,
    /// Sessions whose query failed.
    pub query_errors: u64,
    /// The most connections checked out at once.
    pub peak_checked_out: u32,
    pub first_error: Option<String>,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// With --pgbouncer: its pool for the load's database, as sampled during the load.
    pub pgbouncer: Option<BouncerUnderLoad>,
}

/// pgbouncer's pool for the load's database during the load (SHOW POOLS
/// every `SAMPLE_EVERY`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerUnderLoad {
    pub database: String,
    /// The database's pool_size (default_pool_size unless [databases] sets it).
    pub pool_size: i64,
    pub samples: u64,
    /// The most clients waiting for a server connection at once.
    pub peak_clients_waiting: i64,
    pub peak_servers_active: i64,
    /// The longest a client had waited, over the samples.
    pub max_wait_seconds: f64,
}

impl BouncerUnderLoad {
    /// Clients queued in pgbouncer while all its pool's servers were busy:
    /// the limit was pgbouncer's pool, not the application's.
    pub fn was_the_limit(&self) -> bool {
        self.peak_clients_waiting > 0 && self.peak_servers_active >= self.pool_size
    }
}

/// How often the load samples pgbouncer's pools.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Samples SHOW POOLS on the admin console during the load.
struct BouncerSampler {
    console: postgres::Client,
    database: String,
    seen: BouncerUnderLoad,
    next: Instant,
}

impl BouncerSampler {
    fn open(console: &ConnInfo, database: &str) -> Result<BouncerSampler> {
        Ok(BouncerSampler {
            console: pgbouncer::console(console).context("--pgbouncer, sampled during --load")?,
            database: database.to_string(),
            seen: BouncerUnderLoad {
                database: database.to_string(),
                pool_size: 0,
                samples: 0,
                peak_clients_waiting: 0,
                peak_servers_active: 0,
                max_wait_seconds: 0.0,
            },
            next: Instant::now(),
        })
    }

    /// One sample when one is due.
    fn sample(&mut self) -> Result<()> {
        if Instant::now() < self.next {
            return Ok(());
        }
        self.next = Instant::now() + SAMPLE_EVERY;
        let seen = &mut self.seen;
        seen.samples += 1;
        for p in pgbouncer::pools(&mut self.console)? {
            if p.database != self.database {
                continue;
            }
            seen.pool_size = seen.pool_size.max(p.pool_size);
            seen.peak_clients_waiting = seen.peak_clients_waiting.max(p.clients_waiting);
            seen.peak_servers_active = seen.peak_servers_active.max(p.servers_active);
            seen.max_wait_seconds = seen.max_wait_seconds.max(p.max_wait_seconds);
        }
        Ok(())
    }
}

impl LoadReport {
    /// Whether the pool failed the load: a checkout timed out or a session failed.
    pub fn failed(&self) -> bool {
        self.timeouts > 0 || self.connection_errors > 0 || self.query_errors > 0
    }
}

/// Counters the worker threads share.
#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    failed_checkouts: AtomicU64,
    query_errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, message: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(message);
        }
    }
}

// Sent as the unnamed statement: a named one would outlive the transaction on
// a server connection that pgbouncer (transaction mode) hands to another client.
const HOLD_SQL: &str = "SELECT pg_sleep($1)";

/// The application_name of the load's connections: the configured one, marked.
pub fn load_application_name(config: &Config) -> String {
    marked_application_name(config, "o2o-db --load")
}

/// The configured application_name with `mark` in parentheses, so o2o-db's own
/// connections are not mistaken for the application's.
pub fn marked_application_name(config: &Config, mark: &str) -> String {
    let mut name = format!("{} ({mark})", config.application_name());
    // The server keeps 63 bytes of it; cut here so a lookup by name still matches.
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// Runs the load on a pool built from `config` and returns the report and the
/// pool's figures at the end. The pool is closed before this returns.
/// With `console`, pgbouncer's pool for the load's database is sampled too.
pub fn run(
    config: &Config,
    plan: &LoadPlan,
    console: Option<&ConnInfo>,
    stop: &Stop,
) -> Result<(LoadReport, PoolFigures)> {
    if plan.sessions == 0 {
        bail!("--load needs at least 1 session");
    }
    let application = load_application_name(config);
    let mut conn = config.conn.clone();
    conn.application_name = Some(application.clone());
    // Warming up is not what is measured: the pool opens its `size` connections
    // (as a running service has them) within the connect timeout, and every
    // checkout of the load then waits at most the configured [pool] timeout.
    let checkout_timeout = config.pool.timeout.0;
    let warm_within = checkout_timeout.max(
        config
            .conn
            .connect_limit()
            .unwrap_or(Duration::from_secs(10)),
    );
    let open_settings = PoolSettings {
        timeout: crate::config::HumanDuration(warm_within),
        ..config.pool.clone()
    };
    let pool = Pool::with_settings(&conn, &open_settings, Warm::Full)
        .context("opening the pool for --load")?;
    let database = conn.dbname.clone().unwrap_or_default();
    let mut sampler = console
        .map(|c| BouncerSampler::open(c, &database))
        .transpose()?;

    let tally = Tally::default();
    let started = Instant::now();
    let deadline = started + plan.duration;
    let hold_seconds = plan.hold.as_secs_f64();
    let mut peak: u32 = 0;
    let histogram = std::thread::scope(|scope| -> Result<Histogram<u64>> {
        let mut workers = Vec::with_capacity(plan.sessions as usize);
        for i in 0..plan.sessions {
            let (pool, tally) = (&pool, &tally);
            let worker = std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn_scoped(scope, move || {
                    session_loop(pool, checkout_timeout, hold_seconds, deadline, stop, tally)
                })
                .map_err(|e| {
                    // Ends the threads already started; the run then fails (exit 2).
                    stop.request();
                    anyhow!(
                        "cannot start load thread {i} of {}: {e}; try a smaller --load",
                        plan.sessions
                    )
                });
            match worker {
                Ok(w) => workers.push(w),
                Err(e) => {
                    for w in workers {
                        let _ = w.join();
                    }
                    return Err(e);
                }
            }
        }
        // Sample the pool while the sessions run, for the peak.
        let mut sampled = Ok(());
        while Instant::now() < deadline {
            let state = pool.state();
            peak = peak.max(state.connections.saturating_sub(state.idle_connections));
            if let Some(s) = sampler.as_mut().filter(|_| sampled.is_ok()) {
                sampled = s.sample();
            }
            if stop.sleep(Duration::from_millis(5)) {
                break;
            }
        }
        let mut total = new_histogram()?;
        for w in workers {
            let h = w.join().map_err(|_| anyhow!("a load thread panicked"))??;
            total
                .add(&h)
                .map_err(|e| anyhow!("merging checkout times: {e}"))?;
        }
        sampled?;
        Ok(total)
    })?;
    let elapsed = started.elapsed().as_secs_f64();

    let mut figures = PoolFigures::of(&pool);
    figures.timeout = config.pool.timeout;
    let stats = pool.checkout_stats();
    let completed = tally.completed.load(Ordering::Relaxed);
    let quantile = |q: f64| {
        if histogram.is_empty() {
            0.0
        } else {
            histogram.value_at_quantile(q) as f64 / 1000.0
        }
    };
    let report = LoadReport {
        sessions: plan.sessions,
        duration_seconds: (elapsed * 1000.0).round() / 1000.0,
        hold_ms: plan.hold.as_secs_f64() * 1000.0,
        application,
        completed,
        sessions_per_second: if elapsed > 0.0 {
            (completed as f64 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
        checkouts: stats.checkouts,
        waits: stats.waits,
        wait_ms_max: stats.wait_ms_max,
        checkout_ms_p50: quantile(0.50),
        checkout_ms_p95: quantile(0.95),
        checkout_ms_p99: quantile(0.99),
        timeouts: tally.failed_checkouts.load(Ordering::Relaxed),
        timeout_ms: checkout_timeout.as_secs_f64() * 1000.0,
        connection_errors: stats.connection_errors,
        query_errors: tally.query_errors.load(Ordering::Relaxed),
        peak_checked_out: peak,
        first_error: tally.first_error.lock().ok().and_then(|e| e.clone()),
        interrupted: stop.requested(),
        pgbouncer: sampler.map(|s| s.seen),
    };
    drop(pool);
    Ok((report, figures))
}

fn new_histogram() -> Result<Histogram<u64>> {
    // Microseconds, 1 µs to 1 h, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| anyhow!("checkout histogram: {e}"))
}

/// One simulated user: session after session until the deadline.
fn session_loop(
    pool: &Pool,
    checkout_timeout: Duration,
    hold_seconds: f64,
    deadline: Instant,
    stop: &Stop,
    tally: &Tally,
) -> Result<Histogram<u64>> {
    let mut checkout_times = new_histogram()?;
    while Instant::now() < deadline && !stop.requested() {
        let asked = Instant::now();
        // The pool was opened with a longer timeout for warming up; each checkout
        // waits at most [pool] timeout, and the pool counts waits and timeouts.
        let mut conn = match pool.get_timeout(checkout_timeout) {
            Ok(conn) => conn,
            Err(e) => {
                // The error says "pool exhausted" or "cannot connect"; the pool's
                // connection_errors say how often the server was the cause.
                tally.failed_checkouts.fetch_add(1, Ordering::Relaxed);
                tally.error(format!("checkout: {e}"));
                continue;
            }
        };
        checkout_times.saturating_record(asked.elapsed().as_micros().max(1) as u64);
        match conn.execute_typed(HOLD_SQL, &[(&hold_seconds, Type::FLOAT8)]) {
            Ok(_) => {
                tally.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.query_errors.fetch_add(1, Ordering::Relaxed);
                tally.error(format!("query: {}", describe_pg_error(&e)));
                drop(conn);
                // A failing server must not turn the load into a busy loop.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(checkout_times)
}

/// Waits (at most `within`) until the server no longer lists connections of
/// `application` in this database: a closed pool's backends exit a moment
/// after their sockets close. A pooler's server connections (`pooler_pids`)
/// stay open and are not waited for. Returns how many are still there.
pub fn wait_until_gone(
    pool: &Pool,
    application: &str,
    pooler_pids: &[i32],
    within: Duration,
) -> Result<i64> {
    let until = Instant::now() + within;
    loop {
        let left: i64 = db::with_readonly_session(pool, |tx| {
            Ok(tx
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND application_name = $1
                        AND pid <> ALL($2)",
                    &[&application, &pooler_pids],
                )?
                .get(0))
        })?;
        if left == 0 || Instant::now() >= until {
            return Ok(left);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
