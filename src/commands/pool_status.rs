//! `o2o-db pool-status`: the pool the config builds and the server's view of
//! the application's real connections, with an alert (exit 1) for cron.
//!
//! A CLI process sees only its own new pool, so the usage that matters is read
//! from the server: the application's connections against the max_size its
//! pool is configured with. The V8.5 report alerted above 80% to catch pool
//! exhaustion ("QueuePool limit exceeded") and session leaks; the leaks
//! themselves (sessions idle in transaction) are listed by pid.
//!
//! The figures come from the library (crate::db::status); load.rs is
//! --load, watch.rs --watch, render.rs the table.

mod load;
mod monitoring;
mod render;
mod watch;

pub use crate::db::status::{
    percent, pool_status, pool_status_with, server_figures, ApplicationGroup, IdleSession,
    OwnBackend, PoolFigures, PoolStatus, ServerFigures, StatusOptions,
};
pub use load::{LoadPlan, LoadReport};

use crate::config::{Config, HumanDuration};
use crate::db::{Pool, Warm};
use crate::report::{self, Format, Outcome, Report};
use crate::stop::Stop;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct PoolStatusArgs {
    /// Application whose connections count against the pool: usage = its
    /// connections on the server / the configured max_size [default: the configured application_name]
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,

    /// Also read this pgbouncer's admin console (SHOW POOLS): clients waiting
    /// for a server connection and the longest wait, per pool
    ///
    /// Example: --pgbouncer postgres://pgbouncer@127.0.0.1:6432/pgbouncer
    #[arg(long, value_name = "URL")]
    pub pgbouncer: Option<String>,

    /// Alert (and exit 1) when that usage is above this percentage
    /// [default: [alert] pool_usage_percent, 80]
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub alert_percent: Option<f64>,

    /// List sessions idle in transaction for longer than this (the leaks)
    /// [default: [verify] session_age, 5m]
    #[arg(long, value_name = "DURATION")]
    pub session_age: Option<HumanDuration>,

    /// Take a snapshot every DURATION until Ctrl-C (exit 130). On a terminal the
    /// table is redrawn in place; otherwise each snapshot is appended (tables
    /// separated by a blank line, or one JSON object per line with --format json)
    #[arg(long, value_name = "DURATION", conflicts_with = "load")]
    pub watch: Option<HumanDuration>,

    /// Hold N concurrent sessions through a pool built from [pool] for --duration,
    /// then report checkouts, waits, the longest wait, timeouts and errors
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub load: Option<u32>,

    /// How long --load runs [default: 10s]
    #[arg(long, value_name = "DURATION", requires = "load")]
    pub duration: Option<HumanDuration>,

    /// How long each --load session holds its connection, in a server-side
    /// pg_sleep [default: 10ms]
    #[arg(long, value_name = "DURATION", requires = "load")]
    pub hold: Option<HumanDuration>,
}

crate::cli::clap_default!(PoolStatusArgs);

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a percentage: use a number above 0 and at most 100, like 80"
        )),
    }
}

/// The application whose connections count against its pool.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppUsage {
    pub name: String,
    /// Its connections in the database, any state (o2o-db's own left out).
    pub connections: i64,
    /// The configured max_size they count against.
    pub max_size: u32,
    pub usage_percent: f64,
    pub alert_percent: f64,
}

/// One pool-status report. JSON: {"pool": {...}, "server": {...}, "alert": bool, ...}.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatusReport {
    /// The server's clock (UTC).
    pub taken_at: String,
    /// host:port/database (every host of a multi-host URL).
    pub target: String,
    /// `host:port` of the host that answered.
    pub reached: String,
    /// This o2o-db process's pool; with --load, the pool that carried the load.
    pub pool: PoolFigures,
    pub server: ServerFigures,
    pub app: AppUsage,
    /// The application's usage is above alert_percent.
    pub alert: bool,
    pub load: Option<LoadReport>,
    /// With --pgbouncer: its pools (null without).
    pub pgbouncer: Option<Vec<crate::db::pgbouncer::BouncerPool>>,
}

