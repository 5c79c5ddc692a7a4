//! `o2o-db benchmark`: times the dashboard's queries so that cron can trust
//! the numbers, with honest before/after speedups.
//!
//! This file holds the flags, the report's shape and the order of work:
//! setup (suite, parameters, server facts) -> timed runs -> optional seq-scan
//! pass -> thresholds and baseline -> history. Running, statistics, history
//! and rendering live in benchmark/.

mod history;
mod render;
mod runner;
mod stats;

use crate::config::{Config, HumanDuration, PoolSettings};
use crate::db::PgContext;
use crate::db::{self, CheckoutStats, Pool, Warm};
use crate::ident::quote_ident;
use crate::params::{self, ParamPool};
use crate::report::{self, Outcome, Report};
use crate::seed_data::Rng;
use crate::sqlfiles::IndexSet;
use crate::sqlfiles::{QuerySpec, QuerySuite};
use crate::stop::Stop;
use anyhow::{bail, Result};
use history::{DamagedLine, History, PastRun};
use runner::{Job, Measured, Plan, RunSettings, Scans};
use serde::Serialize;
use stats::{round, Figures};
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

/// The run as `--format json` prints it and `--history` records it.
/// Latencies are in ms; a figure is null when every run of the query failed.
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkReport {
    pub meta: Meta,
    pub queries: Vec<QueryFigures>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    pub server_version: String,
    pub database: String,
    /// The table of the managed index set, schema-qualified, that the suite's
    /// queries ran against (its schema first on every session's search_path);
    /// null when the database has no such table (a suite of another table).
    pub table: Option<String>,
    /// Rows in that table.
    pub orders: Option<i64>,
    /// Where the queries came from.
    pub suite: String,
    /// "sequential" (one dedicated connection) or "concurrent" (clients sharing the pool).
    pub mode: &'static str,
    pub clients: u32,
    /// Timed runs per query (null with --duration).
    pub iterations: Option<u64>,
    /// Seconds each query was timed for (null without --duration).
    pub duration_s: Option<f64>,
    pub warmup: u32,
    pub seed: u64,
    pub fixed_params: bool,
    pub max_p95_ms: f64,
    pub compare_seqscan: bool,
    /// Wall-clock seconds of the whole run, setup included.
    pub elapsed_s: f64,
    /// The pool's checkout counters over the run, opening and warm-up included
    /// (concurrent mode; per-query waits of the timed runs are in each query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineMeta>,
    /// Lines of the --history or --baseline file that are not runs (torn by a
    /// crash or a full disk mid-write): skipped, not an error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_history_lines: Vec<DamagedLine>,
    /// Stopped by Ctrl-C: the queries measured so far are reported.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolMeta {
    pub max_size: u32,
    #[serde(flatten)]
    pub checkouts: CheckoutStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineMeta {
    pub file: String,
    /// started_at of the run compared with.
    pub started_at: String,
    pub slower_percent: f64,
    /// Why the comparison may be unfair (different clients or parameters), if it may.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryFigures {
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// Successful runs per second of wall-clock time.
    pub qps: f64,
    /// Median with index and bitmap scans disabled (--compare-seqscan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seqscan_p50_ms: Option<f64>,
    /// seqscan_p50_ms / p50_ms (--compare-seqscan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// Time waiting for a pool connection per run, not part of the latencies (concurrent mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_mean_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_max_ms: Option<f64>,
    /// The baseline run's median (--baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_p50_ms: Option<f64>,
    /// How much slower (+) or faster (-) the median is than the baseline's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_change_percent: Option<f64>,
    /// p95 above max_p95_ms.
    pub over_max_p95: bool,
    /// No timed run succeeded (a --duration shorter than one run, or every run
    /// failed): there is nothing to hold against the p95 limit or the
    /// baseline, and a gate over nothing must not pass.
    pub not_measured: bool,
    /// Median more than slower_percent (and at least 0.1 ms) above the baseline's.
    pub slower_than_baseline: bool,
    /// The message of the last failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The values bound on every run, as SQL literals (--fixed-params).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
}

impl QueryFigures {
    /// Whether this query makes the run's outcome Findings.
    pub fn flagged(&self) -> bool {
        self.over_max_p95
            || self.slower_than_baseline
            || self.not_measured
            || self.figures.errors > 0
    }
}

impl Report for BenchmarkReport {
    const FORMATS: &'static [crate::report::Format] = &[
        crate::report::Format::Table,
        crate::report::Format::Json,
        crate::report::Format::Csv,
    ];

    fn render_table(&self, w: &mut dyn std::io::Write) -> Result<()> {
        render::table(self, w)
    }

    fn render_csv(&self, w: &mut dyn std::io::Write) -> Result<()> {
        render::csv(self, w)
    }

    fn outcome(&self) -> Outcome {
        if self.meta.interrupted {
            Outcome::Interrupted
        } else {
            Outcome::from_findings(self.queries.iter().any(QueryFigures::flagged))
        }
    }
}

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
    let settings = RunSettings {
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
    // Read the baseline and open the history before measuring: a bad path fails now,
    // and with one file for both, the run is compared with the one before it.
    // Damaged lines (a run torn by a crash or a full disk) are skipped and reported.
    let mut damaged = Vec::new();
    let baseline = match &args.baseline {
        Some(path) => {
            let scan = history::scan(path)?;
            damaged.extend(scan.damaged);
            scan.last.map(|run| (path, run))
        }
        None => None,
    };
    if let (Some(path), None) = (&args.baseline, &baseline) {
        report::notice(&format!(
            "no baseline yet: {} has no runs; this run is not compared",
            path.display()
        ));
    }
    let mut history = match &args.history {
        Some(path) => {
            if args.baseline.as_ref() != Some(path) {
                damaged.extend(history::scan(path)?.damaged);
            }
            Some(History::open(path)?)
        }
        None => None,
    };
    for line in &damaged {
        eprintln!("o2o-db: warning: {line}");
    }

    // Every query runs against the table of the managed index set.
    let (managed, table) = on_managed_table(config)?;
    let config = &managed;
    let setup = setup(
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
            figures(
                job,
                m,
                seq,
                pool.is_some(),
                max_p95_ms,
                setup.fixed_literals[i].clone(),
            )
        })
        .collect();
    let baseline = baseline.map(|(path, past)| {
        compare_with_baseline(&mut queries, &past, slower_percent);
        BaselineMeta {
            file: path.display().to_string(),
            note: baseline_note(&past, &settings, args.fixed_params),
            started_at: past.meta.started_at,
            slower_percent,
        }
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
        },
        queries,
    };
    if let Some(history) = &mut history {
        if interrupted {
            report::notice("interrupted: this partial run is not added to the history");
        } else {
            history.append(&report)?;
        }
    }
    Ok(report)
}

