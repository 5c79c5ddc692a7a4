//! `o2o-db benchmark`: times the dashboard's queries so that cron can trust
//! the numbers, with honest before/after speedups.
//!
//! This file holds the flags and the order of work: setup (suite, parameters,
//! server facts) -> timed runs -> optional seq-scan pass -> thresholds and
//! baseline -> history. The report's shape, setup, running, statistics,
//! baseline, history and rendering live in benchmark/.

mod baseline;
mod history;
mod monitoring;
mod render;
mod report;
mod runner;
mod setup;
mod stats;

pub use baseline::BASELINE_NOISE_MS;
pub use report::{BaselineMeta, BenchmarkReport, Meta, PoolMeta, Pruning, QueryFigures};

use crate::config::{Config, HumanDuration, PoolSettings};
use crate::db::{Pool, Pooling, Warm};
use crate::sqlfiles::QuerySuite;
use crate::stop::Stop;
use anyhow::{bail, Result};
pub use runner::Statements;
use runner::{Job, Measured, Plan, RunSettings, Scans};
use stats::round;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchmarkArgs {
    /// Query suite to run [default: [benchmark] file in the config, else the built-in dashboard suite]
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,

    /// Run only these queries, by name (repeat the flag or separate with commas)
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,

    /// Untimed runs per query before timing starts [default: [benchmark] warmup, 3]
    #[arg(long, value_name = "N")]
    pub warmup: Option<u32>,

    /// Timed runs per query (over all clients together) [default: [benchmark] iterations, 20]
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub iterations: Option<NonZeroU32>,

    /// Time each query for this long instead of a number of runs, e.g. 30s
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<HumanDuration>,

    /// Client threads sharing the connection pool; 1 runs on one dedicated connection.
    /// More clients than the pool's max_size queue for a connection
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub clients: u32,

    /// Seed for drawing parameters from the data [default: [benchmark] seed, 42]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Bind the same parameter values (the seed's first draw) on every run and
    /// show them, to compare with pgbench or psql on the very same values
    #[arg(long)]
    pub fixed_params: bool,

    /// Run each query again with index and bitmap scans disabled, and report the
    /// seq-scan median and the speedup the indexes give
    #[arg(long)]
    pub compare_seqscan: bool,

    /// Mark queries whose p95 is above this many ms and exit 1 [default: [alert] query_ms, 100]
    #[arg(long, value_name = "MS")]
    pub max_p95_ms: Option<f64>,

    /// Append this run to a history file, one JSON line per run
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Compare with the last run in this history file and exit 1 when a query's
    /// median is slower by more than --slower-percent and by at least 0.1 ms
    /// (a missing or empty file is no baseline yet)
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// How much slower than the baseline counts as a regression, in percent
    /// [default: [benchmark] baseline_slower_percent, 20]
    #[arg(long, value_name = "PERCENT", requires = "baseline")]
    pub slower_percent: Option<f64>,
}

crate::cli::clap_default!(BenchmarkArgs);

/// Runs with the process's stop (signals, see crate::stop).
pub fn run(config: &Config, args: &BenchmarkArgs) -> Result<BenchmarkReport> {
    run_with(config, args, crate::stop::process())
}

