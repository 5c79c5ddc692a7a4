//! pgbouncer's admin console (the `pgbouncer` database), read with the simple
//! query protocol it speaks: its pools' clients waiting for a server
//! connection and the longest wait, its recent average wait and query time,
//! the pool sizes, and which server backends are its own, none of which the
//! server's own views can tell.

use super::connect::connect;
use super::error::PgContext;
use crate::conninfo::ConnInfo;
use anyhow::{bail, Context, Result};
use postgres::{Client, SimpleQueryMessage, SimpleQueryRow};
use serde::Serialize;

/// The database name of the admin console; pgbouncer's own pseudo-pool has it too.
pub const ADMIN_DATABASE: &str = "pgbouncer";

/// One pool as SHOW POOLS has it, with its size from SHOW DATABASES.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerPool {
    /// The database name clients connect to (pgbouncer's alias).
    pub database: String,
    /// The server database the alias points at (SHOW DATABASES).
    pub server_database: String,
    pub user: String,
    /// Clients linked to a server connection or idle between transactions.
    pub clients_active: i64,
    /// Clients that sent a query and wait for a server connection.
    pub clients_waiting: i64,
    pub servers_active: i64,
    pub servers_idle: i64,
    /// Server connections back from a client, not yet checked (server_check_query).
    pub servers_used: i64,
    /// How long the oldest waiting client has waited.
    pub max_wait_seconds: f64,
    pub pool_mode: String,
    /// The most server connections the pool opens: the database's pool_size,
    /// which is default_pool_size unless [databases] sets it.
    pub pool_size: i64,
}

impl BouncerPool {
    /// Every server connection it may open is busy: more clients queue.
    pub fn is_full(&self) -> bool {
        self.servers_active >= self.pool_size
    }
}

/// One database's figures from SHOW STATS: the averages are over the last
/// stats_period (60 s by default), the totals since pgbouncer started.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerStats {
    pub database: String,
    pub transactions_total: i64,
    pub queries_total: i64,
    /// Time clients spent waiting for a server connection.
    pub wait_seconds_total: f64,
    /// The average wait of the clients that got a server connection lately.
    pub avg_wait_seconds: f64,
    pub avg_query_seconds: f64,
    pub avg_transaction_seconds: f64,
}

/// pgbouncer's limits that bound the pools (SHOW CONFIG).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerSettings {
    pub default_pool_size: i64,
    pub reserve_pool_size: i64,
    pub max_client_conn: i64,
    /// 0: no limit per database.
    pub max_db_connections: i64,
}

/// Client connections of one application to one pgbouncer database (SHOW CLIENTS).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerClients {
    pub database: String,
    pub application: String,
    pub connections: i64,
}

/// What the admin console says, read in one go.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerStatus {
    /// host:port of the admin console.
    pub console: String,
    /// SHOW VERSION, e.g. "PgBouncer 1.18.0".
    pub version: String,
    pub settings: BouncerSettings,
    /// Every pool but the admin console's own.
    pub pools: Vec<BouncerPool>,
    pub stats: Vec<BouncerStats>,
    /// Client connections by database and application_name (the console's own left out).
    pub clients: Vec<BouncerClients>,
    /// The server backends' pids (SHOW SERVERS remote_pid): pgbouncer's own
    /// connections to PostgreSQL, whatever application_name they carry.
    pub server_pids: Vec<i32>,
}

impl BouncerStatus {
    /// Clients of `application` in the pools pointing at `server_database`.
    pub fn clients_of(&self, application: &str, server_database: &str) -> i64 {
        let aliases: Vec<&str> = self
            .pools
            .iter()
            .filter(|p| p.server_database == server_database)
            .map(|p| p.database.as_str())
            .collect();
        self.clients
            .iter()
            .filter(|c| c.application == application && aliases.contains(&c.database.as_str()))
            .map(|c| c.connections)
            .sum()
    }

    pub fn stats_of(&self, database: &str) -> Option<&BouncerStats> {
        self.stats.iter().find(|s| s.database == database)
    }
}

/// Everything pool-status shows, from the admin console at `conn` (dbname
/// pgbouncer, as an admin_users or stats_users role).
pub fn status(conn: &ConnInfo) -> Result<BouncerStatus> {
    let mut client = console(conn)?;
    let version = show(&mut client, "VERSION")?
        .first()
        .map(|r| text(r, "version"))
        .unwrap_or_default();
    let config = show(&mut client, "CONFIG")?;
    let setting = |key: &str| -> i64 {
        config
            .iter()
            .find(|r| text(r, "key") == key)
            .map_or(0, |r| number(r, "value"))
    };
    let settings = BouncerSettings {
        default_pool_size: setting("default_pool_size"),
        reserve_pool_size: setting("reserve_pool_size"),
        max_client_conn: setting("max_client_conn"),
        max_db_connections: setting("max_db_connections"),
    };
    let pools = pools(&mut client)?;
    let stats = show(&mut client, "STATS")?
        .iter()
        .filter(|r| text(r, "database") != ADMIN_DATABASE)
        .map(|r| BouncerStats {
            database: text(r, "database"),
            transactions_total: number(r, "total_xact_count"),
            queries_total: number(r, "total_query_count"),
            wait_seconds_total: micros(r, "total_wait_time"),
            avg_wait_seconds: micros(r, "avg_wait_time"),
            avg_query_seconds: micros(r, "avg_query_time"),
            avg_transaction_seconds: micros(r, "avg_xact_time"),
        })
        .collect();
    let mut clients: Vec<BouncerClients> = Vec::new();
    for r in show(&mut client, "CLIENTS")? {
        let (database, application) = (text(&r, "database"), text(&r, "application_name"));
        if database == ADMIN_DATABASE {
            continue;
        }
        match clients
            .iter_mut()
            .find(|c| c.database == database && c.application == application)
        {
            Some(c) => c.connections += 1,
            None => clients.push(BouncerClients {
                database,
                application,
                connections: 1,
            }),
        }
    }
    let server_pids = show(&mut client, "SERVERS")?
        .iter()
        .map(|r| number(r, "remote_pid") as i32)
        .filter(|&pid| pid > 0)
        .collect();
    Ok(BouncerStatus {
        console: conn.host_ports(),
        version,
        settings,
        pools,
        stats,
        clients,
        server_pids,
    })
}

