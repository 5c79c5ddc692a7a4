//! `o2o-db pool-status`: the pool the config builds and the server's view of
//! the application's real connections, with an alert (exit 1) for cron.
//!
//! A CLI process sees only its own new pool, so the usage that matters is read
//! from the server: the application's connections against the max_size its
//! pool is configured with. The V8.5 report alerted above 80% to catch pool
//! exhaustion ("QueuePool limit exceeded") and session leaks; the leaks
//! themselves (sessions idle in transaction) are listed by pid.
//!
//! Behind pgbouncer the server's backends are pgbouncer's server connections,
//! named after whichever client used them last: its admin console says which
//! they are, and the application's connections are its clients there.
//!
//! The figures come from the library (crate::db::status, crate::db::pgbouncer);
//! bouncer.rs judges pgbouncer's pools, load.rs is --load, watch.rs --watch,
//! render.rs the table.

mod bouncer;
mod load;
mod monitoring;
mod render;
mod watch;

pub use crate::db::status::{
    percent, pool_status, pool_status_with, server_figures, ApplicationGroup, IdleSession,
    OwnBackend, PoolFigures, PoolStatus, PoolerGroup, ServerFigures, StatusOptions,
};
pub use bouncer::BouncerSection;
pub use load::{BouncerUnderLoad, LoadPlan, LoadReport};

use crate::config::{Config, HumanDuration};
use crate::conninfo::ConnInfo;
use crate::db::{pgbouncer, Pool, Pooling, Warm};
use crate::report::{self, Format, Outcome, Report};
use crate::stop::Stop;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct PoolStatusArgs {
    /// Application whose connections count against the pool: usage = its
    /// connections on the server / the configured max_size [default: the configured application_name]
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,

    /// Also read this pgbouncer's admin console (SHOW POOLS, STATS, CLIENTS,
    /// SERVERS, CONFIG): clients waiting for a server connection, the longest
    /// and the recent average wait, per pool against its pool_size; alert
    /// (exit 1) when clients wait. Its server connections are then shown as
    /// pgbouncer's pool, and the application's connections through it are its
    /// clients there. Without it, a --database-url that pools per transaction
    /// has its console read at the same host, port and role (dbname
    /// pgbouncer); when that is refused, the usage is not judged
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
    /// Its connections, any state (o2o-db's own left out): `direct` plus
    /// `through_pgbouncer`.
    pub connections: i64,
    /// Its backends in the database, pgbouncer's server connections left out.
    pub direct: i64,
    /// With pgbouncer's console: its client connections to pgbouncer for
    /// this database (SHOW CLIENTS), each one of its pool's connections.
    pub through_pgbouncer: Option<i64>,
    /// Why the usage is not judged, and no alert raised (null when it is).
    pub not_judged: Option<String>,
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
    /// With pgbouncer's console (--pgbouncer, or found behind a transaction-pooled
    /// --database-url): its figures and alert (null without).
    pub pgbouncer: Option<BouncerSection>,
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
        let bouncer = self.pgbouncer.as_ref().is_some_and(|b| b.alert);
        Outcome::from_findings(self.alert || bouncer).and(load)
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
    let sources = Sources::find(config, args)?;
    let console = sources.console.as_ref();
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
            let (load, figures) = load::run(config, &plan, console, stop)?;
            // The load's pool is closed; let its backends leave before the
            // snapshot. pgbouncer keeps its server connections, whatever
            // application_name their last client (the load) gave them.
            let pooler_pids = match console {
                Some(c) => pgbouncer::status(c)?.server_pids,
                None => Vec::new(),
            };
            let left = load::wait_until_gone(
                &probe,
                &load.application,
                &pooler_pids,
                Duration::from_secs(5),
            )?;
            if left > 0 {
                report::notice(&format!(
                    "o2o-db: {left} connections of the load are still closing; they show as `{}`",
                    load.application
                ));
            }
            Some((load, figures))
        }
    };
    snapshot(config, args, &probe, &sources, loaded)
}

/// Where pool-status reads pgbouncer from, found once per run.
struct Sources {
    /// The admin console: --pgbouncer, or the one behind a --database-url
    /// that pools per transaction (same host, port and role, dbname pgbouncer).
    console: Option<ConnInfo>,
    /// The pooling check's backends on a server of their own: they may not
    /// have exited yet, and are o2o-db's.
    left_out_pids: Vec<i32>,
    /// Why the application's usage cannot be judged from the server: its
    /// connections go through a transaction pooler whose console is unreadable.
    not_judged: Option<String>,
}

