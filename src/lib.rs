//! o2o-db keeps the PostgreSQL database behind an O2O retail dashboard fast and
//! healthy: it creates the managed index set safely on a live table, verifies a
//! deploy, benchmarks the dashboard's queries and watches the connection pool.
//!
//! The binary is a thin wrapper around [`run`]; services use [`db::Pool`],
//! [`db::with_session`] and [`db::with_readonly_session`] directly.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod conninfo;
pub mod db;
pub mod index_state;
pub mod interrupt;
pub mod params;
pub mod pg_sandbox;
pub mod report;
pub mod seed_data;

pub use commands::pool_status::pool_status;
pub use report::Outcome;

use anyhow::Result;
use cli::{Cli, Command};

/// Resolves the configuration, runs one subcommand and writes its report to stdout.
pub fn run(cli: Cli) -> Result<Outcome> {
    let out = &mut std::io::stdout().lock();
    let format = cli.global.format;
    // Resolved only by the commands that use a database.
    let config = || config::resolve(&cli.global.overrides(), &config::process_env);
    // The CLI owns Ctrl-C: long runs stop cleanly and report what they did (exit 130).
    if !matches!(cli.command, Command::Completions(_) | Command::Man) {
        interrupt::install_or_warn();
    }
    match &cli.command {
        Command::Completions(args) => commands::shell::completions(args, out),
        Command::Man => commands::shell::man(out),
        Command::Seed(args) => report::emit(&commands::seed::run(&config()?, args)?, format, out),
        Command::CreateIndexes(args) => report::emit(
            &commands::create_indexes::run(&config()?, args)?,
            format,
            out,
        ),
        Command::DropIndexes(args) => {
            report::emit(&commands::drop_indexes::run(&config()?, args)?, format, out)
        }
        Command::Verify(args) => {
            report::emit(&commands::verify::run(&config()?, args)?, format, out)
        }
        Command::Benchmark(args) => {
            report::emit(&commands::benchmark::run(&config()?, args)?, format, out)
        }
        Command::PoolStatus(args) => commands::pool_status::run_cli(&config()?, args, format, out),
        Command::Demo(args) => commands::demo::run(&config()?, args, out),
    }
}
