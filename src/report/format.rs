//! How a report reaches stdout: the --format switch, the [`Report`] trait each
//! command's report implements, and the steps that check the format before
//! any work, render the report and hand back its outcome.

use super::nagios::{NagiosCheck, NagiosState};
use super::Outcome;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

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
    /// Prometheus text exposition, for node_exporter's textfile collector
    /// (verify, pool-status, benchmark, create-indexes).
    Prometheus,
    /// One Nagios status line with perfdata, and Nagios exit codes (0 OK,
    /// 1 WARNING, 2 CRITICAL, 3 UNKNOWN) (verify, pool-status, benchmark).
    Nagios,
}

impl Format {
    /// The name as given to --format.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Prometheus => "prometheus",
            Format::Nagios => "nagios",
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

    /// The Prometheus form, for reports whose FORMATS include it.
    fn render_prometheus(&self, _w: &mut dyn Write) -> Result<()> {
        anyhow::bail!("internal: --format prometheus has no renderer for this report")
    }

    /// What the report says to Nagios, for reports whose FORMATS include it.
    fn nagios(&self) -> Option<NagiosCheck> {
        None
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

/// Writes `report` in `format` to `w`.
pub fn render(report: &impl Report, format: Format, w: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => report.render_table(w)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, report)?;
            writeln!(w)?;
        }
        Format::Csv => report.render_csv(w)?,
        Format::Prometheus => report.render_prometheus(w)?,
        Format::Nagios => match report.nagios() {
            Some(check) => check.write(w)?,
            None => anyhow::bail!("internal: --format nagios has no renderer for this report"),
        },
    }
    w.flush()?;
    Ok(())
}

/// Renders and returns the outcome: the last step of most commands. With
/// --format nagios the outcome is the Nagios state (an interrupted run: UNKNOWN).
pub fn emit(report: &impl Report, format: Format, w: &mut dyn Write) -> Result<Outcome> {
    render(report, format, w)?;
    let outcome = report.outcome();
    match (format, report.nagios()) {
        (Format::Nagios, _) if outcome == Outcome::Interrupted => {
            Ok(Outcome::Nagios(NagiosState::Unknown))
        }
        (Format::Nagios, Some(check)) => Ok(Outcome::Nagios(check.state)),
        _ => Ok(outcome),
    }
}

/// A table with the project's look: UTF-8 borders, content-sized columns.
pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct TableOnly;

    impl Report for TableOnly {
        fn render_table(&self, w: &mut dyn Write) -> Result<()> {
            writeln!(w, "a table")?;
            Ok(())
        }
        fn outcome(&self) -> Outcome {
            Outcome::Findings
        }
    }

    #[test]
    fn an_unavailable_format_is_refused_before_the_run() {
        let mut out = Vec::new();
        let err = run_and_emit(
            Format::Csv,
            "drop-indexes",
            &mut out,
            || -> Result<TableOnly> { panic!("the run must not start") },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "--format csv is not available for drop-indexes; use table or json. Nothing was done"
        );
        assert!(out.is_empty());
        let outcome = run_and_emit(Format::Table, "x", &mut out, || Ok(TableOnly)).unwrap();
        assert_eq!(
            (outcome, out.as_slice()),
            (Outcome::Findings, &b"a table\n"[..])
        );
        let mut json = Vec::new();
        render(&TableOnly, Format::Json, &mut json).unwrap();
        assert_eq!(json, b"null\n");
    }
}
