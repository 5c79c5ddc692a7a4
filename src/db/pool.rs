//! The connection pool every subcommand and the dashboard's own services use.
//!
//! It mirrors the V8.5 report's SQLAlchemy setup (pool_size, max_overflow,
//! pre_ping, recycle, timeout) on r2d2, counts checkout waits and timeouts so
//! pool-status and benchmark can report them, and turns r2d2's one generic
//! timeout into the two errors a DBA needs told apart: the pool is exhausted,
//! or the server cannot be reached.

mod manager;

pub use manager::{Manager, ManagerError};

use super::connect::connect_reaching;
use crate::config::{Config, PoolSettings};
use crate::conninfo::ConnInfo;
use anyhow::{anyhow, Result};
use r2d2::HandleError;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// How often a waiting checkout looks whether a connection attempt failed.
const FAIL_FAST_SLICE: Duration = Duration::from_millis(50);

/// Counters fed by `Pool::get` and r2d2's timeout and error handlers.
#[derive(Debug, Default)]
pub struct PoolCounters {
    checkouts: AtomicU64,
    waits: AtomicU64,
    wait_micros_total: AtomicU64,
    wait_micros_max: AtomicU64,
    timeouts: AtomicU64,
    connection_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CheckoutStats {
    pub checkouts: u64,
    pub waits: u64,
    pub wait_ms_total: f64,
    pub wait_ms_max: f64,
    pub timeouts: u64,
    pub connection_errors: u64,
}

impl PoolCounters {
    fn record_wait(&self, waited: Duration) {
        let micros = waited.as_micros() as u64;
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.wait_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.wait_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CheckoutStats {
        CheckoutStats {
            checkouts: self.checkouts.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            wait_ms_total: self.wait_micros_total.load(Ordering::Relaxed) as f64 / 1000.0,
            wait_ms_max: self.wait_micros_max.load(Ordering::Relaxed) as f64 / 1000.0,
            timeouts: self.timeouts.load(Ordering::Relaxed),
            connection_errors: self.connection_errors.load(Ordering::Relaxed),
        }
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

#[derive(Debug)]
struct Errors(Arc<PoolCounters>);

impl HandleError<ManagerError> for Errors {
    fn handle_error(&self, error: ManagerError) {
        self.0.connection_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.0.last_error.lock() {
            *last = Some(error.to_string());
        }
    }
}

/// The r2d2 pool plus its counters and what it was built from.
#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<Manager>,
    counters: Arc<PoolCounters>,
    settings: PoolSettings,
    conn: ConnInfo,
    /// `host:port` of the host the first connection reached.
    reached: String,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.conn.to_string())
            .field("settings", &self.settings)
            .field("state", &self.inner.state())
            .finish()
    }
}

/// How eagerly `Pool::open` fills the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warm {
    /// Wait until `size` connections are open (fails after `timeout`), as a service would.
    Full,
    /// Open connections on demand; a short CLI run needs only a few.
    Lazy,
}

impl Pool {
    /// Builds the pool from config: min_idle = size, max_size = size + max_overflow,
    /// test_on_check_out = pre_ping, max_lifetime = recycle, connection_timeout = timeout.
    pub fn open(config: &Config, warm: Warm) -> Result<Pool> {
        Pool::with_settings(&config.conn, &config.pool, warm)
    }

    pub fn with_settings(conn: &ConnInfo, settings: &PoolSettings, warm: Warm) -> Result<Pool> {
        // One direct attempt first: a wrong host, database or password fails now,
        // within the connect timeout, with the server's reason, instead of
        // r2d2 retrying it for the whole checkout timeout.
        let reached = connect_reaching(conn)?.endpoint;
        let counters = Arc::new(PoolCounters::default());
        let manager = Manager::new(conn)?;
        let builder = r2d2::Pool::builder()
            .min_idle(Some(match warm {
                Warm::Full => settings.size,
                Warm::Lazy => 0,
            }))
            .max_size(settings.max_size().max(1))
            .test_on_check_out(settings.pre_ping)
            .max_lifetime(Some(settings.recycle.0))
            .connection_timeout(settings.timeout.0)
            .error_handler(Box::new(Errors(counters.clone())));
        let inner = builder.build_unchecked(manager);
        let pool = Pool {
            inner,
            counters,
            settings: settings.clone(),
            conn: conn.clone(),
            reached,
        };
        if warm == Warm::Full {
            pool.wait_until_warm()?;
        }
        Ok(pool)
    }