/// What the run needs from the server before timing starts.
struct Setup {
    server_version: String,
    orders: Option<i64>,
    jobs: Vec<Job>,
    /// Per job, with --fixed-params: the bound values as SQL literals.
    fixed_literals: Vec<Option<Vec<String>>>,
}

/// Reads the server's version and row count and each query's candidate
/// parameters, on a connection closed before timing starts.
fn setup(
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
    }
}

/// A median this much slower or less is not a regression, whatever the percent:
/// sub-0.1 ms queries move by more than 20% with where the scheduler puts the
/// backend, and a nightly alert on 0.04 -> 0.08 ms would only teach people to ignore it.
pub const BASELINE_NOISE_MS: f64 = 0.1;

/// Flags the queries whose median is more than `slower_percent` (and at least
/// BASELINE_NOISE_MS) above the baseline's.
fn compare_with_baseline(queries: &mut [QueryFigures], past: &PastRun, slower_percent: f64) {
    for q in queries {
        let Some(before) = past.query(&q.name).and_then(|p| p.p50_ms) else {
            continue;
        };
        q.baseline_p50_ms = Some(before);
        if before > 0.0 && q.figures.p50_ms.is_finite() {
            let change = (q.figures.p50_ms / before - 1.0) * 100.0;
            q.baseline_change_percent = Some(round(change, 1));
            q.slower_than_baseline =
                change > slower_percent && q.figures.p50_ms - before >= BASELINE_NOISE_MS;
        }
    }
}

/// Says when the baseline ran under different conditions than this run.
fn baseline_note(past: &PastRun, settings: &RunSettings, fixed_params: bool) -> Option<String> {
    let mut notes = Vec::new();
    if let Some(c) = past.meta.clients.filter(|c| *c != settings.clients) {
        notes.push(format!(
            "the baseline ran with {c} client(s), this run with {}",
            settings.clients
        ));
    }
    if past.meta.fixed_params.is_some_and(|f| f != fixed_params) {
        notes.push("one of the two runs used --fixed-params".to_string());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
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

/// The managed index set's table as the server resolves it.
struct ManagedTable {
    /// `schema.table`, for the report.
    shown: String,
    /// Quoted, for SQL text.
    quoted: String,
}

/// `config` with the managed table's schema first on every session's
/// search_path, and that table; None when the database has no such table
/// (a suite of another table, e.g. examples/menu without its index file).
fn on_managed_table(config: &Config) -> Result<(Config, Option<ManagedTable>)> {
    let set = IndexSet::load(config.indexes.file.as_deref())?;
    let mut client = db::connect(&config.conn)?;
    let found = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            &[&set.table().qualified_table()],
        )
        .pg_context("looking up the managed table")?;
    let mut config = config.clone();
    let table = found.map(|row| {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        config.conn.schema_first = Some(schema.clone());
        ManagedTable {
            shown: format!("{schema}.{name}"),
            quoted: format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
        }
    });
    Ok((config, table))
}
