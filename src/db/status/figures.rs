//! What pool_status returns, as plain data a service can log or serialize:
//! the pool's settings and live state, and the server's view of its
//! connections (slots, backends, applications, leaked sessions).

use super::percent;
use crate::config::HumanDuration;
use crate::db::{CheckoutStats, Pool};
use serde::Serialize;

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
    /// This database's client connections by application_name and state,
    /// a pooler's server connections left out.
    pub by_application: Vec<ApplicationGroup>,
    /// This database's backends that are a pooler's server connections
    /// (StatusOptions::pooler_pids), by state: the pooler's pool, not any
    /// application's usage.
    pub pooler_servers: Vec<PoolerGroup>,
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

/// One state of a pooler's server connections in this database.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolerGroup {
    /// active, idle, idle in transaction, ...
    pub state: String,
    pub connections: i64,
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