    fn wait_until_warm(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + self.settings.timeout.0;
        loop {
            let state = self.inner.state();
            if state.connections >= self.settings.size {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                let reason = self
                    .counters
                    .last_error()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                return Err(anyhow!(
                    "cannot connect to {}: opened {} of {} connections within {}{reason}",
                    self.conn.target(),
                    state.connections,
                    self.settings.size,
                    humantime::format_duration(self.settings.timeout.0)
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Checks out a connection, waiting at most the pool's timeout. The error
    /// says whether the pool was exhausted or the server could not be reached.
    ///
    /// A checkout that finds no idle connection counts as a wait (it queued, or
    /// a connection was opened for it); its time is recorded separately.
    pub fn get(&self) -> Result<PooledConnection> {
        self.get_timeout(self.settings.timeout.0)
    }

    /// `get` with another bound on the wait than the pool's timeout.
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection> {
        if let Some(conn) = self.inner.try_get() {
            self.counters.checkouts.fetch_add(1, Ordering::Relaxed);
            return Ok(conn);
        }
        let started = std::time::Instant::now();
        let errors_before = self.counters.connection_errors.load(Ordering::Relaxed);
        // Waited in slices: a connection attempt that fails while the pool has
        // room ends the wait at once (a dead node costs its connect timeout,
        // not the pool's timeout); a full pool is waited out as before.
        let conn = loop {
            let left = timeout.saturating_sub(started.elapsed());
            match self.inner.get_timeout(left.min(FAIL_FAST_SLICE)) {
                Ok(conn) => break conn,
                Err(e) if left <= FAIL_FAST_SLICE => return Err(self.timed_out(e, timeout)),
                Err(e) => {
                    let failed =
                        self.counters.connection_errors.load(Ordering::Relaxed) > errors_before;
                    if failed && self.inner.state().connections < self.inner.max_size() {
                        return Err(self.timed_out(e, timeout));
                    }
                }
            }
        };
        self.counters.checkouts.fetch_add(1, Ordering::Relaxed);
        self.counters.record_wait(started.elapsed());
        Ok(conn)
    }

    /// A checkout that got no connection: counted once, however many slices it waited.
    fn timed_out(&self, e: r2d2::Error, timeout: Duration) -> anyhow::Error {
        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        self.classify(e, timeout)
    }

    fn classify(&self, e: r2d2::Error, timeout: Duration) -> anyhow::Error {
        let state = self.inner.state();
        let max = self.inner.max_size();
        let in_use = state.connections.saturating_sub(state.idle_connections);
        let waited = humantime::format_duration(timeout);
        if state.connections >= max && state.idle_connections == 0 {
            anyhow!("pool exhausted: no free connection within {waited} ({in_use} of {max} in use)")
        } else {
            let reason = self.counters.last_error().unwrap_or_else(|| e.to_string());
            anyhow!("cannot connect to {}: {reason}", self.conn.target())
        }
    }

    /// The underlying r2d2 pool, for its settings (min_idle, test_on_check_out, ...).
    pub fn r2d2(&self) -> &r2d2::Pool<Manager> {
        &self.inner
    }

    pub fn state(&self) -> r2d2::State {
        self.inner.state()
    }

    pub fn max_size(&self) -> u32 {
        self.inner.max_size()
    }

    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    pub fn conn_info(&self) -> &ConnInfo {
        &self.conn
    }

    /// `host:port` of the host the pool's first connection reached: with a
    /// multi-host URL, the one that answered (and fit target_session_attrs).
    pub fn reached(&self) -> &str {
        &self.reached
    }

    pub fn checkout_stats(&self) -> CheckoutStats {
        self.counters.snapshot()
    }
}
