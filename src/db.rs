// The connection pool and the scoped sessions every subcommand and the
// dashboard's own services use.
//
// It mirrors the V8.5 report's SQLAlchemy setup (pool_size, max_overflow,
// pre_ping, recycle, timeout) on r2d2, counts checkout waits and timeouts so
// pool-status and benchmark can report them, and turns r2d2's one generic
// timeout into the two errors a DBA needs told apart: the pool is exhausted,
// or the server cannot be reached.

use crate::config::{Config, PoolSettings};
use crate::conninfo::{ConnInfo, SslMode};
use anyhow::{anyhow, Context, Result};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::{Client, Transaction};
use postgres_openssl::MakeTlsConnector;
use r2d2::{HandleError, HandleEvent};
use r2d2_postgres::PostgresConnectionManager;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Manager = PostgresConnectionManager<MakeTlsConnector>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

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
struct Events(Arc<PoolCounters>);

impl HandleEvent for Events {
    fn handle_timeout(&self, _event: r2d2::event::TimeoutEvent) {
        self.0.timeouts.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Errors(Arc<PoolCounters>);

impl HandleError<postgres::Error> for Errors {
    fn handle_error(&self, error: postgres::Error) {
        self.0.connection_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.0.last_error.lock() {
            *last = Some(describe_pg_error(&error));
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
        drop(connect(conn)?);
        let counters = Arc::new(PoolCounters::default());
        let manager = PostgresConnectionManager::new(conn.to_pg_config(), tls_connector(conn)?);
        let builder = r2d2::Pool::builder()
            .min_idle(Some(match warm {
                Warm::Full => settings.size,
                Warm::Lazy => 0,
            }))
            .max_size(settings.max_size().max(1))
            .test_on_check_out(settings.pre_ping)
            .max_lifetime(Some(settings.recycle.0))
            .connection_timeout(settings.timeout.0)
            .event_handler(Box::new(Events(counters.clone())))
            .error_handler(Box::new(Errors(counters.clone())));
        let inner = builder.build_unchecked(manager);
        let pool = Pool {
            inner,
            counters,
            settings: settings.clone(),
            conn: conn.clone(),
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
        let conn = self
            .inner
            .get_timeout(timeout)
            .map_err(|e| self.classify(e, timeout))?;
        self.counters.checkouts.fetch_add(1, Ordering::Relaxed);
        self.counters.record_wait(started.elapsed());
        Ok(conn)
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

    pub fn checkout_stats(&self) -> CheckoutStats {
        self.counters.snapshot()
    }
}

/// Opens one connection outside any pool (index builds, long maintenance work).
pub fn connect(conn: &ConnInfo) -> Result<Client> {
    let config = conn.to_pg_config();
    let tls = tls_connector(conn)?;
    let described = |e: postgres::Error| {
        anyhow!(
            "cannot connect to {}: {}{}",
            conn.target(),
            describe_pg_error(&e),
            connect_hint(&e)
        )
    };
    let Some(per_host) = conn.connect_timeout else {
        return config.connect(tls).map_err(described);
    };
    // Like libpq, the timeout is per host tried.
    let limit = per_host * (conn.hosts.len().max(1) as u32);
    // tokio-postgres's connect_timeout bounds only the socket connect, libpq's
    // the whole handshake: a port that accepts and never answers would hang
    // here forever. The attempt runs on a thread of its own and is abandoned
    // (blocked until the process exits) once the limit has passed.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("o2o-db-connect".into())
        .spawn(move || {
            let _ = sender.send(config.connect(tls));
        })
        .context("cannot start a thread to connect")?;
    match receiver.recv_timeout(limit) {
        Ok(result) => result.map_err(described),
        Err(_) => Err(anyhow!(
            "cannot connect to {}: no answer within the connect timeout ({}); check that host and port are PostgreSQL's",
            conn.target(),
            humantime::format_duration(limit)
        )),
    }
}

/// What to check, for the connection failures that are not the server's own words.
fn connect_hint(e: &postgres::Error) -> &'static str {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "; is PostgreSQL running and listening on that host and port?"
                }
                std::io::ErrorKind::NotFound => {
                    "; no server socket there: is PostgreSQL running, with that socket directory and port?"
                }
                _ => "",
            };
        }
        source = cause.source();
    }
    ""
}

