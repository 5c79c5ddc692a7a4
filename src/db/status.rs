//! The library side of pool-status: one call that returns what a pool looks
//! like from inside (r2d2 state and checkout counters) and what the server
//! sees (pg_stat_activity), so the dashboard's services can log the figures
//! the way the V8.5 report's monitoring snippet did.
//!
//! The status query must never make things worse: it borrows an idle pooled
//! connection when there is one and otherwise opens a separate one, so it
//! neither waits on nor grows an exhausted pool, and it takes its pool figures
//! before it touches the pool at all.

mod figures;
mod server;

pub use figures::{
    ApplicationGroup, IdleSession, OwnBackend, PoolFigures, PoolStatus, PoolerGroup, ServerFigures,
};

use crate::config::Config;
use crate::db::{self, Pool};
use anyhow::Result;
use std::time::Duration;

/// How `pool_status_with` reads the server.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusOptions {
    /// List sessions idle in transaction longer than this.
    pub session_age: Duration,
    /// Leave the status query's own connection out even when it is a pooled one.
    /// A service monitoring its own pool wants it counted (as idle); the o2o-db
    /// CLI sets this, because its pool is not the application's.
    pub exclude_own_connection: bool,
    /// Backends that are a pooler's server connections (pgbouncer's SHOW
    /// SERVERS remote_pid): shown apart by state, never as an application's,
    /// since they carry whatever application_name their last client set.
    pub pooler_pids: Vec<i32>,
    /// Other backends of the caller's own to leave out, such as those a
    /// pooling check just closed, which may not have exited yet.
    pub left_out_pids: Vec<i32>,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions::from_config(&Config::defaults())
    }
}

impl StatusOptions {
    /// The session age threshold from `[verify] session_age`.
    pub fn from_config(config: &Config) -> StatusOptions {
        StatusOptions {
            session_age: config.verify.session_age,
            exclude_own_connection: false,
            pooler_pids: Vec::new(),
            left_out_pids: Vec::new(),
        }
    }
}

/// The pool's figures and the server's view of its connections, for a
/// service to log. Idle-in-transaction sessions older than 5 minutes are
/// listed; use [`pool_status_with`] for another threshold.
///
/// ```no_run
/// # fn demo(pool: &o2o_db::db::Pool) -> anyhow::Result<()> {
/// let status = o2o_db::pool_status(pool)?;
/// if status.pool.usage_percent > 80.0 {
///     eprintln!("pool usage high: {:.1}%", status.pool.usage_percent);
/// }
/// # Ok(()) }
/// ```
pub fn pool_status(pool: &Pool) -> Result<PoolStatus> {
    pool_status_with(pool, &StatusOptions::default())
}

/// `pool_status` with a chosen threshold, and the own connection left out or not.
pub fn pool_status_with(pool: &Pool, options: &StatusOptions) -> Result<PoolStatus> {
    // Before the probe touches the pool: the figures are what the caller left.
    let figures = PoolFigures::of(pool);
    let (taken_at, server) = server_figures(pool, options)?;
    Ok(PoolStatus {
        taken_at,
        pool: figures,
        server,
    })
}

/// Reads the server's view through an idle pooled connection, or a separate
/// one when none is idle. Returns the server's clock and the figures.
pub fn server_figures(pool: &Pool, options: &StatusOptions) -> Result<(String, ServerFigures)> {
    // try_get neither waits nor opens a connection, and fires no checkout event.
    if let Some(mut conn) = pool.r2d2().try_get() {
        return server::read_server(&mut conn, "pool", options);
    }
    let mut client = db::connect(pool.conn_info())?;
    server::read_server(&mut client, "direct", options)
}

/// How much of a leaked session's last statement is kept.
pub const QUERY_CHARS: usize = 120;
/// `part / whole` in percent, rounded to one decimal; 0 when `whole` is 0.
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        return 0.0;
    }
    (part / whole * 1000.0).round() / 10.0
}

/// The first `max` characters of a statement on one line, with "…" when cut.
pub fn query_start(query: &str, max: usize) -> String {
    let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_start_collapses_whitespace_and_cuts_on_characters() {
        assert_eq!(
            query_start("SELECT *\n  FROM orders\tWHERE x = 1", 100),
            "SELECT * FROM orders WHERE x = 1"
        );
        assert_eq!(query_start("SELECT '美团外卖订单'", 10), "SELECT '美…");
        assert_eq!(query_start("SELECT 1", 8), "SELECT 1");
        assert_eq!(query_start("", 8), "");
    }

    #[test]
    fn percent_rounds_to_one_decimal_and_survives_zero() {
        assert_eq!(percent(3.0, 4.0), 75.0);
        assert_eq!(percent(1.0, 3.0), 33.3);
        assert_eq!(percent(5.0, 0.0), 0.0);
    }
}
