// Placeholder until the subcommand lands: registered so the CLI shape is fixed.

use crate::config::Config;
use crate::report::{Outcome, Report};
use anyhow::{bail, Result};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct CreateIndexesArgs {}

#[derive(Debug, Serialize)]
pub struct CreateIndexesReport {}

impl Report for CreateIndexesReport {
    fn render_table(&self, _w: &mut dyn std::io::Write) -> Result<()> {
        Ok(())
    }
    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

pub fn run(_config: &Config, _args: &CreateIndexesArgs) -> Result<CreateIndexesReport> {
    bail!("this subcommand is not available yet")
}
