//! --watch: a snapshot every interval until Ctrl-C.
//!
//! On a terminal the table is redrawn in place. Anywhere else (a pipe, a log
//! file) redrawing would only leave escape codes behind, so each snapshot is
//! appended: tables separated by a blank line, or one JSON object per line
//! (JSON Lines) with --format json, ready for a log shipper. A closed pipe
//! (`| head`) ends the watch quietly.

use super::{PoolStatusArgs, PoolStatusReport};
use crate::config::Config;
use crate::report::{self, Format, Outcome, Report};
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Clears a terminal and moves the cursor home.
const CLEAR: &str = "\x1b[H\x1b[2J";

pub fn run(
    config: &Config,
    args: &PoolStatusArgs,
    every: Duration,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let stop = crate::stop::process();
    let redraw = format == Format::Table && std::io::stdout().is_terminal();
    let sources = super::Sources::find(config, args)?;
    let pool = super::open_probe_pool(config)?;
    let mut first = true;
    loop {
        match super::snapshot(config, args, &pool, &sources, None) {
            Ok(report) => {
                let frame = frame(&report, format, redraw, every)?;
                if let Err(e) = out.write_all(&frame).and_then(|_| out.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(report.outcome());
                    }
                    return Err(anyhow::anyhow!("writing the report: {e}"));
                }
            }
            // The first snapshot failing means we cannot run at all.
            Err(e) if first => return Err(e),
            // Later ones: the server may be restarting; say so and keep watching.
            Err(e) => eprintln!(
                "o2o-db: snapshot failed, retrying in {}: {}",
                humantime::format_duration(every),
                crate::conninfo::redact_text(&format!("{e:#}"))
            ),
        }
        first = false;
        if stop.sleep(every) {
            return Ok(Outcome::Interrupted);
        }
    }
}

/// One snapshot as bytes, written at once so a redraw does not flicker.
pub(super) fn frame(
    report: &PoolStatusReport,
    format: Format,
    redraw: bool,
    every: Duration,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match format {
        Format::Json => {
            serde_json::to_writer(&mut buf, report)?;
            buf.push(b'\n');
        }
        _ => {
            if redraw {
                buf.extend_from_slice(CLEAR.as_bytes());
            }
            report::render(report, format, &mut buf)?;
            if redraw {
                writeln!(
                    buf,
                    "\nevery {} · Ctrl-C to stop",
                    humantime::format_duration(every)
                )?;
            } else {
                writeln!(buf)?;
            }
        }
    }
    Ok(buf)
}
