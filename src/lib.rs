//! o2o-db keeps the PostgreSQL database behind an O2O retail dashboard fast and
//! healthy: it creates the managed index set safely on a live table, verifies a
//! deploy, benchmarks the dashboard's queries and watches the connection pool.
//!
//! The binary is a thin wrapper around [`run`]; services use [`db::Pool`],
//! [`db::with_session`] and [`db::with_readonly_session`] directly.
//!
//! The stable surface is [`config`], [`conninfo`], [`db`], [`stop`] and the
//! report types of [`commands`]. The modules marked "the tool's own" are the
//! CLI's internals, public so the binary, tests and benches can reach them,
//! and may change in any release (as sqlx-cli treats its own).

pub mod config;
pub mod conninfo;
pub mod db;
pub mod stop;

/// The tool's own: the pg_catalog readers behind create-indexes and verify.
pub mod catalog;
/// The tool's own: the command line.
pub mod cli;
/// The tool's own: one module per subcommand (their report types are stable).
pub mod commands;
/// The tool's own: the index DDL engine.
pub mod ddl;
/// The tool's own: what a suite query's plan reads of the managed table.
pub mod explain;
/// The tool's own: SQL identifier quoting.
pub mod ident;
/// The tool's own: suite parameters drawn from the data.
pub mod params;
/// The tool's own: a throwaway PostgreSQL for tests, benches and the demo.
pub mod pg_sandbox;
/// The tool's own: formats, outcomes and progress.
pub mod report;
/// The tool's own: synthetic orders.
pub mod seed_data;
/// The tool's own: the index set and the query suite, parsed without a database.
pub mod sqlfiles;
mod text_file;

pub use db::pool_status;
pub use report::Outcome;

use anyhow::Result;
use cli::{Cli, Command};

/// Resolves the configuration, runs one subcommand and writes its report to stdout.
pub fn run(cli: Cli) -> Result<Outcome> {
    let Some(path) = cli.global.output.clone() else {
        return dispatch(&cli, &mut std::io::stdout().lock());
    };
    if let Command::PoolStatus(args) = &cli.command {
        if args.watch.is_some() {
            anyhow::bail!(
                "--output writes one report; --watch writes a stream: leave one of them out"
            );
        }
    }
    // Created first: an unwritable directory fails before any work.
    let mut file = report::AtomicOutput::create(&path)?;
    let outcome = dispatch(&cli, &mut file)?;
    file.commit()?;
    Ok(outcome)
}

/// Runs the subcommand, writing its report to `out`.
fn dispatch(cli: &Cli, out: &mut dyn std::io::Write) -> Result<Outcome> {
    let format = cli.global.format;
    // Resolved only by the commands that use a database; --target points it at one node.
    let config = || {
        let resolved = config::resolve(&cli.global.overrides(), &config::process_env)?;
        match &cli.global.target {
            Some(name) => resolved.for_target(name),
            None => Ok(resolved),
        }
    };
    if cli.global.all_targets {
        return all_targets(cli, &config()?, out);
    }
    // The CLI owns Ctrl-C: long runs stop cleanly and report what they did (exit 130).
    if !matches!(cli.command, Command::Completions(_) | Command::Man) {
        stop::install_or_warn();
    }
    match &cli.command {
        Command::Completions(args) => commands::shell::completions(args, out),
        Command::Man => commands::shell::man(out),
        Command::Seed(args) => report::run_and_emit(format, "seed", out, || {
            commands::seed::run(&config()?, args)
        }),
        Command::CreateIndexes(args) => report::run_and_emit(format, "create-indexes", out, || {
            commands::create_indexes::run(&config()?, args)
        }),
        Command::DropIndexes(args) => report::run_and_emit(format, "drop-indexes", out, || {
            commands::drop_indexes::run(&config()?, args)
        }),
        Command::Verify(args) => report::run_and_emit(format, "verify", out, || {
            commands::verify::run(&config()?, args)
        }),
        Command::Benchmark(args) => report::run_and_emit(format, "benchmark", out, || {
            commands::benchmark::run(&config()?, args)
        }),
        Command::PoolStatus(args) => {
            report::check_format::<commands::pool_status::PoolStatusReport>(format, "pool-status")?;
            commands::pool_status::run_cli(&config()?, args, format, out)
        }
        Command::Demo(args) => {
            // The demo is a story told in tables: any other format is refused up front.
            if format != report::Format::Table {
                anyhow::bail!(
                    "--format {} is not available for demo; it prints tables. Nothing was done",
                    format.name()
                );
            }
            commands::demo::run(&config()?, args, out)
        }
    }
}

/// `--all-targets`: verify, benchmark or pool-status on every node.
fn all_targets(
    cli: &Cli,
    config: &config::Config,
    out: &mut dyn std::io::Write,
) -> Result<Outcome> {
    use commands::fleet::{self, FleetReport};
    let format = cli.global.format;
    match &cli.command {
        Command::Verify(args) => {
            report::run_and_emit::<FleetReport<_>>(format, "verify --all-targets", out, || {
                fleet::run(config, |c| commands::verify::run(c, args))
            })
        }
        Command::Benchmark(args) => {
            report::run_and_emit::<FleetReport<_>>(format, "benchmark --all-targets", out, || {
                fleet::run(config, |c| commands::benchmark::run(c, args))
            })
        }
        Command::PoolStatus(args) if args.watch.is_none() && args.load.is_none() => {
            report::run_and_emit::<FleetReport<_>>(format, "pool-status --all-targets", out, || {
                fleet::run(config, |c| commands::pool_status::run(c, args))
            })
        }
        Command::PoolStatus(_) => anyhow::bail!(
            "--all-targets takes one snapshot of each node; --watch and --load run on one node: pick it with --target NAME"
        ),
        _ => anyhow::bail!(
            "--all-targets is for verify, benchmark and pool-status; index DDL runs on the primary only: pick it with --target NAME"
        ),
    }
}
