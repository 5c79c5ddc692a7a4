//! pgbouncer's admin console (the `pgbouncer` database), read with the simple
//! query protocol it speaks: its pools' clients waiting for a server
//! connection and the longest wait, which the server's own views cannot see.

use super::connect::connect;
use super::error::PgContext;
use crate::conninfo::ConnInfo;
use anyhow::Result;
use postgres::SimpleQueryMessage;
use serde::Serialize;

/// One pool as SHOW POOLS has it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BouncerPool {
    pub database: String,
    pub user: String,
    pub clients_active: i64,
    /// Clients that sent a query and wait for a server connection.
    pub clients_waiting: i64,
    pub servers_active: i64,
    pub servers_idle: i64,
    /// How long the oldest waiting client has waited.
    pub max_wait_seconds: f64,
    pub pool_mode: String,
}

/// SHOW POOLS on the admin console at `conn` (its dbname should be pgbouncer).
pub fn pools(conn: &ConnInfo) -> Result<Vec<BouncerPool>> {
    let mut client = connect(conn)?;
    let messages = client
        .simple_query("SHOW POOLS")
        .pg_context("reading pgbouncer's SHOW POOLS (is this its admin console, dbname pgbouncer, as an admin_users or stats_users role?)")?;
    let mut pools = Vec::new();
    for message in messages {
        let SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let text = |name: &str| -> String {
            row.try_get(name)
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_string()
        };
        let number = |name: &str| text(name).parse::<i64>().unwrap_or(0);
        pools.push(BouncerPool {
            database: text("database"),
            user: text("user"),
            clients_active: number("cl_active"),
            clients_waiting: number("cl_waiting"),
            servers_active: number("sv_active"),
            servers_idle: number("sv_idle"),
            max_wait_seconds: number("maxwait") as f64 + number("maxwait_us") as f64 / 1e6,
            pool_mode: text("pool_mode"),
        });
    }
    Ok(pools)
}
