//! The o2o-db binary: parse, run the library, turn the outcome into an exit code.
//! main alone decides exit codes: 0 good, 1 findings, 2 could not run, 130 interrupted.
//! With --format json, a run that cannot happen still prints one JSON document on
//! stdout ({"error": {"message", "exit_code"}}), so monitoring never parses nothing;
//! with --format nagios it prints `O2O_DB <COMMAND> UNKNOWN - <message>` and exits 3.

use clap::Parser;
use o2o_db::cli::Cli;
use o2o_db::conninfo::redact_text;
use o2o_db::report::Format;
use std::io::Write;
use std::process::ExitCode;

/// The exit code of a run that could not do its job.
const COULD_NOT_RUN: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // Known before `run` takes the cli: how to say that the run failed.
    let format = cli.global.format;
    let command = cli.command.name();
    match o2o_db::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // `o2o-db ... | head` closed our stdout: nothing left to say, like ripgrep.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // {:#} prints the whole context chain on one line: "in o2o-db.toml: ...: ...".
            let message = redact_text(&format!("{err:#}"));
            eprintln!("o2o-db: error: {message}");
            match format {
                Format::Json => print_error_document(&message, COULD_NOT_RUN),
                Format::Nagios => {
                    println!("{}", o2o_db::report::nagios::unknown(command, &message));
                    return ExitCode::from(o2o_db::report::NagiosState::Unknown as u8);
                }
                _ => {}
            }
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

/// Bad arguments: clap's message on stderr (and --help/--version as usual);
/// with --format json on the command line, the error document on stdout too.
fn usage_error(e: &clap::Error) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(COULD_NOT_RUN);
    let asked = o2o_db::cli::format_in_args(std::env::args_os());
    if e.use_stderr() && asked == Some(Format::Nagios) {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        println!(
            "{}",
            o2o_db::report::nagios::unknown("o2o-db", first.trim_start_matches("error: "))
        );
        let _ = e.print();
        return ExitCode::from(o2o_db::report::NagiosState::Unknown as u8);
    }
    if e.use_stderr() && asked == Some(Format::Json) {
        let text = redact_text(&e.to_string());
        // clap's first paragraph is the error; the rest is usage and a --help hint.
        let first = text.split("\n\n").next().unwrap_or_default().trim();
        print_error_document(first.strip_prefix("error: ").unwrap_or(first), code);
    }
    // Printing to a closed stream has nobody to tell.
    let _ = e.print();
    ExitCode::from(code)
}

/// What --format json prints when there is no report: `{"error": {...}}`.
#[derive(serde::Serialize)]
struct ErrorDocument<'a> {
    error: ErrorBody<'a>,
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    exit_code: u8,
}

/// The error document on stdout, pretty-printed as reports are.
fn print_error_document(message: &str, exit_code: u8) {
    let doc = ErrorDocument {
        error: ErrorBody { message, exit_code },
    };
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves stderr's line as the only word, as for reports.
    let _ = serde_json::to_writer_pretty(&mut out, &doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
