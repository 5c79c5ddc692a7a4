//! replication: the dashboard reads from streaming replicas, so a standby that
//! stopped replaying, or a primary's slot piling up WAL, is a deploy problem
//! too. On a primary: each standby pg_stat_replication shows, with its lag,
//! and the replication slots; on a standby: how far replay is, whether it is
//! paused, whether WAL still streams in, and what cancels long queries there.

use super::context::Ctx;
use super::report::Status;
use super::Verdict;
use crate::db::PgContext;
use crate::report::size_pretty;
use anyhow::Result;
use postgres::Client;
use serde::Serialize;
use std::time::Duration;

/// What the replication check read, for the JSON report and the gauges.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplicationFigures {
    /// The standbys streaming from this node (pg_stat_replication).
    pub standbys: Vec<StandbyLink>,
    /// This node's replication slots (pg_replication_slots).
    pub slots: Vec<Slot>,
    /// On a standby: its own replay; null on a primary.
    pub replay: Option<Replay>,
}

/// One row of pg_stat_replication. The lags in bytes are this node's WAL
/// position minus the standby's; the times are the server's *_lag intervals
/// (null once the standby has caught up and no WAL is written).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StandbyLink {
    pub application_name: String,
    pub client_addr: Option<String>,
    /// startup, catchup, streaming, backup or stopping; null when the role
    /// may not see it (pg_read_all_stats).
    pub state: Option<String>,
    /// async, potential, sync or quorum.
    pub sync_state: Option<String>,
    pub write_lag_bytes: Option<i64>,
    pub flush_lag_bytes: Option<i64>,
    pub replay_lag_bytes: Option<i64>,
    pub write_lag_seconds: Option<f64>,
    pub flush_lag_seconds: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
}

/// One row of pg_replication_slots.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slot {
    pub name: String,
    /// physical or logical.
    pub kind: String,
    pub active: bool,
    /// reserved, extended, unreserved or lost.
    pub wal_status: Option<String>,
    /// WAL kept for it: this node's position minus its restart_lsn.
    pub retained_bytes: Option<i64>,
}

/// A standby's own replay.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Replay {
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// Received and not yet replayed.
    pub receive_replay_bytes: Option<i64>,
    /// now() - the last replayed commit's time while received WAL waits to be
    /// replayed; 0 when replay has caught up with what was received (an idle
    /// primary commits nothing, so the commit's age alone is no lag).
    pub lag_seconds: Option<f64>,
    /// pg_get_wal_replay_pause_state(): not paused, pause requested or paused.
    pub pause_state: String,
    /// pg_stat_wal_receiver.status; null when there is no WAL receiver.
    pub receiver_status: Option<String>,
    /// Whether a WAL receiver runs (its status may be hidden from the role).
    pub receiver_running: bool,
    /// host:port the WAL comes from: the receiver's sender, else primary_conninfo's hosts.
    pub primary: Option<String>,
    /// primary_conninfo is set (None: the role may not read it).
    pub primary_conninfo_set: Option<bool>,
    pub hot_standby_feedback: String,
    pub max_standby_streaming_delay: String,
}

/// The [verify] limits the check warns above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub lag: Duration,
    pub lag_bytes: i64,
    pub slot_bytes: i64,
}

const MB: i64 = 1024 * 1024;

pub fn replication(ctx: &mut Ctx) -> Result<Verdict> {
    let v = &ctx.config.verify;
    let limits = Limits {
        lag: v.replication_lag,
        lag_bytes: i64::try_from(v.replication_lag_mb).unwrap_or(i64::MAX / MB) * MB,
        slot_bytes: i64::try_from(v.slot_retained_mb).unwrap_or(i64::MAX / MB) * MB,
    };
    let standby = ctx.standby;
    let client = ctx.client()?;
    let figures = ReplicationFigures {
        standbys: standbys(client)?,
        slots: slots(client)?,
        replay: standby.then(|| replay(client)).transpose()?,
    };
    let verdict = judge(&figures, &limits);
    ctx.replication = Some(figures);
    Ok(verdict)
}

/// This node's WAL position: written on a primary, replayed on a standby
/// (a cascading standby's downstream standbys and slots are measured from it).
const WAL_POSITION: &str =
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END";

