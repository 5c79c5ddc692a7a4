// Placeholder until the subcommand lands: registered so the CLI shape is fixed.

use crate::config::Config;
use crate::report::{Outcome, Report};
use anyhow::{bail, Result};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct BenchmarkArgs {}

#[derive(Debug, Serialize)]
pub struct BenchmarkReport {}

impl Report for BenchmarkReport {
    fn render_table(&self, _w: &mut dyn std::io::Write) -> Result<()> {
        Ok(())
    }
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

pub fn run(_config: &Config, _args: &BenchmarkArgs) -> Result<BenchmarkReport> {
    bail!("this subcommand is not available yet")
}