/// The TLS connector for libpq's sslmode: require checks nothing (unless a root
/// certificate is given, as libpq does), verify-ca checks the chain, verify-full
/// also the host name.
pub fn tls_connector(conn: &ConnInfo) -> Result<MakeTlsConnector> {
    let mode = conn.sslmode.unwrap_or_default();
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .context("cannot initialise OpenSSL for TLS connections")?;
    let verify = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => conn.sslrootcert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    if let Some(root) = &conn.sslrootcert {
        builder.set_ca_file(root).with_context(|| {
            format!(
                "cannot load sslrootcert {}: is it a PEM file?",
                root.display()
            )
        })?;
    } else if verify {
        let default = std::env::var("HOME")
            .map(|h| std::path::Path::new(&h).join(".postgresql/root.crt"))
            .ok()
            .filter(|p| p.exists());
        match default {
            Some(p) => builder.set_ca_file(&p).with_context(|| {
                format!("cannot load root certificate {}", p.display())
            })?,
            None => anyhow::bail!(
                "sslmode={} needs a root certificate: set sslrootcert=/path/to/root.crt in the URL or PGSSLROOTCERT",
                mode.as_str()
            ),
        }
    }
    if let Some(cert) = &conn.sslcert {
        builder
            .set_certificate_chain_file(cert)
            .with_context(|| format!("cannot load sslcert {}", cert.display()))?;
    }
    if let Some(key) = &conn.sslkey {
        builder
            .set_private_key_file(key, SslFiletype::PEM)
            .with_context(|| format!("cannot load sslkey {}", key.display()))?;
    }
    builder.set_verify(if verify {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    let mut connector = MakeTlsConnector::new(builder.build());
    let check_host = mode == SslMode::VerifyFull;
    connector.set_callback(move |cfg, _domain| {
        cfg.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}

/// The server's message for a postgres error: "FATAL: database \"x\" does not
/// exist" rather than the crate's bare "db error".
pub fn describe_pg_error(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" (DETAIL: {detail})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// Runs `f` in a transaction on a pooled connection: commits when `f` returns
/// Ok, rolls back when it returns Err or panics (the panic then continues).
/// The connection always goes back to the pool; a broken one is discarded.
///
/// ```no_run
/// # fn demo(pool: &o2o_db::db::Pool) -> anyhow::Result<()> {
/// let n: i64 = o2o_db::db::with_session(pool, |tx| {
///     tx.execute("UPDATE orders SET scene = $1 WHERE order_id = $2", &[&"堂食", &1i64])?;
///     Ok(tx.query_one("SELECT count(*) FROM orders", &[])?.get(0))
/// })?;
/// # Ok(()) }
/// ```
pub fn with_session<T>(
    pool: &Pool,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut conn = pool.get()?;
    let mut tx = conn
        .transaction()
        .map_err(|e| anyhow!("cannot begin transaction: {}", describe_pg_error(&e)))?;
    let value = f(&mut tx)?; // Err: `tx` drops here and rolls back
    tx.commit()
        .map_err(|e| anyhow!("commit failed: {}", describe_pg_error(&e)))?;
    Ok(value)
}

/// Like `with_session`, in a READ ONLY transaction: the server itself refuses
/// writes, whatever the closure tries.
pub fn with_readonly_session<T>(
    pool: &Pool,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut conn = pool.get()?;
    let mut tx = conn
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| {
            anyhow!(
                "cannot begin read-only transaction: {}",
                describe_pg_error(&e)
            )
        })?;
    let value = f(&mut tx)?;
    tx.commit().map_err(|e| {
        anyhow!(
            "ending read-only transaction failed: {}",
            describe_pg_error(&e)
        )
    })?;
    Ok(value)
}
