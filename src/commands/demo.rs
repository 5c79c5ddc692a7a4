// Placeholder until the subcommand lands: registered so the CLI shape is fixed.

use crate::config::Config;
use crate::report::Outcome;
use anyhow::{bail, Result};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run(_config: &Config, _args: &DemoArgs, _out: &mut dyn std::io::Write) -> Result<Outcome> {
    bail!("this subcommand is not available yet")
}
