//! The library side of pool-status: one call that returns what a pool looks
//! like from inside (r2d2 state and checkout counters) and what the server
//! sees (pg_stat_activity), so the dashboard's services can log the figures
//! the way the V8.5 report's monitoring snippet did.
//!
//! The status query must never make things worse: it borrows an idle pooled
//! connection when there is one and otherwise opens a separate one, so it
//! neither waits on nor grows an exhausted pool, and it takes its pool figures
//! before it touches the pool at all.

use crate::config::{Config, HumanDuration};
use crate::db::{self, describe_pg_error, CheckoutStats, Pool};
use anyhow::{anyhow, Result};
use postgres::Client;
use serde::Serialize;
use std::time::Duration;

/// The pool's settings and its live state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolFigures {
    /// Connections kept open (r2d2 min_idle).
    pub size: u32,
    pub max_overflow: u32,
    /// size + max_overflow: the most connections the pool opens.
    pub max_size: u32,
    pub pre_ping: bool,
    pub recycle: HumanDuration,
    pub timeout: HumanDuration,
    /// Connections open now.
    pub connections: u32,
    /// Of those, waiting in the pool.
    pub idle: u32,
    /// Of those, held by callers.
    pub checked_out: u32,
    /// checked_out / max_size, in percent.
    pub usage_percent: f64,
    /// Checkouts so far; waits are those that found no idle connection,
    /// timeouts those that gave up after `timeout`. Flat in JSON.
    #[serde(flatten)]
    pub checkout: CheckoutStats,
}

impl PoolFigures {
    /// The figures of `pool` as they are now.
    pub fn of(pool: &Pool) -> PoolFigures {
        let settings = pool.settings();
        let state = pool.state();
        let max_size = pool.max_size();
        let checked_out = state.connections.saturating_sub(state.idle_connections);
        PoolFigures {
            size: settings.size,
            max_overflow: settings.max_overflow,
            max_size,
            pre_ping: settings.pre_ping,
            recycle: settings.recycle,
            timeout: settings.timeout,
            connections: state.connections,
            idle: state.idle_connections,
            checked_out,
            usage_percent: percent(checked_out as f64, max_size as f64),
            checkout: pool.checkout_stats(),
        }
    }
}

/// The server's view: slots, backends, and this database's connections.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerFigures {
    /// The database the pool connects to.
    pub database: String,
    pub max_connections: i32,
    /// superuser_reserved_connections plus reserved_connections (PostgreSQL 16+).
    pub reserved: i32,
    /// Client backends in use, all databases.
    pub backends: i64,
    /// backends / (max_connections - reserved): the share of the slots ordinary roles may use.
    pub usage_percent: f64,
    /// This database's client connections by application_name and state.
    pub by_application: Vec<ApplicationGroup>,
    /// Sessions idle in transaction longer than `session_age_seconds`: the leaks.
    pub idle_in_transaction: Vec<IdleSession>,
    pub session_age_seconds: f64,
    /// Sessions of other roles whose state the server hides (no pg_read_all_stats):
    /// counted, grouped under state "(hidden)", never listed as leaks.
    pub hidden_sessions: i64,
    /// The role, when it sees only its own sessions' state (neither superuser
    /// nor a member of pg_read_all_stats).
    pub restricted_role: Option<String>,
    /// The backend that ran the status query, and how it is counted.
    pub own_backend: OwnBackend,
}

/// One application_name and state of this database's connections.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApplicationGroup {
    /// application_name as the server has it ("" when the client set none).
    pub application: String,
    /// active, idle, idle in transaction, idle in transaction (aborted), (hidden), ...
    pub state: String,
    pub connections: i64,
    /// The longest time a connection of the group has been in this state.
    pub oldest_seconds: f64,
}

/// A session idle in transaction past the threshold: it holds a connection,
/// its locks and the vacuum horizon until someone ends it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdleSession {
    pub pid: i32,
    pub application: String,
    pub user: String,
    /// The client's address, or "local" for a Unix socket.
    pub client_addr: String,
    /// idle in transaction, or idle in transaction (aborted).
    pub state: String,
    /// How long it has been idle.
    pub idle_seconds: f64,
    /// How long its transaction has been open (null when the server does not say,
    /// as for an aborted one).
    pub transaction_seconds: Option<f64>,
    /// The start of its last statement, whitespace collapsed.
    pub query: String,
}

/// How the status query's own connection shows in the server figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OwnBackend {
    pub pid: i32,
    /// "pool": an idle connection of the pool, counted as the idle connection it
    /// otherwise is; "direct": a separate connection, left out.
    pub via: &'static str,
    /// Whether its row counts in the server figures.
    pub counted: bool,
}

/// What `pool_status` returns.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolStatus {
    /// The server's clock when the figures were read (UTC, RFC 3339).
    pub taken_at: String,
    pub pool: PoolFigures,
    pub server: ServerFigures,
}

impl PoolStatus {
    /// Connections of `application` in the pool's database, in any state.
    pub fn connections_of(&self, application: &str) -> i64 {
        self.server.connections_of(application)
    }
}

impl ServerFigures {
    /// Connections of `application` in this database, in any state.
    pub fn connections_of(&self, application: &str) -> i64 {
        self.by_application
            .iter()
            .filter(|g| g.application == application)
            .map(|g| g.connections)
            .sum()
    }
}

