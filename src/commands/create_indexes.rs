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
pub mod summary;

pub use summary::{CreateIndexesReport, IndexResult, Status, Summary};

use crate::catalog::activity;
use crate::catalog::{self, indexes::LiveIndex};
use crate::config::Config;
use crate::db::describe_pg_error;
use crate::ddl::executor::{Executor, RunOutcome};
use crate::ddl::plan::{self, Action, Planned};
use crate::ddl::settings::{SessionArgs, SessionSettings};
use crate::ddl::{progress, run_lock, session};
use crate::report;
use crate::sqlfiles::{IndexSet, IndexSpec};
use crate::stop::Stop;
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};

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
    if concurrently && args.jobs > 1 {
        bail!(
            "--jobs {} needs --no-concurrently: concurrent builds on one table take turns \
             (each holds a SHARE UPDATE EXCLUSIVE lock), so only plain builds run in parallel",
            args.jobs
        );
    }
    let set = IndexSet::load(args.session.index_file(config))?;
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
    let mut control = session::open(config, &settings)?;
    let (schema, table) = catalog::indexes::resolve_table(&mut control.client, &set)?;
    crate::ddl::privileges::check(&mut control.client, &schema, &table, "create-indexes")?;
    let set = qualified(set, &schema);
    let table_name = format!("{schema}.{table}");
    let key = run_lock::key(&schema, &table);
    let mut notices = Vec::new();

    if args.session.dry_run {
        if let Some(h) = run_lock::holder(&mut control.client, key)? {
            notices.push(format!(
                "another index run on {table_name} holds its lock: {h}; a real run now would exit 2 (or wait, with --wait)"
            ));
        }
    } else {
        let acquired = run_lock::take(
            &mut control.client,
            (&schema, &table),
            args.session.wait,
            stop,
        )?;
        if acquired == run_lock::Acquired::Interrupted {
            return Ok(not_started(
                &set,
                &table_name,
                "interrupted while waiting for the run lock",
            ));
        }
    }

    let live = catalog::indexes::inspect(&mut control.client, &set).map_err(|e| {
        activity::name_lock_holders(&mut control.client, &set.table().qualified_table(), e)
    })?;
    let on_table = indexes_of_table(&mut control.client, &set)?;
    let planned = plan::decide(&set.indexes, live, &on_table, args.replace_drifted);
    let tasks: Vec<_> = planned
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.task(i, concurrently))
        .collect();
    let will_analyze = !args.no_analyze && !tasks.is_empty();
    let mut sql: Vec<String> = tasks
        .iter()
        .flat_map(|t| t.steps.iter().map(|s| s.sql.clone()))
        .collect();
    if will_analyze {
        sql.push(analyze_sql(&set));
    }
    if !tasks.is_empty() {
        if let Some(view) = activity::restricted_view(&mut control.client)? {
            let text = format!(
                "{}: a concurrent build may wait for them unseen; {}",
                view.warning(),
                view.grant()
            );
            report::notice(&format!("o2o-db: {text}"));
            notices.push(text);
        }
        for b in activity::stallers(&mut control.client, &set.table().qualified_table())? {
            let text = format!("a build will wait for this session's transaction to end: {b}");
            report::notice(&format!("o2o-db: {text}"));
            notices.push(text);
        }
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
    if args.session.dry_run {
        let indexes = planned
            .iter()
            .map(|p| dry_run_row(p, &table_name))
            .collect();
        return Ok(assemble(indexes, true, false, false, notices, sql, how));
    }

    let table_sql = set.table().qualified_table();
    let executor = Executor {
        config,
        settings: &settings,
        table: &table_sql,
        jobs: args.jobs as usize,
        stop,
    };
    let mut watcher = progress::Progress::new("building", tasks.len());
    let outcome = executor.run(tasks, &mut control.client, &mut watcher);
    if control.client.is_closed() {
        // The server restarted under the run: a new control session reads
        // what is really there (the run lock went with the old one).
        match session::reopen(config, &settings, stop, |_| Ok(())) {
            Ok(fresh) => {
                control = fresh;
                notices.push(
                    "the connection to the server was lost during the run and opened again; the statuses below are read from the server afterwards".into(),
                );
            }
            Err(e) => notices.push(format!("{e:#}")),
        }
    }

    // Judge the result by what the server has now, not by what we meant to do.
    let after = match built_indexes(&mut control.client, &set, &schema) {
        Ok(after) => Some(after),
        Err(e) => {
            notices.push(format!(
                "could not re-check the indexes after building: {}",
                describe_pg_error(&e)
            ));
            None
        }
    };
    let indexes: Vec<IndexResult> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let now = after.as_ref().map(|a| a.get(&p.spec.name).copied());
            result_row(i, p, &outcome, now, &table_name)
        })
        .collect();
    let built = indexes
        .iter()
        .any(|i| matches!(i.status, Status::Created | Status::Rebuilt));
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
    run_lock::release(&mut control.client, key);
    let interrupted = outcome.interrupted;
    Ok(assemble(
        indexes,
        false,
        interrupted,
        analyzed,
        notices,
        sql,
        how,
    ))
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

fn assemble(
    indexes: Vec<IndexResult>,
    dry_run: bool,
    interrupted: bool,
    analyzed: bool,
    notices: Vec<String>,
    sql: Vec<String>,
    how: String,
) -> CreateIndexesReport {
    CreateIndexesReport {
        summary: Summary::count(&indexes),
        indexes,
        dry_run,
        interrupted,
        analyzed,
        notices,
        sql,
        how,
    }
}