/// Every pool but the admin console's own (SHOW POOLS), each with its size
/// and server database (SHOW DATABASES); cheap enough to sample under load.
pub fn pools(client: &mut Client) -> Result<Vec<BouncerPool>> {
    let databases = show(client, "DATABASES")?;
    Ok(show(client, "POOLS")?
        .iter()
        .filter(|r| text(r, "database") != ADMIN_DATABASE)
        .map(|r| {
            let database = text(r, "database");
            let entry = databases.iter().find(|d| text(d, "name") == database);
            BouncerPool {
                server_database: entry.map_or_else(|| database.clone(), |d| text(d, "database")),
                pool_size: entry.map_or(0, |d| number(d, "pool_size")),
                database,
                user: text(r, "user"),
                clients_active: number(r, "cl_active"),
                clients_waiting: number(r, "cl_waiting"),
                servers_active: number(r, "sv_active"),
                servers_idle: number(r, "sv_idle"),
                servers_used: number(r, "sv_used"),
                max_wait_seconds: seconds(r, "maxwait") + micros(r, "maxwait_us"),
                pool_mode: text(r, "pool_mode"),
            }
        })
        .collect())
}

/// A connection to the admin console, for repeated reads.
pub fn console(conn: &ConnInfo) -> Result<Client> {
    connect(conn)
}

/// The console's version ("PgBouncer 1.18.0") when `conn` is pgbouncer's
/// admin console; None when it answers as a database (PostgreSQL refuses
/// SHOW VERSION).
pub fn console_version(conn: &ConnInfo) -> Result<Option<String>> {
    let mut client = connect(conn)?;
    let Ok(rows) = show(&mut client, "VERSION") else {
        return Ok(None);
    };
    let version = rows.first().map(|r| text(r, "version")).unwrap_or_default();
    Ok(version.starts_with("PgBouncer").then_some(version))
}

/// Err with what to do instead when `conn` is pgbouncer's admin console: a
/// command that reads a real database through it would otherwise die on the
/// console's "invalid command" at its first extended-protocol query.
pub fn refuse_admin_console(conn: &ConnInfo, flag_hint: &str) -> Result<()> {
    if conn.dbname.as_deref() != Some(ADMIN_DATABASE) {
        return Ok(());
    }
    let hint = format!(
        "dbname {ADMIN_DATABASE} is the name of pgbouncer's admin console, which is no database \
         to read: point --database-url at the application's database and pass the console as \
         {flag_hint} URL"
    );
    let Some(version) = console_version(conn).context(hint)? else {
        return Ok(());
    };
    // SHOW DATABASES, not POOLS: a pool exists only once a client has used it.
    let databases: Vec<String> = show(&mut console(conn)?, "DATABASES")?
        .iter()
        .map(|r| text(r, "name"))
        .filter(|name| name != ADMIN_DATABASE)
        .collect();
    let through = match databases.as_slice() {
        [] => String::new(),
        names => format!(" (it pools {})", names.join(", ")),
    };
    bail!(
        "--database-url {} is pgbouncer's admin console ({version}), not a database: point \
         --database-url at the application's database, directly or through pgbouncer{through}, \
         and pass the console as {flag_hint} {}",
        conn.target(),
        conn
    );
}

fn show(client: &mut Client, what: &str) -> Result<Vec<SimpleQueryRow>> {
    let messages = client.simple_query(&format!("SHOW {what}")).pg_context(&format!(
        "reading pgbouncer's SHOW {what} (is this its admin console, dbname pgbouncer, as an admin_users or stats_users role?)"
    ))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .collect())
}

/// A column's text; "" when absent (older pgbouncers lack some columns) or NULL.
fn text(row: &SimpleQueryRow, name: &str) -> String {
    row.try_get(name)
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_string()
}

fn number(row: &SimpleQueryRow, name: &str) -> i64 {
    text(row, name).parse().unwrap_or(0)
}

fn seconds(row: &SimpleQueryRow, name: &str) -> f64 {
    number(row, name) as f64
}

fn micros(row: &SimpleQueryRow, name: &str) -> f64 {
    number(row, name) as f64 / 1e6
}
