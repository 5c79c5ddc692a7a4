//! `o2o-db verify`: one command after every deploy that says whether the
//! database is as it should be, with an exit code a pipeline can gate on.
//!
//! Each check is a small function returning a verdict (pass, warn or fail, a
//! detail, and the fix when something is wrong); this file holds the list of
//! checks, the selection (--only/--skip), the runner and the report. The checks
//! themselves live in src/commands/verify/, one file per group.
mod context;
mod indexes;
mod monitoring;
mod plans;
mod pool;
mod redundancy;
mod replication;
mod report;
mod server;
mod statistics;
mod thresholds;

use crate::config::{Config, HumanDuration};
use crate::db::read_only;
use anyhow::{bail, Result};
use context::{Ctx, Needs};
use std::path::PathBuf;
use std::time::Instant;
use thresholds::{parse_max_ms, valid_max_ms};

pub use report::{
    Check, Replay, ReplicationFigures, Role, Slot, StandbyLink, Status, Summary, Verdict,
    VerifyReport,
};
pub use thresholds::{speed_timeout, SPEED_TIMEOUT_FACTOR, SPEED_TIMEOUT_FLOOR};

/// Every check, in the order they are reported.
pub const CHECK_NAMES: [&str; 12] = [
    "config",
    "connectivity",
    "pool",
    "headroom",
    "schema",
    "indexes",
    "planner",
    "speed",
    "statistics",
    "redundancy",
    "sessions",
    "replication",
];

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Checks (each PASS, WARN or FAIL, with the fix when something is wrong):
  config        [pool] settings meet the [verify] targets
  connectivity  server version and round-trip time
  pool          the pool opens its size connections in time; health checks on checkout
  headroom      max_connections - reserved - in use leaves room for the pool's max_size
  schema        the table exists and takes every managed index
  indexes       each managed index present, valid and as defined
  planner       each `-- index: yes` query reaches the table through an index
  speed         each query's median over [verify] runs is under the threshold;
                a run cancelled at the statement timeout fails its query as slow
  statistics    the table is analyzed and few rows changed since
  redundancy    indexes covered by a longer one; unused indexes (info)
  sessions      sessions idle in transaction or running longer than [verify] session_age
  replication   primary: each standby's state and lag, replication slots and the WAL they keep;
                standby: replay position and lag, paused replay, the WAL receiver streaming

Exit codes: 0 nothing failed (warnings allowed unless --strict), 1 a check failed,
2 verify could not run (server unreachable, unreadable file).")]
pub struct VerifyArgs {
    /// Run only these checks (repeat the flag or separate with commas)
    #[arg(long, value_name = "CHECK", num_args = 1.., value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(CHECK_NAMES))]
    pub only: Vec<String>,

    /// Leave out these checks (repeat the flag or separate with commas)
    #[arg(long, value_name = "CHECK", num_args = 1.., value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(CHECK_NAMES))]
    pub skip: Vec<String>,

    /// Treat warnings as failures: exit 1 when any check warns
    #[arg(long)]
    pub strict: bool,

    /// Speed check threshold: a query whose median is slower than this many
    /// milliseconds fails [default: [alert] query_ms, else 100]
    #[arg(long, value_name = "MS", value_parser = parse_max_ms)]
    pub max_ms: Option<f64>,

    /// Speed check: cancel a timed run after this long and FAIL the query as slow,
    /// e.g. 2s [default: [verify] statement_timeout, else 10x the threshold, at least 1s]
    #[arg(long, value_name = "DURATION")]
    pub statement_timeout: Option<HumanDuration>,

    /// The managed index set to check against [default: [indexes] file, else the built-in V8.5 set]
    #[arg(long, value_name = "FILE")]
    pub indexes: Option<PathBuf>,

    /// The query suite for the planner and speed checks [default: [benchmark] file, else the built-in suite]
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
}

crate::cli::clap_default!(VerifyArgs);

/// A check: its name, what it needs loaded or open, and how and when it runs.
struct Def {
    name: &'static str,
    needs: Needs,
    run: Runner,
}

