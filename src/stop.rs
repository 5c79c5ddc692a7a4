//! One stop signal for a run: long commands poll `requested()` and sleep
//! through `sleep()`, which returns early; SIGINT, SIGTERM and SIGHUP all feed
//! the process's own.
//!
//! The first signal asks the running command to stop: index builds are
//! cancelled on the server and cleaned up, benchmarks and load runs report
//! what they measured, and the process exits 128 + the signal's number (130
//! for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP). A second signal exits at
//! once, for when cleanup itself is stuck. Only the CLI installs the handlers
//! (lib.rs); library callers make their own `Stop` and request it themselves.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A cloneable stop request shared by a run's threads.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// The signal that asked (0 for a request made in code), once one did.
    state: Mutex<Option<i32>>,
    wake: Condvar,
}

impl Stop {
    /// A stop that nothing requests until `request` is called.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks every holder of this stop to finish.
    pub fn request(&self) {
        self.request_by(0);
    }

    fn request_by(&self, signal: i32) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.get_or_insert(signal);
        self.0.wake.notify_all();
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The signal number that asked, when a signal did.
    pub fn signal(&self) -> Option<i32> {
        let state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.filter(|s| *s != 0)
    }

    /// Sleeps `d`, or less when a stop is requested meanwhile; true when stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.is_some() {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            state = match self.0.wake.wait_timeout(state, until - now) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The process's stop, requested by SIGINT, SIGTERM or SIGHUP once
/// [`install`] ran (never otherwise).
pub fn process() -> &'static Stop {
    static PROCESS: OnceLock<Stop> = OnceLock::new();
    PROCESS.get_or_init(Stop::new)
}

/// The exit code of a run the process's stop ended: 128 + the signal (130 when
/// no signal was recorded, as for Ctrl-C).
pub fn exit_code() -> u8 {
    let signal = process().signal().unwrap_or(signal_hook::consts::SIGINT);
    u8::try_from(128 + signal).unwrap_or(130)
}

/// Installs the signal handlers once per process.
pub fn install() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(|e| format!("signal handling is unavailable: {e}"))?;
            std::thread::Builder::new()
                .name("o2o-db-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        let name = match signal {
                            SIGTERM => "SIGTERM",
                            SIGHUP => "SIGHUP",
                            _ => "interrupted",
                        };
                        if process().requested() {
                            eprintln!("o2o-db: {name} again, exiting without cleanup");
                            std::process::exit(128 + signal);
                        }
                        eprintln!(
                            "o2o-db: {name}: stopping, cleaning up and reporting what was done (again to exit now)"
                        );
                        process().request_by(signal);
                    }
                })
                .map(|_| ())
                .map_err(|e| format!("signal handling is unavailable: {e}"))
        })
        .clone()
}

/// `install`, telling the user on stderr when a signal will not clean up.
pub fn install_or_warn() {
    if let Err(e) = install() {
        crate::report::notice(&format!("o2o-db: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_returns_early_once_requested() {
        let stop = Stop::new();
        assert!(!stop.sleep(Duration::from_millis(1)));
        let other = stop.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.request();
        });
        // Returns true (stopped) long before the minute is up.
        assert!(stop.sleep(Duration::from_secs(60)));
        waker.join().unwrap();
        assert!(stop.requested());
        assert_eq!(stop.signal(), None, "a request in code is not a signal");
    }
}