fn standbys(client: &mut Client) -> Result<Vec<StandbyLink>> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT COALESCE(NULLIF(application_name, ''), '(no application_name)'), host(client_addr), state, sync_state, \
                        pg_wal_lsn_diff({WAL_POSITION}, write_lsn)::int8, \
                        pg_wal_lsn_diff({WAL_POSITION}, flush_lsn)::int8, \
                        pg_wal_lsn_diff({WAL_POSITION}, replay_lsn)::int8, \
                        EXTRACT(EPOCH FROM write_lag)::float8, EXTRACT(EPOCH FROM flush_lag)::float8, \
                        EXTRACT(EPOCH FROM replay_lag)::float8 \
                 FROM pg_stat_replication ORDER BY application_name, client_addr"
            ),
            &[],
        )
        .pg_context("reading pg_stat_replication")?;
    Ok(rows
        .iter()
        .map(|r| StandbyLink {
            application_name: r.get(0),
            client_addr: r.get(1),
            state: r.get(2),
            sync_state: r.get(3),
            write_lag_bytes: r.get(4),
            flush_lag_bytes: r.get(5),
            replay_lag_bytes: r.get(6),
            write_lag_seconds: r.get(7),
            flush_lag_seconds: r.get(8),
            replay_lag_seconds: r.get(9),
        })
        .collect())
}

fn slots(client: &mut Client) -> Result<Vec<Slot>> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT slot_name::text, slot_type, active, wal_status, \
                        pg_wal_lsn_diff({WAL_POSITION}, restart_lsn)::int8 \
                 FROM pg_replication_slots ORDER BY slot_name"
            ),
            &[],
        )
        .pg_context("reading pg_replication_slots")?;
    Ok(rows
        .iter()
        .map(|r| Slot {
            name: r.get(0),
            kind: r.get(1),
            active: r.get(2),
            wal_status: r.get(3),
            retained_bytes: r.get(4),
        })
        .collect())
}

