//! `o2o-db create-indexes`: the managed index set (the V8.5 report's 11
//! indexes, or a file), created safely on a live table, with a
//! created/skipped/rebuilt/drifted/failed summary.
//!
//! The run: take the per-table run lock, ask the server what it has (by
//! definition, see catalog::indexes), decide per index (plan), warn about sessions
//! that would stall the builds, build on dedicated sessions while watching
//! progress and blockers (executor), check the result on the server again,
//! ANALYZE, report. Nothing here keeps a transaction open across a build.

mod monitoring;
mod partitioned;
pub mod replicas;
pub mod report;
mod rows;

pub use report::{CreateIndexesReport, IndexResult, Status, Summary};

use crate::catalog::{self, activity};
use crate::config::{Config, HumanDuration};
use crate::db::describe_pg_error;
use crate::ddl::executor::Executor;
use crate::ddl::phases;
use crate::ddl::plan;
use crate::ddl::plan::partitioned::{work, Work};
use crate::ddl::privileges::Ddl;
use crate::ddl::settings::{SessionArgs, SessionSettings};
use crate::ddl::{progress, run_lock, session, Target};

use crate::sqlfiles::{IndexSet, IndexSpec};
use crate::stop::Stop;
use anyhow::{bail, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct CreateIndexesArgs {
    #[command(flatten)]
    pub session: SessionArgs,

    /// Build with plain CREATE INDEX, which blocks writes to the table while it
    /// runs: for a maintenance window (faster, and --jobs can build in parallel)
    #[arg(long)]
    pub no_concurrently: bool,

    /// Plain builds to run at once, each on its own connection (needs
    /// --no-concurrently); set it to the server's core count. Each build then
    /// runs without parallel workers unless --parallel-workers says otherwise
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// Drop indexes whose definition differs from the file and build them as defined
    #[arg(long)]
    pub replace_drifted: bool,

    /// Skip the ANALYZE of the table after building
    #[arg(long)]
    pub no_analyze: bool,

    /// max_parallel_maintenance_workers for each build [default: the server's
    /// setting; 0 with --jobs 2 or more, so the builds do not compete for cores]
    #[arg(long, value_name = "N")]
    pub parallel_workers: Option<u32>,

    /// maintenance_work_mem for each build, e.g. 512MB [default: the server's
    /// setting]; --jobs N uses up to N times this
    #[arg(long, value_name = "SIZE")]
    pub maintenance_work_mem: Option<String>,

    /// After building, wait up to DURATION [default: 5m] until every replica
    /// has replayed past the builds, then check the managed indexes there:
    /// the [[targets]] with role replica, else every standby in the primary's
    /// pg_stat_replication (replay only). A replica not ready is a finding (exit 1)
    ///
    /// Example: o2o-db --target primary create-indexes --wait-replicas 10m
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "5m")]
    pub wait_replicas: Option<HumanDuration>,
}

crate::cli::clap_default!(CreateIndexesArgs);

/// Runs with the process's stop (signals, see crate::stop).
pub fn run(config: &Config, args: &CreateIndexesArgs) -> Result<CreateIndexesReport> {
    run_with(config, args, crate::stop::process())
}

