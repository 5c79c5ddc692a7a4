//! One index run per table at a time: a session-level advisory lock.
//!
//! A cron job and a deploy may both start create-indexes (or a drop-indexes);
//! two runs racing on the same indexes would fail each other's builds or drop
//! what the other just built. The lock lives on the run's control session, so
//! it goes away with the process however it ends. The key is derived from the
//! tool and the table, so runs on other tables (or databases) do not collide.

use crate::catalog::activity::Backend;
use crate::db::PgContext;
use crate::stop::Stop;
use anyhow::{bail, Result};
use postgres::Client;
use std::time::Duration;

/// How often --wait asks again.
const POLL: Duration = Duration::from_millis(500);

/// The advisory lock key of index runs on `schema.table` (FNV-1a, stable across versions).
pub fn key(schema: &str, table: &str) -> i64 {
    let text = format!("o2o-db create-indexes\0{schema}.{table}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Who holds the lock: the session and since when it is connected.
#[derive(Debug, Clone)]
pub struct Holder {
    pub backend: Backend,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.backend;
        let app = if b.application.is_empty() {
            "no application_name"
        } else {
            &b.application
        };
        write!(
            f,
            "pid {} ({app}, connected since {}, {} ago)",
            b.pid,
            self.since,
            humantime::format_duration(Duration::from_secs(b.age_secs as u64))
        )
    }
}

/// The session holding `key`, if any.
pub fn holder(client: &mut Client, key: i64) -> Result<Option<Holder>> {
    let row = client.query_opt(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, 'unknown'), \
                coalesce(extract(epoch FROM now() - a.backend_start), 0)::float8, \
                a.backend_xmin::text, left(coalesce(a.query, ''), 200), \
                to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid = (($1::int8 >> 32) & 4294967295)::oid \
           AND l.objid = ($1::int8 & 4294967295)::oid AND l.objsubid = 1 \
         LIMIT 1",
        &[&key],
    )?;
    Ok(row.map(|r| Holder {
        backend: Backend {
            pid: r.get(0),
            application: r.get(1),
            state: r.get(2),
            age_secs: r.get(3),
            xmin: r.get(4),
            query: r.get(5),
        },
        since: r.get(6),
    }))
}

/// How taking the lock ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquired {
    Yes,
    /// Ctrl-C while waiting for another run.
    Interrupted,
}

/// Takes the lock on the control session. Held by someone else: an error naming
/// the holder (exit 2), or with `wait` polls until it is free or Ctrl-C.
pub fn acquire(
    client: &mut Client,
    key: i64,
    table: &str,
    wait: bool,
    stop: &Stop,
    mut on_wait: impl FnMut(&Holder),
) -> Result<Acquired> {
    let mut told = false;
    loop {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .pg_context("cannot take the run lock")?
            .get(0);
        if got {
            return Ok(Acquired::Yes);
        }
        let who = holder(client, key)?;
        if !wait {
            let who = who.map_or_else(
                || "another session (it has just released it)".to_string(),
                |h| h.to_string(),
            );
            bail!(
                "another index run on {table} is in progress: its lock is held by {who}; let it finish, or pass --wait to wait for it"
            );
        }
        if let (Some(h), false) = (&who, told) {
            on_wait(h);
            told = true;
        }
        if stop.sleep(POLL) {
            return Ok(Acquired::Interrupted);
        }
    }
}

/// Takes the lock of index runs on `(schema, table)`, telling a terminal user
/// whom --wait is waiting for.
pub fn take(
    client: &mut Client,
    (schema, table): (&str, &str),
    wait: bool,
    stop: &Stop,
) -> Result<Acquired> {
    let name = format!("{schema}.{table}");
    acquire(client, key(schema, table), &name, wait, stop, |h| {
        crate::report::notice(&format!("waiting for the index run on {name} held by {h}"))
    })
}

/// Releases the lock (closing the session would too).
pub fn release(client: &mut Client, key: i64) {
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_per_table() {
        // Pinned: runs of different o2o-db versions must still exclude each other.
        assert_eq!(key("public", "orders"), 7825371094622256539);
        assert_ne!(key("public", "orders"), key("archive", "orders"));
        assert_ne!(key("public", "orders"), key("public", "orders2"));
    }
}