/// How `pool_status_with` reads the server.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusOptions {
    /// List sessions idle in transaction longer than this.
    pub session_age: Duration,
    /// Leave the status query's own connection out even when it is a pooled one.
    /// A service monitoring its own pool wants it counted (as idle); the o2o-db
    /// CLI sets this, because its pool is not the application's.
    pub exclude_own_connection: bool,
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
        return read_server(&mut conn, "pool", options);
    }
    let mut client = db::connect(pool.conn_info())?;
    read_server(&mut client, "direct", options)
}

const SETTINGS_SQL: &str = "\
SELECT current_setting('max_connections')::int4,
       current_setting('superuser_reserved_connections')::int4,
       coalesce(current_setting('reserved_connections', true)::int4, 0),
       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
       current_database()::text,
       pg_backend_pid(),
       CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                 OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')
            THEN NULL ELSE current_user::text END";

// Without pg_read_all_stats, other roles' rows show no backend_type and no
// state; those with a database are client sessions as far as we can tell.
const CLIENT_BACKEND: &str =
    "(backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL))";

// $1: pids left out.
fn backends_sql() -> String {
    format!("SELECT count(*) FROM pg_stat_activity WHERE {CLIENT_BACKEND} AND pid <> ALL($1)")
}

// $1: pids left out. $2: the own pooled connection, shown as the idle one it is (0: none).
fn groups_sql() -> String {
    format!(
        "SELECT coalesce(application_name, ''),
                CASE WHEN pid = $2 THEN 'idle' ELSE coalesce(state, '(hidden)') END AS st,
                count(*),
                coalesce(max(CASE WHEN pid = $2 THEN 0
                             ELSE greatest(0, extract(epoch FROM clock_timestamp() - state_change)) END), 0)::float8
           FROM pg_stat_activity
          WHERE datname = current_database() AND {CLIENT_BACKEND} AND pid <> ALL($1)
          GROUP BY 1, 2
          ORDER BY 1, 2"
    )
}

const IDLE_IN_TRANSACTION_SQL: &str = "\
SELECT pid,
       coalesce(application_name, ''),
       coalesce(usename::text, ''),
       coalesce(host(client_addr), 'local'),
       state,
       greatest(0, extract(epoch FROM clock_timestamp() - state_change))::float8 AS idle,
       greatest(0, extract(epoch FROM clock_timestamp() - xact_start))::float8,
       left(coalesce(query, ''), 1000)
  FROM pg_stat_activity
 WHERE datname = current_database()
   AND state IN ('idle in transaction', 'idle in transaction (aborted)')
   AND clock_timestamp() - state_change > make_interval(secs => $2)
   AND pid <> ALL($1)
 ORDER BY idle DESC, pid";

/// How much of a leaked session's last statement is kept.
pub const QUERY_CHARS: usize = 120;

fn read_server(
    client: &mut Client,
    via: &'static str,
    options: &StatusOptions,
) -> Result<(String, ServerFigures)> {
    let fail = |what: &str, e: postgres::Error| {
        anyhow!("reading {what} from the server: {}", describe_pg_error(&e))
    };
    // One transaction: pg_stat_activity is read once and every query sees that snapshot.
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| fail("pg_stat_activity", e))?;
    let row = tx
        .query_one(SETTINGS_SQL, &[])
        .map_err(|e| fail("max_connections", e))?;
    let max_connections: i32 = row.get(0);
    let reserved: i32 = row.get::<_, i32>(1) + row.get::<_, i32>(2);
    let taken_at: String = row.get(3);
    let database: String = row.get(4);
    let own_pid: i32 = row.get(5);
    let restricted_role: Option<String> = row.get(6);

    let counted = via == "pool" && !options.exclude_own_connection;
    let excluded: Vec<i32> = if counted { Vec::new() } else { vec![own_pid] };
    let shown_idle: i32 = if counted { own_pid } else { 0 };

    let row = tx
        .query_one(backends_sql().as_str(), &[&excluded])
        .map_err(|e| fail("backends", e))?;
    let backends: i64 = row.get(0);

    let by_application = tx
        .query(groups_sql().as_str(), &[&excluded, &shown_idle])
        .map_err(|e| fail("connections by application", e))?
        .iter()
        .map(|r| ApplicationGroup {
            application: r.get(0),
            state: r.get(1),
            connections: r.get(2),
            oldest_seconds: r.get(3),
        })
        .collect::<Vec<_>>();
    let hidden_sessions = by_application
        .iter()
        .filter(|g| g.state == "(hidden)")
        .map(|g| g.connections)
        .sum();

    let age = options.session_age.as_secs_f64();
    let idle_in_transaction = tx
        .query(IDLE_IN_TRANSACTION_SQL, &[&excluded, &age])
        .map_err(|e| fail("sessions idle in transaction", e))?
        .iter()
        .map(|r| IdleSession {
            pid: r.get(0),
            application: r.get(1),
            user: r.get(2),
            client_addr: r.get(3),
            state: r.get(4),
            idle_seconds: r.get(5),
            transaction_seconds: r.get(6),
            query: query_start(r.get(7), QUERY_CHARS),
        })
        .collect();
    tx.commit().map_err(|e| fail("pg_stat_activity", e))?;

    let open_to_ordinary_roles = (max_connections - reserved).max(1);
    let server = ServerFigures {
        database,
        max_connections,
        reserved,
        backends,
        usage_percent: percent(backends as f64, open_to_ordinary_roles as f64),
        by_application,
        idle_in_transaction,
        session_age_seconds: age,
        hidden_sessions,
        restricted_role,
        own_backend: OwnBackend {
            pid: own_pid,
            via,
            counted,
        },
    };
    Ok((taken_at, server))
}

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
