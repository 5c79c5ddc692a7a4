//! `--wait-replicas`: after the builds, wait until every replica has replayed
//! the primary's WAL past them, then check the managed indexes there, so a
//! deploy does not send dashboard reads to a replica that does not have its
//! indexes yet. The replicas are the config's `[[targets]]` with role
//! replica; without any, the primary's pg_stat_replication is watched instead
//! (replay only: the indexes cannot be read there).

use crate::config::{Config, NodeRole};
use crate::db::{self, PgContext};
use crate::stop::Stop;
use anyhow::Result;
use postgres::types::Type;
use postgres::{Client, SimpleQueryMessage};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How often a replica's replay position is read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// One replica after the wait.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplicaWait {
    /// The target's name, or the standby's application_name from pg_stat_replication.
    pub name: String,
    /// It replayed past the primary's WAL position after the builds.
    pub replayed: bool,
    pub waited_ms: f64,
    /// Managed indexes missing or not valid there (checked only once replayed).
    pub missing: Vec<String>,
    /// Why it could not be waited for or read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReplicaWait {
    /// Whether the replica is not ready for the dashboard's reads.
    pub fn flagged(&self) -> bool {
        !self.replayed || !self.missing.is_empty() || self.error.is_some()
    }
}

/// Waits up to `limit` for each replica to replay past what `primary` has
/// written now, then reads the indexes `names` of `table` (qualified) there.
pub fn wait(
    config: &Config,
    primary: &mut Client,
    table: &str,
    names: &[String],
    limit: Duration,
    stop: &Stop,
) -> Result<Vec<ReplicaWait>> {
    // The insert position, not the write one: with synchronous_commit off the
    // builds' commit records may still be in WAL buffers.
    let lsn = scalar(primary, "SELECT pg_current_wal_insert_lsn()::text")?;
    let replicas: Vec<_> = config
        .targets
        .iter()
        .filter(|t| t.role == NodeRole::Replica && t.conn != config.conn)
        .collect();
    if replicas.is_empty() {
        return by_replication_view(primary, &lsn, limit, stop);
    }
    Ok(replicas
        .iter()
        .map(|t| {
            let started = Instant::now();
            let outcome = (|| -> Result<(bool, Vec<String>)> {
                let mut client = db::connect(&t.conn)?;
                let replayed = poll(started, limit, stop, || {
                    let done: bool = client
                        .query_typed_one(
                            "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                            &[(&lsn, Type::TEXT)],
                        )
                        .pg_context("reading the replica's replay position")?
                        .get(0);
                    Ok(done)
                })?;
                // Replayed past the builds is not always visible at once in
                // the standby's catalog: ask again until the limit.
                let mut missing = Vec::new();
                if replayed {
                    poll(started, limit, stop, || {
                        missing = missing_indexes(&mut client, table, names)?;
                        Ok(missing.is_empty())
                    })?;
                }
                Ok((replayed, missing))
            })();
            let waited_ms = started.elapsed().as_secs_f64() * 1000.0;
            match outcome {
                Ok((replayed, missing)) => ReplicaWait {
                    name: t.name.clone(),
                    replayed,
                    waited_ms,
                    missing,
                    error: None,
                },
                Err(e) => ReplicaWait {
                    name: t.name.clone(),
                    replayed: false,
                    waited_ms,
                    missing: Vec::new(),
                    error: Some(format!("{e:#}")),
                },
            }
        })
        .collect())
}

/// Without replica targets: every standby connected to the primary, by its
/// replay position in pg_stat_replication.
fn by_replication_view(
    primary: &mut Client,
    lsn: &str,
    limit: Duration,
    stop: &Stop,
) -> Result<Vec<ReplicaWait>> {
    let started = Instant::now();
    let behind = |primary: &mut Client| -> Result<Vec<(String, bool)>> {
        Ok(primary
            .query_typed(
                "SELECT application_name::text, COALESCE(replay_lsn >= $1::text::pg_lsn, false) \
                 FROM pg_stat_replication ORDER BY application_name",
                &[(&lsn, Type::TEXT)],
            )
            .pg_context("reading pg_stat_replication")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    };
    poll(started, limit, stop, || {
        Ok(behind(primary)?.iter().all(|(_, done)| *done))
    })?;
    let waited_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(behind(primary)?
        .into_iter()
        .map(|(name, replayed)| ReplicaWait {
            name,
            replayed,
            waited_ms,
            missing: Vec::new(),
            error: None,
        })
        .collect())
}

/// Asks `done` until it says yes, the limit passes or the run is stopped.
fn poll(
    started: Instant,
    limit: Duration,
    stop: &Stop,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    loop {
        if done()? {
            return Ok(true);
        }
        if started.elapsed() >= limit || stop.sleep(POLL) {
            return Ok(false);
        }
    }
}

/// The managed indexes of `table` not present and valid on this node.
fn missing_indexes(client: &mut Client, table: &str, names: &[String]) -> Result<Vec<String>> {
    let valid: Vec<String> = client
        .query_typed(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = to_regclass($1) AND i.indisvalid",
            &[(&table, Type::TEXT)],
        )
        .pg_context("reading the replica's indexes")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(names
        .iter()
        .filter(|n| !valid.contains(n))
        .cloned()
        .collect())
}

fn scalar(client: &mut Client, sql: &str) -> Result<String> {
    let messages = client.simple_query(sql).pg_context(sql)?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}