fn replay(client: &mut Client) -> Result<Replay> {
    let version: i32 = client
        .query_typed_one("SELECT current_setting('server_version_num')::int4", &[])
        .pg_context("reading the server version")?
        .get(0);
    // pg_get_wal_replay_pause_state() is 14's; before it, paused or not.
    let pause_state = if version >= 140_000 {
        "pg_get_wal_replay_pause_state()"
    } else {
        "CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END"
    };
    let row = client
        .query_typed_one(
            &format!("SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
                    pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::int8, \
                    EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, \
                    {pause_state}, \
                    current_setting('hot_standby_feedback'), current_setting('max_standby_streaming_delay'), \
                    pg_has_role('pg_read_all_settings', 'USAGE')"),
            &[],
        )
        .pg_context("reading the standby's replay position")?;
    let receive_replay_bytes: Option<i64> = row.get(2);
    let commit_age: Option<f64> = row.get(3);
    let lag_seconds = match receive_replay_bytes {
        Some(bytes) if bytes <= 0 => Some(0.0),
        _ => commit_age.map(|s| s.max(0.0)),
    };
    let receiver = client
        .query_typed_opt(
            "SELECT status, sender_host || ':' || sender_port FROM pg_stat_wal_receiver",
            &[],
        )
        .pg_context("reading pg_stat_wal_receiver")?;
    let (receiver_status, sender): (Option<String>, Option<String>) = match &receiver {
        Some(r) => (r.get(0), r.get(1)),
        None => (None, None),
    };
    // primary_conninfo may hold a password: only its hosts leave this function.
    let conninfo: Option<String> = if row.get::<_, bool>(7) {
        client
            .query_typed_one("SELECT current_setting('primary_conninfo')", &[])
            .pg_context("reading primary_conninfo")?
            .get(0)
    } else {
        None
    };
    let primary = sender.or_else(|| {
        conninfo
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .and_then(|c| crate::conninfo::hosts_of(c).ok())
    });
    Ok(Replay {
        receive_lsn: row.get(0),
        replay_lsn: row.get(1),
        receive_replay_bytes,
        lag_seconds,
        pause_state: row.get(4),
        receiver_status,
        receiver_running: receiver.is_some(),
        primary,
        primary_conninfo_set: conninfo.map(|c| !c.trim().is_empty()),
        hot_standby_feedback: row.get(5),
        max_standby_streaming_delay: row.get(6),
    })
}

/// The verdict over what was read: the worst finding decides, every line is shown.
pub fn judge(f: &ReplicationFigures, limits: &Limits) -> Verdict {
    let mut findings = Findings::default();
    if let Some(replay) = &f.replay {
        judge_replay(replay, limits, &mut findings);
    }
    for s in &f.standbys {
        judge_standby(s, limits, &mut findings);
    }
    for slot in &f.slots {
        judge_slot(slot, limits, &mut findings);
    }
    if f.replay.is_none() && f.standbys.is_empty() {
        findings.lines.insert(
            0,
            format!(
                "no standbys (pg_stat_replication is empty){}",
                if f.slots.is_empty() {
                    " and no replication slots"
                } else {
                    ""
                }
            ),
        );
    }
    findings.verdict()
}

/// Lines, fixes and the worst status so far.
#[derive(Default)]
struct Findings {
    status: Option<Status>,
    lines: Vec<String>,
    fixes: Vec<String>,
}

impl Findings {
    fn info(&mut self, line: String) {
        self.lines.push(line);
    }

    fn found(&mut self, status: Status, line: String, fix: String) {
        self.status = Some(match (self.status, status) {
            (Some(Status::Fail), _) | (_, Status::Fail) => Status::Fail,
            _ => Status::Warn,
        });
        self.lines.push(line);
        if !self.fixes.contains(&fix) {
            self.fixes.push(fix);
        }
    }

    fn verdict(self) -> Verdict {
        let detail = self.lines.join("\n");
        let fix = self.fixes.join("\n");
        match self.status {
            None => Verdict::pass(detail),
            Some(Status::Fail) => Verdict::fail(detail, fix),
            Some(_) => Verdict::warn(detail, fix),
        }
    }
}

fn judge_replay(r: &Replay, limits: &Limits, out: &mut Findings) {
    let lsn = |l: &Option<String>| l.clone().unwrap_or_else(|| "none".into());
    let from = r
        .primary
        .as_deref()
        .map(|p| format!(" from {p}"))
        .unwrap_or_default();
    let positions = format!(
        "received up to {}, replayed up to {}",
        lsn(&r.receive_lsn),
        lsn(&r.replay_lsn)
    );
    let behind = r.receive_replay_bytes.filter(|b| *b > 0);
    if r.pause_state != "not paused" {
        out.found(
            Status::Fail,
            format!(
                "replay is {} (pg_get_wal_replay_pause_state): {positions}{}{}; this standby serves data as of its last replayed commit",
                r.pause_state,
                behind.map(|b| format!(", {} waiting", size_pretty(b))).unwrap_or_default(),
                r.lag_seconds
                    .filter(|s| *s > 0.0)
                    .map(|s| format!(", {} behind in time", seconds(s)))
                    .unwrap_or_default()
            ),
            "SELECT pg_wal_replay_resume();  -- on this standby".into(),
        );
    } else {
        match (behind, r.lag_seconds) {
            (None, _) => out.info(format!(
                "on a hot standby: {positions}: replay has caught up with the WAL received"
            )),
            (Some(bytes), lag) => {
                let lag_text = lag.map(|s| format!(", {} behind in time", seconds(s)));
                let line = format!(
                    "on a hot standby: {positions}: {} received and not yet replayed{}",
                    size_pretty(bytes),
                    lag_text.unwrap_or_default()
                );
                let over_time = lag.is_some_and(|s| s > limits.lag.as_secs_f64());
                if over_time || bytes > limits.lag_bytes {
                    out.found(
                        Status::Warn,
                        format!(
                            "{line} (limits {} and {})",
                            humantime::format_duration(limits.lag),
                            size_pretty(limits.lag_bytes)
                        ),
                        "replay is behind: look for queries here that conflict with replay \
                         (pg_stat_activity, pg_stat_database_conflicts) and for I/O limits in this standby's log"
                            .into(),
                    );
                } else {
                    out.info(line);
                }
            }
        }
    }
    let not_visible = || {
        "cannot see the WAL receiver's status: grant pg_read_all_stats to the role verify runs as"
            .to_string()
    };
    match (r.receiver_running, r.receiver_status.as_deref()) {
        (true, Some("streaming")) => out.info(format!("WAL receiver streaming{from}")),
        (true, None) => out.found(
            Status::Warn,
            not_visible(),
            "grant pg_read_all_stats to the role verify connects as (GRANT on the primary: it replicates)".into(),
        ),
        (true, Some(status)) => out.found(
            Status::Fail,
            format!("WAL receiver {status}, not streaming{from}: replay stops at what was received"),
            receiver_fix(r),
        ),
        (false, _) if r.primary_conninfo_set == Some(false) => out.found(
            Status::Warn,
            "no WAL receiver and no primary_conninfo: this standby replays archived WAL only (restore_command) and lags by whole WAL files".into(),
            "set primary_conninfo (and primary_slot_name) so the standby streams from the primary".into(),
        ),
        (false, _) => out.found(
            Status::Fail,
            format!(
                "no WAL receiver: not streaming{} (primary_conninfo); replay stops at what was received",
                if from.is_empty() {
                    " (primary_conninfo is not readable: grant pg_read_all_settings to see where)".to_string()
                } else {
                    from.clone()
                }
            ),
            receiver_fix(r),
        ),
    }
    out.info(conflicts_note(r));
}

fn receiver_fix(r: &Replay) -> String {
    let primary = r
        .primary
        .as_deref()
        .unwrap_or("the primary primary_conninfo names");
    format!(
        "check that {primary} is up and accepts replication connections from this standby \
         (its log, pg_hba.conf, max_wal_senders), then read this standby's log for why the WAL receiver stopped"
    )
}

/// Long dashboard queries on a standby are cancelled when replay needs what
/// they read; these two settings decide when.
fn conflicts_note(r: &Replay) -> String {
    let delay = &r.max_standby_streaming_delay;
    let feedback = &r.hot_standby_feedback;
    let what = if delay == "-1" {
        "replay waits for conflicting queries as long as they run, so lag grows behind a long report".to_string()
    } else if feedback == "on" {
        format!("the primary keeps the rows this standby's queries read, so few are cancelled; a query conflicting with replay otherwise is cancelled after {delay}")
    } else {
        format!("a dashboard query that reads rows the primary has since vacuumed is cancelled after {delay} \
                 (hot_standby_feedback = on prevents that, at the cost of bloat on the primary)")
    };
    format!(
        "note: hot_standby_feedback = {feedback}, max_standby_streaming_delay = {delay}: {what}"
    )
}

fn judge_standby(s: &StandbyLink, limits: &Limits, out: &mut Findings) {
    let Some(state) = s.state.as_deref() else {
        out.found(
            Status::Warn,
            format!(
                "standby {}: its address, state and lag are not visible to this role",
                s.application_name
            ),
            "grant pg_read_all_stats to the role verify connects as, to see each standby's state and lag".into(),
        );
        return;
    };
    let who = match &s.client_addr {
        Some(addr) => format!("standby {} ({addr})", s.application_name),
        None => format!("standby {} (local socket)", s.application_name),
    };
    let bytes = |b: Option<i64>| b.map_or("?".to_string(), |b| size_pretty(b.max(0)));
    let time = |t: Option<f64>| t.map_or("caught up".to_string(), seconds);
    let line = format!(
        "{who}: {state}, {}: behind by {} written, {} flushed, {} replayed; lag write {}, flush {}, replay {}",
        s.sync_state.as_deref().unwrap_or("?"),
        bytes(s.write_lag_bytes),
        bytes(s.flush_lag_bytes),
        bytes(s.replay_lag_bytes),
        time(s.write_lag_seconds),
        time(s.flush_lag_seconds),
        time(s.replay_lag_seconds),
    );
    match state {
        // pg_basebackup copying this node: a standby in the making.
        "backup" => {
            out.info(format!("{who}: taking a base backup"));
            return;
        }
        "stopping" => {
            out.found(
                Status::Warn,
                format!("{line} (its WAL sender is stopping)"),
                format!(
                    "read {}'s log: it is disconnecting from this node",
                    s.application_name
                ),
            );
            return;
        }
        // startup and catchup are judged by their lag like streaming: a
        // standby that just connected is behind for a moment.
        _ => {}
    }
    let over_time = s
        .replay_lag_seconds
        .is_some_and(|t| t > limits.lag.as_secs_f64());
    let over_bytes = s.replay_lag_bytes.is_some_and(|b| b > limits.lag_bytes);
    if over_time || over_bytes {
        out.found(
            Status::Warn,
            format!(
                "{line} (limits {} and {})",
                humantime::format_duration(limits.lag),
                size_pretty(limits.lag_bytes)
            ),
            format!(
                "run o2o-db verify on {} itself: it names a paused replay, a WAL receiver that stopped or queries holding replay back",
                s.application_name
            ),
        );
    } else {
        out.info(line);
    }
}

fn judge_slot(slot: &Slot, limits: &Limits, out: &mut Findings) {
    let kept = slot
        .retained_bytes
        .map(|b| format!("keeps {} of WAL", size_pretty(b.max(0))))
        .unwrap_or_else(|| "keeps no WAL yet".into());
    let wal_status = slot.wal_status.as_deref().unwrap_or("?");
    let line = format!(
        "slot {} ({}, {}, wal_status {wal_status}): {kept}",
        slot.name,
        slot.kind,
        if slot.active { "active" } else { "inactive" }
    );
    let drop = format!(
        "SELECT pg_drop_replication_slot('{}');  -- if what used it is gone for good: an inactive slot keeps WAL until the disk fills",
        slot.name.replace('\'', "''")
    );
    if wal_status == "lost" {
        out.found(
            Status::Warn,
            format!("{line}: lost, the WAL its consumer needs is gone (it must be rebuilt)"),
            drop,
        );
    } else if !slot.active {
        out.found(Status::Warn, line, drop);
    } else if slot.retained_bytes.is_some_and(|b| b > limits.slot_bytes) {
        out.found(
            Status::Warn,
            format!("{line}, over the limit of {}", size_pretty(limits.slot_bytes)),
            format!(
                "the consumer of slot {} is behind: see its lag above; max_slot_wal_keep_size bounds what a slot may keep",
                slot.name
            ),
        );
    } else {
        out.info(line);
    }
}

/// Seconds as people read them: "0.31 s", "2m 5s".
fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.2} s")
    } else {
        humantime::format_duration(Duration::from_secs(s as u64)).to_string()
    }
}

#[cfg(test)]
mod tests;