/// Runs; requesting `stop` cancels the running build, cleans up and returns
/// the summary so far (outcome Interrupted).
pub fn run_with(
    config: &Config,
    args: &CreateIndexesArgs,
    stop: &Stop,
) -> Result<CreateIndexesReport> {
    let concurrently = !args.no_concurrently;
    let set = IndexSet::load(args.session.index_file(config))?;
    let settings = build_settings(config, args, concurrently);
    let mut target = Target::open(config, &settings, &set, Ddl::Build, args.session.dry_run)?;
    let config = &target.pinned(config);
    let set = qualified(set, &target.schema);
    let table_name = target.shown();
    let mut notices: Vec<String> = target.standby.iter().cloned().collect();

    if args.session.dry_run {
        if let Some(h) = run_lock::holder(&mut target.control.client, target.key)? {
            notices.push(format!(
                "another index run on {table_name} holds its lock: {h}; a real run now would exit 2 (or wait, with --wait)"
            ));
        }
    } else if !target.lock(args.session.wait, stop)? {
        return Ok(rows::not_started(
            &set,
            &table_name,
            "interrupted while waiting for the run lock",
        ));
    }
    let control = &mut target.control;

    let inspection = catalog::indexes::inspect_table(&mut control.client, &set).map_err(|e| {
        activity::name_lock_holders(&mut control.client, &set.table().qualified_table(), e)
    })?;
    let tree = inspection.tree;
    if concurrently && args.jobs > 1 && tree.is_none() {
        bail!(
            "--jobs {} needs --no-concurrently on a table that is not partitioned: concurrent builds on \
             one table take turns (each holds a SHARE UPDATE EXCLUSIVE lock), so only plain builds run in parallel \
             there; on a partitioned table, builds on different partitions run in parallel either way",
            args.jobs
        );
    }
    let on_table = catalog::indexes::indexes_of_table(&mut control.client, &set)?;
    let planned = plan::decide(
        &set.indexes,
        inspection.managed,
        &on_table,
        args.replace_drifted,
    );
    let tasks: Vec<_> = match &tree {
        Some(_) => Vec::new(),
        None => planned
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.task(i, concurrently))
            .collect(),
    };
    let works: Vec<(usize, Work)> = match &tree {
        Some(tree) => planned
            .iter()
            .enumerate()
            .map(|(i, p)| (i, work(p, tree, concurrently, args.replace_drifted)))
            .filter(|(_, w)| !w.is_empty() || !w.left.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let has_work = !tasks.is_empty() || works.iter().any(|(_, w)| !w.is_empty());
    let will_analyze = !args.no_analyze && has_work;
    let mut sql: Vec<String> = tasks
        .iter()
        .flat_map(|t| t.steps.iter().map(|s| s.sql.clone()))
        .chain(works.iter().flat_map(|(_, w)| w.sql()))
        .collect();
    if will_analyze {
        sql.push(analyze_sql(&set));
    }
    if has_work {
        warn_of_stalls(&mut control.client, &set, &mut notices)?;
    }
    let how = format!(
        "{}, {} session{}, {}",
        if concurrently {
            "CONCURRENTLY"
        } else {
            "plain builds, writes blocked"
        },
        args.jobs,
        if args.jobs == 1 { "" } else { "s" },
        settings.describe()
    );
    if let Some(tree) = &tree {
        notices.push(partitioned::describe(tree, concurrently));
    }
    if args.session.dry_run {
        let indexes = planned
            .iter()
            .enumerate()
            .map(|(i, p)| partitioned::with_left(rows::dry_run_row(p, &table_name), i, &works))
            .collect();
        return Ok(rows::assemble(
            indexes, true, false, false, notices, sql, how,
        ));
    }

    let table_sql = set.table().qualified_table();
    let executor = Executor {
        config,
        settings: &settings,
        table: &table_sql,
        jobs: args.jobs as usize,
        stop,
    };
    let total = tasks.len() + works.iter().map(|(_, w)| w.task_count()).sum::<usize>();
    let mut watcher = progress::Progress::new("building", total);
    let outcome = executor.run(tasks, &mut control.client, &mut watcher);
    let phased = phases::run(&executor, &mut control.client, &mut watcher, &works);
    if control.client.is_closed() {
        // The server restarted under the run: a new control session reads
        // what is really there (the run lock went with the old one).
        match session::reopen(config, &settings, stop, |_| Ok(())) {
            Ok(fresh) => {
                *control = fresh;
                notices.push(
                    "the connection to the server was lost during the run and opened again; the statuses below are read from the server afterwards".into(),
                );
            }
            Err(e) => notices.push(format!("{e:#}")),
        }
    }

    // Judge the result by what the server has now, not by what we meant to do.
    let indexes: Vec<IndexResult> = match &tree {
        Some(_) => partitioned::result_rows(
            &mut control.client,
            &set,
            &planned,
            &works,
            &phased,
            &table_name,
            &mut notices,
        ),
        None => {
            let after =
                match catalog::indexes::built_indexes(&mut control.client, &set, &target.schema) {
                    Ok(after) => Some(after),
                    Err(e) => {
                        notices.push(format!(
                            "could not re-check the indexes after building: {}",
                            describe_pg_error(&e)
                        ));
                        None
                    }
                };
            planned
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let now = after.as_ref().map(|a| a.get(&p.spec.name).copied());
                    rows::result_row(i, p, &outcome, now, &table_name)
                })
                .collect()
        }
    };
    let built = indexes.iter().any(|i| {
        matches!(
            i.status,
            Status::Created | Status::Rebuilt | Status::Completed
        ) || i.partitions.is_some_and(|p| p.built > 0)
    });
    let mut analyzed = false;
    if will_analyze && built && !stop.requested() {
        match control.client.batch_execute(&analyze_sql(&set)) {
            Ok(()) => analyzed = true,
            Err(e) => notices.push(format!(
                "ANALYZE {table_name} failed: {}; run it yourself so the planner knows the new indexes' tables",
                describe_pg_error(&e)
            )),
        }
    }
    let interrupted = outcome.interrupted || phased.interrupted;
    let replicas = match args.wait_replicas {
        Some(limit) if !interrupted => {
            let names: Vec<String> = set.indexes.iter().map(|i| i.name.clone()).collect();
            replicas::wait(
                config,
                &mut control.client,
                &table_sql,
                &names,
                limit.0,
                stop,
            )?
        }
        _ => Vec::new(),
    };
    target.release();
    Ok(CreateIndexesReport {
        replicas,
        ..rows::assemble(indexes, false, interrupted, analyzed, notices, sql, how)
    })
}

