// Ctrl-C for --watch and --load: the first press asks the loop to stop and
// report what it has (exit 130); a second press ends the process at once.
//
// The handler is process-wide and can be installed only once, so it sets a
// static flag that every run clears at its start. When another part of the
// process already owns the handler, Ctrl-C keeps its default effect and a
// notice says so.

use crate::report;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static PRESSED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// A flag that turns true on Ctrl-C, cleared now; None when no handler could be installed.
pub fn ctrl_c() -> Option<&'static AtomicBool> {
    let installed = INSTALLED.get_or_init(|| {
        ctrlc::set_handler(|| {
            if PRESSED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        })
        .map_err(|e| e.to_string())
    });
    match installed {
        Ok(()) => {
            PRESSED.store(false, Ordering::SeqCst);
            Some(&PRESSED)
        }
        Err(e) => {
            report::notice(&format!(
                "o2o-db: cannot catch Ctrl-C ({e}); Ctrl-C will end o2o-db without a report"
            ));
            None
        }
    }
}

/// A flag nothing sets: for runs without Ctrl-C handling (the library, tests).
pub fn never() -> &'static AtomicBool {
    static NEVER: AtomicBool = AtomicBool::new(false);
    &NEVER
}
