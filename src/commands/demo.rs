// `o2o-db demo`: the whole tool on a throwaway PostgreSQL, in the order of the
// V8.5 report's story, so a new user sees it work before pointing it at a
// real database. Each step prints its normal report under a heading.

use crate::commands::benchmark::{self, BenchmarkArgs};
use crate::commands::create_indexes::{self, CreateIndexesArgs};
use crate::commands::pool_status::{self, PoolStatusArgs};
use crate::commands::seed::{self, SeedArgs};
use crate::commands::verify::{self, VerifyArgs};
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
    writeln!(
        out,
        "{version}\nlistening on {}",
        sandbox.url(DEMO_DATABASE)
    )?;

    heading(
        out,
        &format!(
            "2. Seed {} orders across {} stores",
            args.orders, args.stores
        ),
    )?;
    let seeded = seed::run(
        &config,
        &SeedArgs {
            orders: args.orders,
            stores: args.stores,
            create_schema: true,
            ..SeedArgs::default()
        },
    )?;
    report::render(&seeded, Format::Table, out)?;

    let Some(_before) = step(
        out,
        "3. Benchmark before the indexes (the V8.4 state)",
        || benchmark::run(&config, &BenchmarkArgs::default()),
    )?
    else {
        return Ok(Outcome::Interrupted);
    };
    let Some(built) = step(
        out,
        "4. Create the managed indexes (CONCURRENTLY, as on a live table)",
        || create_indexes::run(&config, &CreateIndexesArgs::default()),
    )?
    else {
        return Ok(Outcome::Interrupted);
    };
    let Some(verified) = step(out, "5. Verify the deploy", || {
        verify::run(&config, &VerifyArgs::default())
    })?
    else {
        return Ok(Outcome::Interrupted);
    };
    let after_args = BenchmarkArgs {
        compare_seqscan: true,
        ..BenchmarkArgs::default()
    };
    let Some(after) = step(
        out,
        "6. Benchmark after, with the seq-scan comparison (what the indexes bought)",
        || benchmark::run(&config, &after_args),
    )?
    else {
        return Ok(Outcome::Interrupted);
    };
    if step(out, "7. Pool status", || {
        pool_status::run(&config, &PoolStatusArgs::default())
    })?
    .is_none()
    {
        return Ok(Outcome::Interrupted);
    }

    // The story ends well when the indexes were built, verify passes and the queries are fast.
    let outcome = built.outcome().and(verified.outcome()).and(after.outcome());
    if args.keep {
        heading(out, "The server keeps running")?;
        writeln!(out, "URL:  {}", sandbox.url(DEMO_DATABASE))?;
        writeln!(
            out,
            "try:  o2o-db --database-url '{}' verify",
            sandbox.url(DEMO_DATABASE)
        )?;
        writeln!(out, "stop: {}", sandbox.stop_command())?;
    }
    Ok(outcome)
}

/// One step of the story: its heading, then its normal report. None when
/// Ctrl-C has stopped the demo (a step that was running reports what it did).
fn step<R: Report>(
    out: &mut dyn Write,
    title: &str,
    run: impl FnOnce() -> Result<R>,
) -> Result<Option<R>> {
    if crate::stop::process().requested() {
        return Ok(None);
    }
    heading(out, title)?;
    let report = run()?;
    report::render(&report, Format::Table, out)?;
    Ok(Some(report))
}

fn heading(out: &mut dyn Write, title: &str) -> Result<()> {
    writeln!(out, "\n== {title} ==")?;
    Ok(())
}