impl Report for PoolStatusReport {
    const FORMATS: &'static [Format] = &[
        Format::Table,
        Format::Json,
        Format::Prometheus,
        Format::Nagios,
    ];

    fn render_prometheus(&self, w: &mut dyn Write) -> Result<()> {
        monitoring::prometheus(self, w)
    }

    fn nagios(&self) -> Option<crate::report::NagiosCheck> {
        Some(monitoring::nagios(self))
    }

    fn render_table(&self, w: &mut dyn Write) -> Result<()> {
        render::table(self, w)
    }

    fn outcome(&self) -> Outcome {
        let load = match &self.load {
            Some(l) if l.interrupted => Outcome::Interrupted,
            Some(l) => Outcome::from_findings(l.failed()),
            None => Outcome::Clean,
        };
        Outcome::from_findings(self.alert).and(load)
    }
}

/// One report: a snapshot, after the load when --load is given (--watch is
/// the CLI's loop around this; see `run_cli`).
pub fn run(config: &Config, args: &PoolStatusArgs) -> Result<PoolStatusReport> {
    run_until(config, args, &Stop::new())
}

/// The subcommand: one report, or a watch, written to `out`.
pub fn run_cli(
    config: &Config,
    args: &PoolStatusArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if let Some(every) = args.watch {
        return watch::run(config, args, every.0, format, out);
    }
    // A snapshot is quick; only a load listens to the process's stop.
    let stop = match args.load {
        Some(_) => crate::stop::process().clone(),
        None => Stop::new(),
    };
    report::emit(&run_until(config, args, &stop)?, format, out)
}

fn run_until(config: &Config, args: &PoolStatusArgs, stop: &Stop) -> Result<PoolStatusReport> {
    // Opened first: an unreachable server fails before a 10 s load, not after.
    let probe = open_probe_pool(config)?;
    let loaded = match args.load {
        None => None,
        Some(sessions) => {
            let plan = LoadPlan {
                sessions,
                duration: args.duration.map_or(Duration::from_secs(10), |d| d.0),
                hold: args.hold.map_or(Duration::from_millis(10), |d| d.0),
            };
            report::notice(&format!(
                "o2o-db: {} sessions through a pool of {} for {} ...",
                plan.sessions,
                config.pool.max_size(),
                humantime::format_duration(plan.duration)
            ));
            let (load, figures) = load::run(config, &plan, stop)?;
            // The load's pool is closed; let its backends leave before the snapshot.
            let left = load::wait_until_gone(&probe, &load.application, Duration::from_secs(5))?;
            if left > 0 {
                report::notice(&format!(
                    "o2o-db: {left} connections of the load are still closing; they show as `{}`",
                    load.application
                ));
            }
            Some((load, figures))
        }
    };
    snapshot(config, args, &probe, loaded)
}

/// The pool o2o-db itself uses to read the server: built from [pool], opened
/// lazily (one connection), so the pool section shows what the config builds.
fn open_probe_pool(config: &Config) -> Result<Pool> {
    Pool::open(config, Warm::Lazy)
}

/// One report read through `probe`; with a load, the pool figures are the load pool's.
fn snapshot(
    config: &Config,
    args: &PoolStatusArgs,
    probe: &Pool,
    loaded: Option<(LoadReport, PoolFigures)>,
) -> Result<PoolStatusReport> {
    let options = StatusOptions {
        session_age: args.session_age.map_or(config.verify.session_age, |d| d.0),
        // The o2o-db process's own connection is not the application's.
        exclude_own_connection: true,
    };
    let status = pool_status_with(probe, &options)?;
    let pgbouncer = match &args.pgbouncer {
        Some(url) => {
            let conn = crate::conninfo::ConnInfo::parse(url)
                .map_err(|e| anyhow::anyhow!("--pgbouncer: {e:#}"))?;
            Some(crate::db::pgbouncer::pools(&conn)?)
        }
        None => None,
    };
    let (load, pool) = match loaded {
        Some((load, figures)) => (Some(load), figures),
        None => (None, status.pool),
    };
    let name = args
        .app
        .clone()
        .unwrap_or_else(|| config.application_name().to_string());
    let max_size = config.pool.max_size();
    let alert_percent = args
        .alert_percent
        .unwrap_or(config.alert.pool_usage_percent);
    let connections = status.server.connections_of(&name);
    // Compared exactly, not on the rounded percentage.
    let alert = connections as f64 * 100.0 > alert_percent * max_size as f64;
    Ok(PoolStatusReport {
        taken_at: status.taken_at,
        target: config.conn.target(),
        reached: probe.reached().to_string(),
        pool,
        app: AppUsage {
            usage_percent: percent(connections as f64, max_size as f64),
            name,
            connections,
            max_size,
            alert_percent,
        },
        server: status.server,
        alert,
        load,
        pgbouncer,
    })
}
