//! Whether o2o-db's connections are server sessions of their own, or share
//! server connections with other clients from one transaction to the next
//! (pgbouncer's pool_mode = transaction or statement). Through such a pooler a
//! named prepared statement, an advisory lock or a SET outlives the
//! transaction on a server connection that another client gets next: the
//! benchmark would time (or fail on) another process's statement, and
//! create-indexes' run lock and timeouts would leak into other sessions.
//!
//! Nothing in the protocol says a pooler is there, so `auto` asks the server
//! the one question that tells: two connections, and the backend pid behind
//! each transaction. A client whose pid changes, or two clients served by
//! one backend, can only be pooling per transaction; a direct connection and
//! a session-mode pooler keep one backend per client.

use super::connect::connect;
use super::error::PgContext;
use crate::conninfo::ConnInfo;
use anyhow::{bail, Result};
use postgres::{Client, SimpleQueryMessage};
use serde::{Deserialize, Serialize};

/// `[database] pooling`: how the server connections behind ours are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Find out at the start of each command that cares (two connections).
    #[default]
    Auto,
    /// A server session per connection: PostgreSQL itself, or a session-mode pooler.
    Session,
    /// Server connections change hands between transactions (pgbouncer
    /// transaction or statement mode): no named statements, no session state.
    Transaction,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Auto => "auto",
            Pooling::Session => "session",
            Pooling::Transaction => "transaction",
        }
    }

    /// The setting as it applies to `conn`: `auto` is found out, the others are taken as said.
    pub fn resolve(self, conn: &ConnInfo) -> Result<Pooling> {
        Ok(self.resolve_seen(conn)?.0)
    }

    /// `resolve`, with the backend pids `auto` asked about (none when said):
    /// a report that reads pg_stat_activity next leaves them out, as they may
    /// not have exited yet.
    pub fn resolve_seen(self, conn: &ConnInfo) -> Result<(Pooling, Vec<i32>)> {
        match self {
            Pooling::Auto => detect(&mut connect(conn)?, conn),
            said => Ok((said, Vec::new())),
        }
    }

    /// `resolve` with `open`, a session already open to `conn` and nothing set
    /// on it yet, as the first of the two connections (one fewer to open).
    pub fn resolve_on(self, open: &mut Client, conn: &ConnInfo) -> Result<Pooling> {
        match self {
            Pooling::Auto => Ok(detect(open, conn)?.0),
            said => Ok(said),
        }
    }
}

/// How many times each of the two connections asks for its backend.
const ROUNDS: usize = 3;

/// Two connections ask in turn for the backend behind them, outside any
/// transaction (so neither waits for the other, even with one server
/// connection): a pid that changes under one client, or one pid serving both,
/// is pooling per transaction.
fn detect(a: &mut Client, conn: &ConnInfo) -> Result<(Pooling, Vec<i32>)> {
    let mut b = connect(conn)?;
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        seen_a.push(backend_pid(a)?);
        seen_b.push(backend_pid(&mut b)?);
    }
    let pooling = if per_transaction(&seen_a, &seen_b) {
        Pooling::Transaction
    } else {
        Pooling::Session
    };
    let mut seen: Vec<i32> = seen_a
        .iter()
        .chain(&seen_b)
        .map(|&pid| pid as i32)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    Ok((pooling, seen))
}

/// Whether two clients' backend pids, asked in turn, show pooling per transaction.
fn per_transaction(a: &[i64], b: &[i64]) -> bool {
    let moved = |pids: &[i64]| pids.windows(2).any(|w| w[0] != w[1]);
    moved(a) || moved(b) || a.iter().any(|pid| b.contains(pid))
}

/// The server backend behind this connection now (simple protocol: no
/// statement is left behind on a pooled server connection).
fn backend_pid(client: &mut Client) -> Result<i64> {
    let messages = client
        .simple_query("SELECT pg_backend_pid()")
        .pg_context("asking for the server's backend pid")?;
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            if let Some(pid) = row.get(0).and_then(|v| v.parse().ok()) {
                return Ok(pid);
            }
        }
    }
    bail!("the server did not say its backend pid")
}

/// Err when `command` needs a session of its own and `conn` pools per
/// transaction; `open` is a session to it with nothing set yet.
pub fn require_session(
    open: &mut Client,
    conn: &ConnInfo,
    setting: Pooling,
    command: &str,
) -> Result<()> {
    if setting.resolve_on(open, conn)? == Pooling::Transaction {
        bail!(
            "{} pools server connections per transaction (pgbouncer pool_mode = transaction, or \
             [database] pooling = \"transaction\"): {command} needs a session of its own (a run lock, \
             lock and statement timeouts), which would outlive the transaction on a server connection \
             other clients get next; point --database-url at PostgreSQL itself or at a session-mode pool. \
             Nothing was done",
            conn.target()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::per_transaction;

    #[test]
    fn shared_or_moving_backends_mean_pooling_per_transaction() {
        // Direct, or a session-mode pooler: one backend each, for good.
        assert!(!per_transaction(&[10, 10, 10], &[11, 11, 11]));
        // pgbouncer handing its most recent server to whoever asks next.
        assert!(per_transaction(&[10, 10, 10], &[10, 10, 10]));
        // Round robin over the pool's servers.
        assert!(per_transaction(&[10, 11, 10], &[12, 13, 12]));
    }
}
