//! `o2o-db demo`: the whole tool on a throwaway PostgreSQL, in the order of the
//! V8.5 report's story, so a new user sees it work before pointing it at a
//! real database. Each step prints, under its heading, the o2o-db command a
//! user would run for it, then that command's normal report.

use crate::commands::{benchmark, create_indexes, pool_status, seed, verify};
use crate::config::Config;
use crate::pg_sandbox::{Sandbox, SandboxOptions};
use crate::report::{self, Format, Outcome, Report};
use anyhow::{Context, Result};
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many orders to seed (the report had 93,728)
    #[arg(long, default_value_t = crate::seed_data::DEFAULT_ORDERS)]
    pub orders: u64,

    /// How many stores
    #[arg(long, default_value_t = crate::seed_data::DEFAULT_STORES)]
    pub stores: u32,

    /// Tell the story on a range-partitioned orders table: the seed step runs
    /// `seed --partition-by month` (a partition per month and a default one)
    #[arg(long)]
    pub partitioned: bool,

    /// Leave the server running afterwards and print its URL and the command that stops it
    #[arg(long)]
    pub keep: bool,
}

crate::cli::clap_default!(DemoArgs);

/// The demo's database on the throwaway server.
pub const DEMO_DATABASE: &str = "o2o_dashboard";

pub fn run(config: &Config, args: &DemoArgs, out: &mut dyn Write) -> Result<Outcome> {
    heading(out, "1. Start a throwaway PostgreSQL")?;
    let sandbox = Sandbox::start_with(&SandboxOptions {
        keep: args.keep,
        ..SandboxOptions::default()
    })
    .context("the demo needs PostgreSQL server binaries")?;
    sandbox.create_database(DEMO_DATABASE)?;
    // The user's pool and alert settings, pointed at the sandbox.
    let mut config = config.clone();
    config.conn = sandbox.conn_info(DEMO_DATABASE);
    config.conn.application_name = Some("o2o-db-demo".into());
    let version: String = crate::db::connect(&config.conn)?
        .query_one("SELECT version()", &[])?
        .get(0);
    let url = sandbox.url(DEMO_DATABASE);
    writeln!(out, "{version}\nlistening on {url}")?;
    writeln!(
        out,
        "$ export O2O_DB_URL='{url}'  # every command below connects there; for yours, its URL"
    )?;

    let seed_command = seed_command(args);
    let seed_title = format!(
        "2. Seed {} orders across {} stores{}",
        args.orders,
        args.stores,
        if args.partitioned {
            " into monthly partitions"
        } else {
            ""
        }
    );
    let config = &config;
    // Each step runs the very command it prints (see `step`), so the lesson cannot drift.
    let Some(_seeded) = step(out, &seed_title, &seed_command, |a| seed::run(config, a))? else {
        return Ok(Outcome::Interrupted);
    };
    let Some(_before) = step(
        out,
        "3. Benchmark before the indexes (the V8.4 state)",
        "benchmark",
        |a| benchmark::run(config, a),
    )?
    else {
        return Ok(Outcome::Interrupted);
    };
    let Some(built) = step(
        out,
        "4. Create the managed indexes (CONCURRENTLY, as on a live table)",
        "create-indexes",
        |a| create_indexes::run(config, a),
    )?
    else {
        return Ok(Outcome::Interrupted);
    };
    let Some(verified) = step(out, "5. Verify the deploy", "verify", |a| {
        verify::run(config, a)
    })?
    else {
        return Ok(Outcome::Interrupted);
    };
    let Some(after) = step(
        out,
        "6. Benchmark after, with the seq-scan comparison (what the indexes bought)",
        "benchmark --compare-seqscan",
        |a| benchmark::run(config, a),
    )?
    else {
        return Ok(Outcome::Interrupted);
    };
    if step(out, "7. Pool status", "pool-status", |a| {
        pool_status::run(config, a)
    })?
    .is_none()
    {
        return Ok(Outcome::Interrupted);
    }

    // The story ends well when the indexes were built, verify passes and the queries are fast.
    let outcome = built.outcome().and(verified.outcome()).and(after.outcome());
    if args.keep {
        heading(out, "The server keeps running")?;
        writeln!(out, "URL:  {url}")?;
        writeln!(out, "try:  o2o-db --database-url '{url}' verify")?;
        writeln!(out, "stop: {}", sandbox.stop_command())?;
    }
    Ok(outcome)
}

/// The seed step's command line; the other steps run the same on either table.
fn seed_command(args: &DemoArgs) -> String {
    format!(
        "seed --create-schema{} --orders {} --stores {}",
        if args.partitioned {
            " --partition-by month"
        } else {
            ""
        },
        args.orders,
        args.stores
    )
}

/// One step of the story: its heading, the o2o-db command a user would run
/// for it (`command`: the subcommand and its flags), then that command's
/// report. The step's arguments are parsed from `command` itself. None when
/// Ctrl-C has stopped the demo (a step that was running reports what it did).
fn step<A, R>(
    out: &mut dyn Write,
    title: &str,
    command: &str,
    run: impl FnOnce(&A) -> Result<R>,
) -> Result<Option<R>>
where
    A: clap::Args + clap::FromArgMatches,
    R: Report,
{
    if crate::stop::process().requested() {
        return Ok(None);
    }
    heading(out, title)?;
    writeln!(out, "$ o2o-db {command}")?;
    let flags: Vec<&str> = command.split_whitespace().skip(1).collect();
    let args: A = crate::cli::parse_args(&flags)
        .with_context(|| format!("internal: the demo's command `o2o-db {command}`"))?;
    let report = run(&args)?;
    report::render(&report, Format::Table, out)?;
    Ok(Some(report))
}

fn heading(out: &mut dyn Write, title: &str) -> Result<()> {
    writeln!(out, "\n== {title} ==")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::seed::{PartitionBy, SeedArgs};

    #[test]
    fn the_partitioned_demo_seeds_a_partitioned_table() {
        let parse = |args: &DemoArgs| -> SeedArgs {
            let command = seed_command(args);
            let flags: Vec<&str> = command.split_whitespace().skip(1).collect();
            crate::cli::parse_args(&flags).unwrap()
        };
        let plain = DemoArgs::default();
        assert_eq!(
            seed_command(&plain),
            "seed --create-schema --orders 93728 --stores 4"
        );
        assert_eq!(parse(&plain).partition_by, None);
        let partitioned = DemoArgs {
            partitioned: true,
            ..DemoArgs::default()
        };
        assert_eq!(
            seed_command(&partitioned),
            "seed --create-schema --partition-by month --orders 93728 --stores 4"
        );
        let seed = parse(&partitioned);
        assert_eq!(seed.partition_by, Some(PartitionBy::Month));
        assert!(seed.create_schema);
    }
}