fn row(spec: &IndexSpec, table: &str, definition: &str, status: Status) -> IndexResult {
    IndexResult {
        name: spec.name.clone(),
        table: table.to_string(),
        definition: definition.to_string(),
        status,
        duration_ms: 0.0,
        size_bytes: 0,
        error: None,
        columns: spec.columns.clone(),
    }
}

/// Interrupted before anything was inspected: every index not started.
fn not_started(set: &IndexSet, table: &str, why: &str) -> CreateIndexesReport {
    let indexes = set
        .indexes
        .iter()
        .map(|spec| IndexResult {
            error: Some(why.to_string()),
            ..row(spec, table, &spec.create_sql(false), Status::NotStarted)
        })
        .collect();
    assemble(
        indexes,
        false,
        true,
        false,
        Vec::new(),
        Vec::new(),
        String::new(),
    )
}

fn drift_message(live: &LiveIndex) -> String {
    format!(
        "defined differently on the server: {}; --replace-drifted builds it as defined under a temporary name, then swaps it in",
        live.live.as_deref().unwrap_or("?")
    )
}

const BUSY: &str = "INVALID and being built by another session right now; left alone: run again once that build has finished";

/// Rows for statuses that need no build.
fn unbuilt_row(p: &Planned, table: &str) -> Option<IndexResult> {
    let base = |status| IndexResult {
        size_bytes: p.live.size_bytes,
        ..row(&p.spec, table, &p.live.expected, status)
    };
    match p.action {
        Action::Skip => Some(base(Status::Skipped)),
        Action::Twin => Some(IndexResult {
            error: Some(format!(
                "exists as {}, with the same definition; nothing built (rename it to {} to make the name match)",
                p.live.served_by.as_deref().unwrap_or("?"),
                p.spec.name
            )),
            ..base(Status::Skipped)
        }),
        Action::LeaveDrifted => Some(IndexResult {
            error: Some(drift_message(&p.live)),
            ..base(Status::Drifted)
        }),
        Action::Busy => Some(IndexResult {
            error: Some(BUSY.into()),
            ..base(Status::Failed)
        }),
        Action::Foreign => Some(IndexResult {
            error: Some(format!(
                "the name is taken by an index of another table ({}); left alone: rename one of them",
                p.live.live.as_deref().unwrap_or("?")
            )),
            ..base(Status::Failed)
        }),
        Action::Create | Action::Rebuild | Action::Replace => None,
    }
}

fn dry_run_row(p: &Planned, table: &str) -> IndexResult {
    unbuilt_row(p, table).unwrap_or_else(|| {
        let status = if p.action == Action::Create {
            Status::WouldCreate
        } else {
            Status::WouldRebuild
        };
        IndexResult {
            size_bytes: p.live.size_bytes,
            ..row(&p.spec, table, &p.live.expected, status)
        }
    })
}

fn result_row(
    id: usize,
    p: &Planned,
    outcome: &RunOutcome,
    after: Option<Option<(bool, i64)>>,
    table: &str,
) -> IndexResult {
    if let Some(done) = unbuilt_row(p, table) {
        return done;
    }
    let base = row(&p.spec, table, &p.live.expected, Status::Failed);
    let Some(result) = outcome.results.get(&id) else {
        let (status, why) = if outcome.interrupted {
            (
                Status::NotStarted,
                "interrupted before it started".to_string(),
            )
        } else if let Some(blocked) = &outcome.stopped_by {
            (
                Status::NotStarted,
                format!("{blocked} could not get its lock (or waited past the statement timeout for an older transaction), so the run stopped before this one: it would wait for the same session; run again once that is gone"),
            )
        } else if let Some(e) = &outcome.session_error {
            (Status::Failed, e.clone())
        } else {
            (
                Status::NotStarted,
                "the run stopped before this one".to_string(),
            )
        };
        return IndexResult {
            status,
            error: Some(why),
            ..base
        };
    };
    let duration_ms = result.duration.as_secs_f64() * 1000.0;
    if let Some(error) = &result.error {
        return IndexResult {
            duration_ms,
            error: Some(error.to_string()),
            ..base
        };
    }
    let status = if p.action == Action::Create {
        Status::Created
    } else {
        Status::Rebuilt
    };
    let problem = match after {
        Some(None) => Some("the build reported success, but the server has no such index now"),
        Some(Some((false, _))) => {
            Some("the build reported success, but the server has it as INVALID")
        }
        _ => None,
    };
    IndexResult {
        status: if problem.is_some() {
            Status::Failed
        } else {
            status
        },
        duration_ms,
        size_bytes: after.flatten().map_or(0, |(_, size)| size),
        error: problem.map(str::to_string),
        ..base
    }
}

/// The oids of the managed table's indexes: a managed name found elsewhere is not ours.
fn indexes_of_table(client: &mut postgres::Client, set: &IndexSet) -> Result<HashSet<u32>> {
    let rows = client
        .query(
            "SELECT indexrelid FROM pg_index WHERE indrelid = to_regclass($1)",
            &[&set.table().qualified_table()],
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "listing the indexes of the table: {}",
                describe_pg_error(&e)
            )
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Valid (and ready) or not, and size, of each index of the set on the managed
/// table now: one catalog query, cheap enough to run after every build.
fn built_indexes(
    client: &mut postgres::Client,
    set: &IndexSet,
    schema: &str,
) -> Result<HashMap<String, (bool, i64)>, postgres::Error> {
    let names: Vec<&str> = set.indexes.iter().map(|i| i.name.as_str()).collect();
    let rows = client.query(
        "SELECT c.relname::text, i.indisvalid AND i.indisready, pg_relation_size(c.oid) \
         FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid \
         WHERE c.relnamespace = $1::text::regnamespace AND c.relname = ANY($2) \
           AND i.indrelid = to_regclass($3)",
        &[&schema, &names, &set.table().qualified_table()],
    )?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}
