//! The engine that plans, runs and cleans up index DDL on dedicated sessions:
//! session settings, the per-table run lock, the target both commands start
//! from (control session, table, privileges, lock), the plan (what to do with
//! each index and the statements that do it), the executor that runs them
//! while watching progress and blockers, and the progress display.
//! create-indexes and drop-indexes are two thin commands over it.

pub mod executor;
pub mod phases;
pub mod plan;
pub mod privileges;
pub mod progress;
pub mod run_lock;
pub mod session;
pub mod settings;
pub mod target;
mod watch;

pub use settings::{SessionArgs, SessionSettings};
pub use target::Target;
