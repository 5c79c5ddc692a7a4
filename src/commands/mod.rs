//! One module per subcommand; each exposes its Args and `run(&Config, &Args) -> Result<Report>`.
//! `fleet` runs verify, benchmark or pool-status on every `[[targets]]` node (`--all-targets`).

pub mod benchmark;
pub mod create_indexes;
pub mod demo;
pub mod drop_indexes;
pub mod fleet;
pub mod pool_status;
pub mod seed;
pub mod shell;
pub mod verify;
