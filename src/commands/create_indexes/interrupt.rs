// Ctrl-C for index runs: the first press asks the run to stop (cancel the
// running build on the server, clean up, report what was done, exit 130);
// a second press exits at once, for when cleanup itself is stuck.
//
// The handler is process-wide and can be installed only once, so the CLI
// installs it (see lib.rs); library callers (tests, the demo) pass their own
// flag to `run_with` and are never touched by a signal handler.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicU32 = AtomicU32::new(0);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// The flag the CLI's Ctrl-C handler sets.
pub fn flag() -> &'static AtomicBool {
    &REQUESTED
}

/// Installs the Ctrl-C handler once per process. An error means another part
/// of the program installed its own handler first; Ctrl-C then does what that
/// handler does.
pub fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                if PRESSES.fetch_add(1, Ordering::SeqCst) > 0 {
                    eprintln!("o2o-db: interrupted again, exiting without cleanup");
                    std::process::exit(130);
                }
                eprintln!("o2o-db: interrupted: cancelling the running statement and cleaning up (Ctrl-C again to exit now)");
                REQUESTED.store(true, Ordering::SeqCst);
            })
            .map_err(|e| format!("Ctrl-C handling is unavailable: {e}"))
        })
        .clone()
}

/// `install`, telling the user on stderr when Ctrl-C will not clean up.
pub fn install_or_warn() {
    if let Err(e) = install() {
        crate::report::notice(&format!("o2o-db: {e}"));
    }
}