impl Sources {
    fn find(config: &Config, args: &PoolStatusArgs) -> Result<Sources> {
        // Before the extended protocol meets the console and says only "invalid command".
        pgbouncer::refuse_admin_console(&config.conn, "--pgbouncer")?;
        // --pgbouncer, else the admin_url of the [[targets]] entry picked:
        // a session-mode pgbouncer cannot be told from PostgreSQL otherwise.
        let named = match &args.pgbouncer {
            Some(url) => Some(ConnInfo::parse(url).map_err(|e| anyhow!("--pgbouncer: {e:#}"))?),
            None => config.pgbouncer_admin.clone(),
        };
        if let Some(console) = named {
            return Ok(Sources {
                console: Some(console),
                left_out_pids: Vec::new(),
                not_judged: None,
            });
        }
        // Behind a transaction pooler every backend is one of its server
        // connections, named after whichever client used it last.
        let mut check = config.conn.clone();
        check.application_name = Some(probe_application_name(config));
        let (pooling, seen) = config.pooling.resolve_seen(&check)?;
        if pooling != Pooling::Transaction {
            return Ok(Sources {
                console: None,
                left_out_pids: seen,
                not_judged: None,
            });
        }
        let mut console = check;
        console.dbname = Some(pgbouncer::ADMIN_DATABASE.to_string());
        let not_judged = match pgbouncer::console_version(&console) {
            Ok(Some(_)) => {
                return Ok(Sources {
                    console: Some(console),
                    left_out_pids: Vec::new(),
                    not_judged: None,
                })
            }
            Ok(None) => "it is not pgbouncer's".to_string(),
            Err(e) => format!("{:#}", e),
        };
        Ok(Sources {
            console: None,
            left_out_pids: Vec::new(),
            not_judged: Some(format!(
                "{} pools server connections per transaction, so the server's backends are the \
                 pooler's, whatever application_name they carry; its admin console at {} could \
                 not be read ({not_judged}): pass --pgbouncer URL as an admin_users or stats_users role",
                config.conn.target(),
                console.target()
            )),
        })
    }
}

/// The pool o2o-db itself uses to read the server: built from [pool], opened
/// lazily (one connection), so the pool section shows what the config builds.
/// Its connection carries a name of its own: through pgbouncer it is a client
/// there, and must not count as one of the application's.
fn open_probe_pool(config: &Config) -> Result<Pool> {
    let mut own = config.clone();
    own.conn.application_name = Some(probe_application_name(config));
    Pool::open(&own, Warm::Lazy)
}

/// The configured application_name, marked as pool-status's (63 bytes at most, as the server keeps).
fn probe_application_name(config: &Config) -> String {
    load::marked_application_name(config, "o2o-db pool-status")
}

/// One report read through `probe`; with a load, the pool figures are the load pool's.
fn snapshot(
    config: &Config,
    args: &PoolStatusArgs,
    probe: &Pool,
    sources: &Sources,
    loaded: Option<(LoadReport, PoolFigures)>,
) -> Result<PoolStatusReport> {
    // Read first: its SHOW SERVERS says which backends are pgbouncer's.
    let bouncer = sources
        .console
        .as_ref()
        .map(pgbouncer::status)
        .transpose()?;
    let options = StatusOptions {
        session_age: args.session_age.map_or(config.verify.session_age, |d| d.0),
        // The o2o-db process's own connection is not the application's.
        exclude_own_connection: true,
        pooler_pids: bouncer
            .as_ref()
            .map_or_else(Vec::new, |b| b.server_pids.clone()),
        left_out_pids: sources.left_out_pids.clone(),
    };
    let status = pool_status_with(probe, &options)?;
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
    let direct = status.server.connections_of(&name);
    let through_pgbouncer = bouncer
        .as_ref()
        .map(|b| b.clients_of(&name, &status.server.database));
    let connections = direct + through_pgbouncer.unwrap_or(0);
    // Compared exactly, not on the rounded percentage.
    let alert = sources.not_judged.is_none()
        && connections as f64 * 100.0 > alert_percent * max_size as f64;
    Ok(PoolStatusReport {
        taken_at: status.taken_at,
        target: config.conn.target(),
        reached: probe.reached().to_string(),
        pool,
        app: AppUsage {
            usage_percent: percent(connections as f64, max_size as f64),
            name,
            connections,
            direct,
            through_pgbouncer,
            max_size,
            alert_percent,
            not_judged: sources.not_judged.clone(),
        },
        server: status.server,
        alert,
        load,
        pgbouncer: bouncer
            .map(|b| BouncerSection::judge(b, config.alert.pgbouncer_avg_wait.0.as_secs_f64())),
    })
}
