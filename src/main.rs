// The o2o-db binary: parse, run the library, turn the outcome into an exit code.
// main alone decides exit codes: 0 good, 1 findings, 2 could not run, 130 interrupted.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = o2o_db::cli::Cli::parse();
    match o2o_db::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // `o2o-db ... | head` closed our stdout: nothing left to say, like ripgrep.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // {:#} prints the whole context chain on one line: "in o2o-db.toml: ...: ...".
            eprintln!(
                "o2o-db: error: {}",
                o2o_db::conninfo::redact_text(&format!("{err:#}"))
            );
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
