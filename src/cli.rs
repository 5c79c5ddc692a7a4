//! The command line: global options shared by every subcommand, and one Args
//! struct per subcommand (defined beside its code in src/commands/).
//! Doc comments here are the --help text.

use crate::commands;
use crate::config::Overrides;
use crate::report::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Keeps the PostgreSQL database behind an O2O retail dashboard fast and healthy.
///
/// Creates the managed index set safely on a live table, verifies a deploy,
/// benchmarks the dashboard's queries and watches the connection pool.
///
/// Exit codes: 0 all good, 1 the tool ran and found a problem, 2 it could not run,
/// 130 interrupted.
///
/// Example: o2o-db --database-url postgres://dba@db1/o2o_dashboard verify
#[derive(Debug, Parser)]
#[command(
    name = "o2o-db",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file [env: O2O_DB_CONFIG] [default: ./o2o-db.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL or libpq key=value string [env: O2O_DB_URL, then DATABASE_URL]; what it
    /// leaves out comes from its service (pg_service.conf), PGHOST, PGPORT, PGUSER, PGPASSWORD,
    /// PGDATABASE, PGSSLMODE and ~/.pgpass, as psql uses them
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Run against the [[targets]] entry NAME of the config (its url, and its pooling)
    ///
    /// Example: o2o-db --target replica1 verify
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["database_url", "all_targets"])]
    pub target: Option<String>,

    /// verify, benchmark and pool-status: run on every [[targets]] node, one
    /// report with a section per node and the fleet's own findings (a node
    /// that is not the role the config gives it, two nodes taking writes);
    /// the exit code is the worst of them
    ///
    /// Example: o2o-db --all-targets --format prometheus --output /var/lib/node_exporter/o2o_db.prom verify
    #[arg(long, global = true, conflicts_with = "database_url")]
    pub all_targets: bool,

    /// Output format of the report on stdout
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to FILE instead of stdout, atomically (a temporary
    /// file beside it, renamed once complete): for node_exporter's textfile
    /// collector. A run that cannot finish leaves FILE as it was.
    ///
    /// Example: o2o-db --format prometheus --output /var/lib/node_exporter/o2o_db.prom verify
    #[arg(long, global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

impl Command {
    /// The subcommand as typed: `pool-status`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Seed(_) => "seed",
            Command::CreateIndexes(_) => "create-indexes",
            Command::DropIndexes(_) => "drop-indexes",
            Command::Verify(_) => "verify",
            Command::Benchmark(_) => "benchmark",
            Command::PoolStatus(_) => "pool-status",
            Command::Demo(_) => "demo",
            Command::Completions(_) => "completions",
            Command::Man => "man",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load synthetic O2O orders (binary COPY) into a test database.
    ///
    /// Example: o2o-db seed --create-schema --orders 93728 --stores 4
    Seed(commands::seed::SeedArgs),

    /// Create the managed index set on a live table, safely (CONCURRENTLY, lock timeouts).
    ///
    /// Example: o2o-db create-indexes --dry-run
    CreateIndexes(commands::create_indexes::CreateIndexesArgs),

    /// Drop managed indexes concurrently (all of them, or those named).
    ///
    /// Example: o2o-db drop-indexes idx_orders_store_date
    DropIndexes(commands::drop_indexes::DropIndexesArgs),

    /// Check that the database is as it should be after a deploy; the exit code gates the pipeline.
    ///
    /// Example: o2o-db verify --format json
    Verify(commands::verify::VerifyArgs),

    /// Time the dashboard's queries: percentiles, thresholds, history.
    ///
    /// Example: o2o-db benchmark --iterations 50 --max-p95-ms 100
    Benchmark(commands::benchmark::BenchmarkArgs),

    /// Show the pool and the server's connections; exit 1 above the usage alert.
    ///
    /// Example: o2o-db pool-status --format json
    PoolStatus(commands::pool_status::PoolStatusArgs),

    /// Run the whole story on a throwaway PostgreSQL: seed, benchmark, index, verify.
    ///
    /// Example: o2o-db demo --keep
    Demo(commands::demo::DemoArgs),

    /// Print a shell completion script.
    ///
    /// Example: o2o-db completions bash > /etc/bash_completion.d/o2o-db
    Completions(commands::shell::CompletionsArgs),

    /// Print the man page (roff).
    ///
    /// Example: o2o-db man | man -l -
    Man,
}

/// The --format an argument list asks for, read without parsing the rest: for
/// reporting an argument error in that format when clap refuses the list.
pub fn format_in_args<I, T>(args: I) -> Option<Format>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    use clap::ValueEnum;
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into().to_string_lossy().into_owned())
        .collect();
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--format") {
            Some("") => args.get(i + 1).map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(format) = value.and_then(|v| Format::from_str(v, false).ok()) {
            found = Some(format);
        }
    }
    found
}