/// The session settings of the run: the shared ones, and the builds' workers and memory.
fn build_settings(
    config: &Config,
    args: &CreateIndexesArgs,
    concurrently: bool,
) -> SessionSettings {
    let mut settings =
        SessionSettings::resolve(config, &args.session, concurrently, "create-indexes");
    // --jobs N already runs N builds at once: by default each runs without
    // parallel workers of its own, which would compete with the other builds
    // for the same cores (measured: 4% faster with --jobs 2 on 2 cores).
    let parallel_workers = args.parallel_workers.or((args.jobs > 1).then_some(0));
    if let Some(n) = parallel_workers {
        settings
            .server_settings
            .push(("max_parallel_maintenance_workers", n.to_string()));
    }
    if let Some(mem) = &args.maintenance_work_mem {
        settings
            .server_settings
            .push(("maintenance_work_mem", mem.clone()));
    }
    settings
}

/// Says what may stall the builds before they start (on stderr and in
/// `notices`): sessions whose transactions a build will wait for, and a role
/// that cannot see them all.
fn warn_of_stalls(
    client: &mut postgres::Client,
    set: &IndexSet,
    notices: &mut Vec<String>,
) -> Result<()> {
    let mut warn = |text: String| {
        crate::report::notice(&format!("o2o-db: {text}"));
        notices.push(text);
    };
    if let Some(view) = activity::restricted_view(client)? {
        warn(format!(
            "{}: a concurrent build may wait for them unseen; {}",
            view.warning(),
            view.grant()
        ));
    }
    for b in activity::stallers(client, &set.table().qualified_table())? {
        warn(format!(
            "a build will wait for this session's transaction to end: {b}"
        ));
    }
    Ok(())
}

/// The set with every spec qualified by the schema its table was found in,
/// so the build sessions cannot resolve it elsewhere.
fn qualified(set: IndexSet, schema: &str) -> IndexSet {
    IndexSet {
        indexes: set
            .indexes
            .into_iter()
            .map(|spec| IndexSpec {
                schema: Some(schema.to_string()),
                ..spec
            })
            .collect(),
        ..set
    }
}

fn analyze_sql(set: &IndexSet) -> String {
    format!("ANALYZE {}", set.table().qualified_table())
}
