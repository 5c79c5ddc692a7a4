//! `o2o-db drop-indexes [NAMES...]`: drops managed indexes concurrently, the
//! first half of the V8.5 report's "recreate indexes" procedure.
//!
//! Only indexes of the managed set can be named, and only an index on the
//! managed table is dropped (a same-named index on another table is refused).
//! It takes the same run lock as create-indexes, so a drop never races a build.

use crate::catalog::partitions::{self, INDEX_TREE_SIZE};
use crate::commands::create_indexes::report::{duration_cell, size_cell, write_sql};
use crate::config::Config;
use crate::ddl::executor::{Executor, Task};
use crate::ddl::plan::partitioned::drop_partitioned;
use crate::ddl::privileges::Ddl;
use crate::ddl::settings::{SessionArgs, SessionSettings};
use crate::ddl::{plan, progress, Target};
use crate::report::{self, Outcome, Report};
use crate::sqlfiles::{IndexSet, IndexSpec};
use crate::stop::Stop;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct DropIndexesArgs {
    /// Managed indexes to drop [default: all of them]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,

    #[command(flatten)]
    pub session: SessionArgs,
}

crate::cli::clap_default!(DropIndexesArgs);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropStatus {
    Dropped,
    /// Not on the server: nothing to do.
    Absent,
    Failed,
    NotStarted,
    WouldDrop,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DropSummary {
    pub total: usize,
    /// Dropped, or in a dry run to be dropped.
    pub dropped: usize,
    pub absent: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DroppedIndex {
    pub name: String,
    pub table: String,
    pub status: DropStatus,
    pub duration_ms: f64,
    /// The space it took (or takes, if it was not dropped).
    pub size_bytes: i64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DropIndexesReport {
    pub summary: DropSummary,
    pub indexes: Vec<DroppedIndex>,
    pub dry_run: bool,
    pub interrupted: bool,
    /// What the drops lock, on a partitioned table.
    pub notices: Vec<String>,
    pub sql: Vec<String>,
}

impl Report for DropIndexesReport {
    fn render_table(&self, w: &mut dyn Write) -> Result<()> {
        for notice in &self.notices {
            writeln!(w, "note: {notice}")?;
        }
        let mut t = report::table();
        t.set_header(["index", "status", "duration ms", "size"]);
        for i in &self.indexes {
            let status = match i.status {
                DropStatus::Dropped => "dropped",
                DropStatus::Absent => "absent",
                DropStatus::Failed => "FAILED",
                DropStatus::NotStarted => "not started",
                DropStatus::WouldDrop => "would drop",
            };
            t.add_row([
                i.name.clone(),
                status.to_string(),
                duration_cell(i.duration_ms),
                size_cell(i.size_bytes),
            ]);
        }
        writeln!(w, "{t}")?;
        let s = &self.summary;
        writeln!(
            w,
            "{}total {} / dropped {} / absent {} / failed {}",
            if self.dry_run {
                "dry run, nothing changed: "
            } else {
                ""
            },
            s.total,
            s.dropped,
            s.absent,
            s.failed
        )?;
        for i in self.indexes.iter().filter(|i| i.error.is_some()) {
            writeln!(w, "{}: {}", i.name, i.error.as_deref().unwrap_or(""))?;
        }
        if self.interrupted {
            writeln!(w, "interrupted: the rows above show how far the run got")?;
        }
        if self.dry_run {
            write_sql(w, "the SQL it would run", &self.sql)?;
        }
        Ok(())
    }

    fn outcome(&self) -> Outcome {
        if self.interrupted {
            Outcome::Interrupted
        } else {
            Outcome::from_findings(self.summary.failed > 0)
        }
    }
}

pub fn run(config: &Config, args: &DropIndexesArgs) -> Result<DropIndexesReport> {
    run_with(config, args, crate::stop::process())
}

pub fn run_with(config: &Config, args: &DropIndexesArgs, stop: &Stop) -> Result<DropIndexesReport> {
    let set = IndexSet::load(args.session.index_file(config))?;
    let chosen = choose(&set, &args.names)?;
    let settings = SessionSettings::resolve(config, &args.session, true, "drop-indexes");
    let mut target = Target::open(config, &settings, &set, Ddl::Drop, args.session.dry_run)?;
    let config = &target.pinned(config);
    let table_name = target.shown();
    if !args.session.dry_run && !target.lock(args.session.wait, stop)? {
        let rows = chosen
            .iter()
            .map(|spec| DroppedIndex {
                name: spec.name.clone(),
                table: table_name.clone(),
                status: DropStatus::NotStarted,
                duration_ms: 0.0,
                size_bytes: 0,
                error: Some("interrupted while waiting for the run lock".into()),
            })
            .collect();
        return Ok(assemble(rows, false, true, Vec::new(), Vec::new()));
    }

    let control = &mut target.control;
    let tree = partitions::tree(&mut control.client, &set.table().qualified_table())?;
    let mut notices: Vec<String> = target.standby.iter().cloned().collect();
    if let Some(tree) = &tree {
        notices.push(format!(
            "the table is partitioned ({} partitions): a partitioned index cannot be dropped concurrently, so each \
             DROP INDEX takes ACCESS EXCLUSIVE on the table and every partition for a moment; it waits at most the \
             lock timeout ({}) for them, then retries ({} retries)",
            tree.partitions.len(),
            humantime::format_duration(settings.lock_timeout),
            settings.lock_retries
        ));
    }
    let mut rows = Vec::new();
    let mut tasks = Vec::new();
    for (id, spec) in chosen.iter().enumerate() {
        let spec = IndexSpec {
            schema: Some(target.schema.clone()),
            ..(*spec).clone()
        };
        let found = control.client.query_opt(
            format!(
                "SELECT t.relname::text, {INDEX_TREE_SIZE} FROM pg_class c \
             JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid \
             WHERE c.relname = $1 AND c.relnamespace = $2::text::regnamespace"
            )
            .as_str(),
            &[&spec.name, &target.schema],
        )?;
        let (status, size, error) = match found {
            None => (DropStatus::Absent, 0, None),
            Some(r) if r.get::<_, String>(0) != target.table => (
                DropStatus::Failed,
                r.get(1),
                Some(format!(
                    "an index of that name exists on table {}, not on {table_name}; it is not managed here and was left alone",
                    r.get::<_, String>(0)
                )),
            ),
            Some(r) => {
                tasks.push(Task {
                    id,
                    name: spec.name.clone(),
                    steps: vec![if tree.is_some() {
                        drop_partitioned(&spec)
                    } else {
                        plan::drop_step(&spec)
                    }],
                    table: None,
                });
                let status = if args.session.dry_run {
                    DropStatus::WouldDrop
                } else {
                    DropStatus::Dropped
                };
                (status, r.get(1), None)
            }
        };
        rows.push(DroppedIndex {
            name: spec.name.clone(),
            table: table_name.clone(),
            status,
            duration_ms: 0.0,
            size_bytes: size,
            error,
        });
    }
    let sql: Vec<String> = tasks.iter().map(|t| t.steps[0].sql.clone()).collect();
    if args.session.dry_run {
        return Ok(assemble(rows, true, false, notices, sql));
    }

    let table_sql = set.table().qualified_table();
    let executor = Executor {
        config,
        settings: &settings,
        table: &table_sql,
        jobs: 1,
        stop,
    };
    let mut watcher = progress::Progress::new("dropping", tasks.len());
    let outcome = executor.run(tasks, &mut control.client, &mut watcher);
    target.release();
    for (id, row) in rows.iter_mut().enumerate() {
        if row.status != DropStatus::Dropped {
            continue;
        }
        match outcome.results.get(&id) {
            Some(result) => {
                row.duration_ms = result.duration.as_secs_f64() * 1000.0;
                if let Some(e) = &result.error {
                    row.status = DropStatus::Failed;
                    row.error = Some(e.to_string());
                }
            }
            None => {
                row.status = if outcome.session_error.is_some() {
                    DropStatus::Failed
                } else {
                    DropStatus::NotStarted
                };
                row.error = Some(
                    outcome
                        .session_error
                        .clone()
                        .unwrap_or_else(|| "the run stopped before this one".into()),
                );
            }
        }
    }
    Ok(assemble(rows, false, outcome.interrupted, notices, sql))
}

/// The named specs (all when none are named); an unknown name is an error listing the managed ones.
fn choose<'a>(set: &'a IndexSet, names: &[String]) -> Result<Vec<&'a IndexSpec>> {
    if names.is_empty() {
        return Ok(set.indexes.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            set.get(n).ok_or_else(|| {
                let known: Vec<&str> = set.indexes.iter().map(|i| i.name.as_str()).collect();
                anyhow::anyhow!(
                    "{n} is not a managed index (from {}); managed: {}",
                    set.origin,
                    known.join(", ")
                )
            })
        })
        .collect()
}

fn assemble(
    indexes: Vec<DroppedIndex>,
    dry_run: bool,
    interrupted: bool,
    notices: Vec<String>,
    sql: Vec<String>,
) -> DropIndexesReport {
    let n = |s: &[DropStatus]| indexes.iter().filter(|i| s.contains(&i.status)).count();
    DropIndexesReport {
        summary: DropSummary {
            total: indexes.len(),
            dropped: n(&[DropStatus::Dropped, DropStatus::WouldDrop]),
            absent: n(&[DropStatus::Absent]),
            failed: n(&[DropStatus::Failed]),
        },
        indexes,
        dry_run,
        interrupted,
        notices,
        sql,
    }
}

#[cfg(test)]
mod snapshot_tests;
