// Ctrl-C, once for the whole process.
//
// The first press asks the running command to stop: index builds are
// cancelled on the server and cleaned up, benchmarks and load runs report
// what they measured, and the process exits 130. A second press exits at
// once, for when cleanup itself is stuck. The handler can be installed only
// once per process, so the CLI installs it (lib.rs); library callers (tests,
// services) never get a signal handler and their runs are never "interrupted".

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicU32 = AtomicU32::new(0);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// The flag Ctrl-C sets (stays false unless the CLI installed the handler).
pub fn flag() -> &'static AtomicBool {
    &REQUESTED
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// A flag nothing sets: for runs that must not be interrupted.
pub fn never() -> &'static AtomicBool {
    static NEVER: AtomicBool = AtomicBool::new(false);
    &NEVER
}

/// Installs the handler once per process. An error means another part of the
/// program installed its own first; Ctrl-C then does what that one does.
pub fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                if PRESSES.fetch_add(1, Ordering::SeqCst) > 0 {
                    eprintln!("o2o-db: interrupted again, exiting without cleanup");
                    std::process::exit(130);
                }
                eprintln!("o2o-db: interrupted: stopping, cleaning up and reporting what was done (Ctrl-C again to exit now)");
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
