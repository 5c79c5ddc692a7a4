// Output shared by every subcommand: the format switch, the outcome that
// becomes the exit code, and progress on stderr.
//
// Each command returns a plain report struct; tables, JSON and CSV are all
// rendered from that one struct, so the formats cannot disagree. Findings
// (a failed check, a crossed threshold) are data in the report, not errors.

use anyhow::Result;
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// How a report is written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// One JSON document, for monitoring.
    Json,
    /// Comma-separated rows (benchmark).
    Csv,
}

/// What a run found; main turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is as it should be: exit 0.
    Clean,
    /// The tool ran and found a problem: exit 1.
    Findings,
    /// Stopped by a signal after reporting what was done: exit 128 + the
    /// signal (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Findings => 1,
            // 128 + the signal that stopped the run: 130 for Ctrl-C, 143 for SIGTERM.
            Outcome::Interrupted => crate::stop::exit_code(),
        }
    }

    /// The worse of two outcomes.
    pub fn and(self, other: Outcome) -> Outcome {
        use Outcome::*;
        match (self, other) {
            (Interrupted, _) | (_, Interrupted) => Interrupted,
            (Findings, _) | (_, Findings) => Findings,
            _ => Clean,
        }
    }

    pub fn from_findings(found: bool) -> Outcome {
        if found {
            Outcome::Findings
        } else {
            Outcome::Clean
        }
    }
}

/// A command's report: serialisable for JSON, drawable as a table.
pub trait Report: Serialize {
    /// The formats this report can be written in; checked before any work
    /// (see [`check_format`]), so an unusable --format never follows a change.
    const FORMATS: &'static [Format] = &[Format::Table, Format::Json];

    /// The human-readable form.
    fn render_table(&self, w: &mut dyn Write) -> Result<()>;

    /// The CSV form, for reports whose FORMATS include it.
    fn render_csv(&self, _w: &mut dyn Write) -> Result<()> {
        anyhow::bail!("internal: --format csv has no renderer for this report")
    }

    /// Whether the run found a problem (exit 1).
    fn outcome(&self) -> Outcome;
}

/// Err (exit 2) when `R` cannot be written as `format`: called before a command
/// connects, so `drop-indexes --format csv` refuses instead of dropping first.
pub fn check_format<R: Report>(format: Format, command: &str) -> Result<()> {
    if R::FORMATS.contains(&format) {
        return Ok(());
    }
    let names: Vec<String> = R::FORMATS.iter().map(|f| f.name().to_string()).collect();
    anyhow::bail!(
        "--format {} is not available for {command}; use {}. Nothing was done",
        format.name(),
        names.join(" or ")
    )
}

/// Checks the format, runs the command, renders its report: formats are
/// refused before `run` touches anything.
pub fn run_and_emit<R: Report>(
    format: Format,
    command: &str,
    w: &mut dyn Write,
    run: impl FnOnce() -> Result<R>,
) -> Result<Outcome> {
    check_format::<R>(format, command)?;
    emit(&run()?, format, w)
}

impl Format {
    /// The name as given to --format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// Writes `report` in `format` to `w` and returns its outcome.
pub fn render(report: &impl Report, format: Format, w: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => report.render_table(w)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, report)?;
            writeln!(w)?;
        }
        Format::Csv => report.render_csv(w)?,
    }
    w.flush()?;
    Ok(())
}

/// Renders and returns the outcome: the last step of most commands.
pub fn emit(report: &impl Report, format: Format, w: &mut dyn Write) -> Result<Outcome> {
    render(report, format, w)?;
    Ok(report.outcome())
}

/// True when progress bars and notices should be drawn (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr, hidden when stderr is not a terminal (cron, pipes).
pub fn progress_bar(len: u64, message: &str) -> indicatif::ProgressBar {
    if !interactive() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>16} [{bar:40.cyan/blue}] {pos}/{len} ({percent}%, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A one-line notice on stderr, shown only on a terminal.
pub fn notice(message: &str) {
    if interactive() {
        eprintln!("{message}");
    }
}

/// A table with the project's look: UTF-8 borders, content-sized columns.
pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t
}

/// Milliseconds with two decimals, the unit every timing is shown in.
pub fn ms(v: f64) -> String {
    format!("{v:.2}")
}

/// Bytes as kB/MB/GB, like pg_size_pretty.
pub fn size_pretty(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GB", b / 1024.0 / 1024.0 / 1024.0)
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / 1024.0 / 1024.0)
    } else if b >= 1024.0 {
        format!("{:.0} kB", b / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}