/// Runs; requesting `stop` ends the run after the current query runs, and the
/// report shows what was measured (outcome Interrupted).
pub fn run_with(config: &Config, args: &BenchmarkArgs, stop: &Stop) -> Result<BenchmarkReport> {
    let run_started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let max_p95_ms = args.max_p95_ms.unwrap_or(config.alert.query_ms);
    if !(max_p95_ms.is_finite() && max_p95_ms > 0.0) {
        bail!("--max-p95-ms must be a positive number of milliseconds, not {max_p95_ms}");
    }
    let slower_percent = args
        .slower_percent
        .unwrap_or(config.benchmark.baseline_slower_percent);
    if !(slower_percent.is_finite() && slower_percent >= 0.0) {
        bail!("--slower-percent must be 0 or more, not {slower_percent}");
    }
    crate::db::pgbouncer::refuse_admin_console(&config.conn, "pool-status --pgbouncer")?;
    // Through a pooler sharing server connections per transaction, no named
    // statement may outlive its run (see runner).
    let statements = match config.pooling.resolve(&config.conn)? {
        Pooling::Transaction => Statements::Unnamed,
        Pooling::Session | Pooling::Auto => Statements::Prepared,
    };
    let settings = RunSettings {
        statements,
        warmup: args.warmup.unwrap_or(config.benchmark.warmup),
        plan: match args.duration {
            Some(d) => Plan::For(d.0),
            None => Plan::Runs(u64::from(
                args.iterations
                    .map_or(config.benchmark.iterations, NonZeroU32::get),
            )),
        },
        clients: args.clients.max(1),
        seed: args.seed.unwrap_or(config.benchmark.seed),
        stop,
    };

    let suite = QuerySuite::load(args.queries.as_deref().or(config.benchmark.file.as_deref()))?;
    let specs = suite.select(&args.only)?;
    let baseline::Records {
        baseline: past,
        mut history,
        damaged,
    } = baseline::open(args)?;

    // Every query runs against the table of the managed index set.
    let (managed, table) = setup::on_managed_table(config, statements)?;
    let config = &managed;
    let setup = setup::read(
        config,
        table.as_ref(),
        &suite.origin,
        &specs,
        settings.seed,
        args.fixed_params,
    )?;
    let jobs = &setup.jobs;

    let (measured, pool) = measure(config, jobs, &settings, Scans::Planner)?;
    let seqscan = if args.compare_seqscan && !stop.requested() {
        Some(measure(config, jobs, &settings, Scans::SeqOnly)?.0)
    } else {
        None
    };
    let interrupted = stop.requested()
        || measured.len() < jobs.len()
        || seqscan.as_ref().is_some_and(|s| s.len() < jobs.len());

    let mut queries: Vec<QueryFigures> = measured
        .iter()
        .zip(jobs)
        .enumerate()
        .map(|(i, (m, job))| {
            let seq = seqscan.as_ref().and_then(|s| s.get(i));
            QueryFigures {
                partitions: setup.pruning[i],
                ..figures(
                    job,
                    m,
                    seq,
                    pool.is_some(),
                    max_p95_ms,
                    setup.fixed_literals[i].clone(),
                )
            }
        })
        .collect();
    let baseline = past.map(|found| {
        baseline::apply(
            &mut queries,
            found,
            slower_percent,
            &settings,
            args.fixed_params,
        )
    });

    let report = BenchmarkReport {
        meta: Meta {
            started_at,
            server_version: setup.server_version,
            database: config.conn.dbname.clone().unwrap_or_default(),
            table: table.as_ref().map(|t| t.shown.clone()),
            orders: setup.orders,
            suite: suite.origin.clone(),
            mode: if pool.is_some() {
                "concurrent"
            } else {
                "sequential"
            },
            clients: settings.clients,
            iterations: match settings.plan {
                Plan::Runs(n) => Some(n),
                Plan::For(_) => None,
            },
            duration_s: match settings.plan {
                Plan::Runs(_) => None,
                Plan::For(d) => Some(d.as_secs_f64()),
            },
            warmup: settings.warmup,
            seed: settings.seed,
            fixed_params: args.fixed_params,
            max_p95_ms,
            compare_seqscan: args.compare_seqscan,
            elapsed_s: round(run_started.elapsed().as_secs_f64(), 3),
            pool,
            baseline,
            damaged_history_lines: damaged,
            interrupted,
            statements,
        },
        queries,
    };
    if let Some(history) = &mut history {
        if interrupted {
            crate::report::notice("interrupted: this partial run is not added to the history");
        } else {
            history.append(&report)?;
        }
    }
    Ok(report)
}

/// The timed runs of every job: sequential on a dedicated connection, or
/// concurrent on a pool of its own (returned with its checkout counters).
fn measure(
    config: &Config,
    jobs: &[Job],
    settings: &RunSettings,
    scans: Scans,
) -> Result<(Vec<Measured>, Option<PoolMeta>)> {
    if settings.clients <= 1 {
        return Ok((
            runner::sequential(&config.conn, jobs, settings, scans)?,
            None,
        ));
    }
    // No health check on checkout: it would add a round trip to every run and
    // take server time from the queries being measured. A connection that died
    // is still replaced: its failed run is counted and the pool drops it.
    let settings_without_ping = PoolSettings {
        pre_ping: false,
        ..config.pool.clone()
    };
    let pool = Pool::with_settings(&config.conn, &settings_without_ping, Warm::Lazy)?;
    let measured = runner::concurrent(&pool, jobs, settings, scans)?;
    let meta = PoolMeta {
        max_size: pool.max_size(),
        checkouts: pool.checkout_stats(),
    };
    Ok((measured, Some(meta)))
}

fn figures(
    job: &Job,
    m: &Measured,
    seqscan: Option<&Measured>,
    concurrent: bool,
    max_p95_ms: f64,
    params: Option<Vec<String>>,
) -> QueryFigures {
    let f = m.recorder.figures();
    let seqscan_p50 = seqscan.map(|q| q.recorder.figures().p50_ms);
    let wall = m.wall.as_secs_f64();
    let qps = if wall > 0.0 {
        f.iterations as f64 / wall
    } else {
        0.0
    };
    let wait = m.recorder.wait();
    QueryFigures {
        name: job.name.clone(),
        over_max_p95: f.p95_ms > max_p95_ms,
        not_measured: f.iterations == 0,
        qps: round(qps, 1),
        seqscan_p50_ms: seqscan_p50,
        speedup: seqscan_p50.map(|v| round(v / f.p50_ms, 2)),
        wait_mean_ms: concurrent.then(|| round(wait.mean_ms(), 3)),
        wait_max_ms: concurrent.then(|| round(wait.max_ms(), 3)),
        baseline_p50_ms: None,
        baseline_change_percent: None,
        slower_than_baseline: false,
        last_error: m.recorder.last_error().map(str::to_string),
        figures: f,
        params,
        partitions: None,
    }
}
