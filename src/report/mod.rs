//! Output shared by every subcommand: the format switch and the [`Report`]
//! trait ([`format`]), the outcome that becomes the exit code ([`outcome`]),
//! progress and notices on stderr ([`progress`]) and the units every report
//! shows its figures in ([`units`]).
//!
//! Each command returns a plain report struct; tables, JSON and CSV are all
//! rendered from that one struct, so the formats cannot disagree. Findings
//! (a failed check, a crossed threshold) are data in the report, not errors.

mod format;
pub mod nagios;
mod outcome;
mod output;
mod progress;
pub mod prometheus;
mod units;

#[cfg(test)]
pub(crate) mod snapshot;

pub use format::{check_format, emit, render, run_and_emit, table, Format, Report};
pub use nagios::{NagiosCheck, NagiosState};
pub use outcome::Outcome;
pub use output::AtomicOutput;
pub use progress::{interactive, notice, progress_bar};
pub use units::{ms, size_pretty};