/// An Args struct with every field at its clap default, so each default is
/// stated once, in its `#[arg(...)]`; library callers and tests use
/// `..Args::default()`.
pub fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    match parse_args(&[]) {
        Ok(args) => args,
        // Only a programming error gets here (a required argument without a
        // default); no user input reaches it.
        Err(e) => panic!("internal: an Args struct has no complete defaults: {e}"),
    }
}

/// An Args struct from a subcommand's arguments (without the subcommand's
/// name), as the command line would give it: the demo runs the commands it prints.
pub fn parse_args<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> Result<T, clap::Error> {
    let command = T::augment_args(clap::Command::new("o2o-db").no_binary_name(true));
    command
        .try_get_matches_from(args)
        .and_then(|m| T::from_arg_matches(&m))
}

/// `impl Default` for an Args struct, from its clap defaults.
macro_rules! clap_default {
    ($args:ty) => {
        impl Default for $args {
            fn default() -> Self {
                $crate::cli::clap_defaults()
            }
        }
    };
}
pub(crate) use clap_default;

#[cfg(test)]
mod tests {
    use crate::commands::{
        benchmark, create_indexes, demo, drop_indexes, pool_status, seed, verify,
    };

    #[test]
    fn the_format_is_found_in_arguments_clap_refuses() {
        use super::format_in_args;
        use crate::report::Format;
        let find = |line: &str| format_in_args(line.split_whitespace());
        assert_eq!(
            find("o2o-db --format json verify --bogus"),
            Some(Format::Json)
        );
        assert_eq!(
            find("o2o-db verify --format=json --max-ms x"),
            Some(Format::Json)
        );
        assert_eq!(find("o2o-db --format csv benchmark"), Some(Format::Csv));
        assert_eq!(find("o2o-db verify --max-ms x"), None);
        assert_eq!(find("o2o-db --format"), None);
        assert_eq!(find("o2o-db --formats json"), None);
        assert_eq!(find("o2o-db demo -- --format json"), None);
    }

    #[test]
    fn every_args_default_is_its_clap_default() {
        // A derived Default would give 0 here, not the documented 1.
        assert_eq!(create_indexes::CreateIndexesArgs::default().jobs, 1);
        assert_eq!(benchmark::BenchmarkArgs::default().clients, 1);
        let seed = seed::SeedArgs::default();
        assert_eq!(
            (seed.orders, seed.stores, seed.seed),
            (
                crate::seed_data::DEFAULT_ORDERS,
                crate::seed_data::DEFAULT_STORES,
                42
            )
        );
        assert_eq!(
            demo::DemoArgs::default().orders,
            crate::seed_data::DEFAULT_ORDERS
        );
        assert!(drop_indexes::DropIndexesArgs::default().names.is_empty());
        assert!(verify::VerifyArgs::default().only.is_empty());
        assert!(pool_status::PoolStatusArgs::default().load.is_none());
    }
}