/// A check on the shared connection.
type SharedCheck = fn(&mut Ctx) -> Result<Verdict>;
/// A check on connections of its own.
type OwnCheck = fn(&Config) -> Result<Verdict>;

/// When and on what a check runs; the report keeps CHECK_NAMES' order whatever the run order.
#[derive(Clone, Copy)]
enum Runner {
    /// On a thread with connections of its own, beside the others: the pool
    /// check mostly waits for the server to start backends.
    Beside(OwnCheck),
    /// On the shared connection, first.
    Early(SharedCheck),
    /// Last, once the Beside checks are done: it runs the dashboard's queries,
    /// so the index usage the redundancy check reads is the application's and
    /// the timings do not compete with the pool opening.
    Last(SharedCheck),
}

impl Runner {
    fn early(self) -> Option<SharedCheck> {
        match self {
            Runner::Early(check) => Some(check),
            _ => None,
        }
    }

    fn last(self) -> Option<SharedCheck> {
        match self {
            Runner::Last(check) => Some(check),
            _ => None,
        }
    }
}

const CHECKS: [Def; 12] = [
    def("config", Needs::CONFIG, Runner::Early(pool::config)),
    def(
        "connectivity",
        Needs::SERVER,
        Runner::Early(server::connectivity),
    ),
    def("pool", Needs::SERVER, Runner::Beside(pool::pool)),
    def("headroom", Needs::SERVER, Runner::Early(pool::headroom)),
    def("schema", Needs::TABLE, Runner::Early(indexes::schema)),
    def("indexes", Needs::TABLE, Runner::Early(indexes::indexes)),
    def("planner", Needs::SUITE, Runner::Early(plans::planner)),
    def("speed", Needs::SUITE, Runner::Last(plans::speed)),
    def(
        "statistics",
        Needs::TABLE,
        Runner::Early(statistics::statistics),
    ),
    def(
        "redundancy",
        Needs::TABLE,
        Runner::Early(redundancy::redundancy),
    ),
    def("sessions", Needs::SERVER, Runner::Early(server::sessions)),
    def(
        "replication",
        Needs::SERVER,
        Runner::Early(replication::replication),
    ),
];

const fn def(name: &'static str, needs: Needs, run: Runner) -> Def {
    Def { name, needs, run }
}

/// The checks --only and --skip leave, in report order; unknown names are an error.
pub fn select(only: &[String], skip: &[String]) -> Result<Vec<&'static str>> {
    for (flag, names) in [("--only", only), ("--skip", skip)] {
        if let Some(bad) = names.iter().find(|n| !CHECK_NAMES.contains(&n.as_str())) {
            bail!(
                "unknown check `{bad}` in {flag}; valid checks: {}",
                CHECK_NAMES.join(", ")
            );
        }
    }
    let selected: Vec<&'static str> = CHECK_NAMES
        .iter()
        .copied()
        .filter(|n| only.is_empty() || only.iter().any(|o| o == n))
        .filter(|n| !skip.iter().any(|s| s == n))
        .collect();
    if selected.is_empty() {
        bail!("--only and --skip leave no check to run");
    }
    Ok(selected)
}

