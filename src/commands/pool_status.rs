// Placeholder until the subcommand lands: registered so the CLI shape is fixed.

use crate::config::Config;
use crate::report::{Format, Outcome};
use anyhow::{bail, Result};

#[derive(Debug, clap::Args)]
pub struct PoolStatusArgs {}

pub fn run_cli(
    _config: &Config,
    _args: &PoolStatusArgs,
    _format: Format,
    _out: &mut dyn std::io::Write,
) -> Result<Outcome> {
    bail!("this subcommand is not available yet")
}