pub fn run(config: &Config, args: &VerifyArgs) -> Result<VerifyReport> {
    let started = Instant::now();
    let selected = select(&args.only, &args.skip)?;
    if let Some(ms) = args.max_ms.filter(|v| !valid_max_ms(*v)) {
        bail!("--max-ms {ms}: give a positive number of milliseconds, e.g. 100 or 12.5");
    }
    crate::db::pgbouncer::refuse_admin_console(&config.conn, "pool-status --pgbouncer")?;
    let defs: Vec<&Def> = CHECKS
        .iter()
        .filter(|d| selected.contains(&d.name))
        .collect();
    let needs = defs.iter().fold(Needs::CONFIG, |all, d| all.and(d.needs));
    let mut ctx = Ctx::open(config, args, needs)?;
    let mut verdicts: Vec<Option<(Verdict, f64)>> = vec![None; defs.len()];
    std::thread::scope(|scope| -> Result<()> {
        let beside: Vec<_> = defs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match d.run {
                Runner::Beside(check) => Some((
                    i,
                    scope.spawn(move || {
                        let started = Instant::now();
                        (check(config), started.elapsed().as_secs_f64())
                    }),
                )),
                _ => None,
            })
            .collect();
        run_shared(&defs, Runner::early, &mut ctx, &mut verdicts)?;
        for (i, handle) in beside {
            let (result, took) = handle
                .join()
                .unwrap_or_else(|_| (Err(anyhow::anyhow!("the check stopped unexpectedly")), 0.0));
            verdicts[i] = Some((result.unwrap_or_else(|e| could_not(defs[i].name, e)), took));
        }
        run_shared(&defs, Runner::last, &mut ctx, &mut verdicts)
    })?;
    let checks: Vec<Check> = defs
        .iter()
        .zip(verdicts)
        .filter_map(|(d, v)| {
            v.map(|(v, took)| Check {
                name: d.name.to_string(),
                status: v.status,
                detail: v.detail,
                fix: v.fix,
                duration_seconds: took,
            })
        })
        .collect();
    // The per-index figures come after the checks and never change a verdict.
    let (indexes, analyze_age_seconds) = indexes::figures(&mut ctx).unwrap_or_default();
    let mut report = VerifyReport::new(checks, args.strict, started.elapsed());
    report.database = config.conn.dbname.clone().unwrap_or_default();
    report.server = ctx.endpoint.clone();
    report.role = ctx.endpoint.as_ref().map(|_| {
        if ctx.standby {
            Role::Standby
        } else {
            Role::Primary
        }
    });
    report.table = ctx
        .resolved_table()
        .map(|t| format!("{}.{}", t.schema, t.name));
    report.indexes = indexes;
    report.analyze_age_seconds = analyze_age_seconds;
    report.replication = ctx.replication.take();
    Ok(report)
}

/// Runs the shared-connection checks `pick` selects, in report order. A suite
/// query that writes stops verify (exit 2): the suite itself is wrong.
fn run_shared(
    defs: &[&Def],
    pick: fn(Runner) -> Option<SharedCheck>,
    ctx: &mut Ctx,
    verdicts: &mut [Option<(Verdict, f64)>],
) -> Result<()> {
    for (i, d) in defs.iter().enumerate() {
        if let Some(check) = pick(d.run) {
            let started = Instant::now();
            let verdict = match check(ctx) {
                Ok(verdict) => verdict,
                Err(e) if read_only::is_writing_query(&e) => return Err(e),
                Err(e) => could_not(d.name, ctx.name_lock_holders(e)),
            };
            verdicts[i] = Some((verdict, started.elapsed().as_secs_f64()));
        }
    }
    Ok(())
}

/// A check that hit an error is a failed check, not a failed run: the others still report.
fn could_not(name: &str, e: anyhow::Error) -> Verdict {
    Verdict::fail(
        format!("could not check: {e:#}"),
        format!("resolve the error shown, then run `o2o-db verify --only {name}` again"),
    )
}

/// The median of some timings (0 for none); sorts them in place.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_and_skip_select_in_report_order() {
        assert_eq!(select(&[], &[]).unwrap(), CHECK_NAMES.to_vec());
        assert_eq!(
            select(&names(&["sessions", "config"]), &[]).unwrap(),
            ["config", "sessions"]
        );
        assert_eq!(
            select(&[], &names(&["speed", "pool"])).unwrap().len(),
            CHECK_NAMES.len() - 2
        );
        let err = select(&names(&["indexs"]), &[]).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unknown check `indexs` in --only; valid checks: config, connectivity,"
            ),
            "{err}"
        );
        assert!(select(&names(&["speed"]), &names(&["speed"])).is_err());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn registry_matches_the_names() {
        let defs: Vec<&str> = CHECKS.iter().map(|d| d.name).collect();
        assert_eq!(defs, CHECK_NAMES.to_vec());
    }
}
