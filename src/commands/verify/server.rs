//! The server itself: can we reach it and how far away is it (connectivity),
//! and are sessions leaking, idle in transaction or stuck (sessions), the
//! connection leaks the V8.5 report worried about.

use super::context::Ctx;
use super::{median, Verdict};
use crate::catalog::activity::restricted_view;
use anyhow::Result;
use postgres::types::Type;
use std::time::{Duration, Instant};

/// Round trips timed for the connectivity check's median.
const PINGS: usize = 5;

/// connectivity: connected (verify stops with exit 2 before any check when it
/// cannot), which server, and the round-trip time.
pub fn connectivity(ctx: &mut Ctx) -> Result<Verdict> {
    let connect_ms = ctx.connect_ms;
    let target = ctx.config.conn.target();
    let target = match &ctx.endpoint {
        Some(endpoint) => crate::conninfo::answered_by(&target, endpoint),
        None => target,
    };
    let client = ctx.client()?;
    let version: String = client
        .query_typed_one("SELECT current_setting('server_version')", &[])?
        .get(0);
    let mut times = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let started = Instant::now();
        client.batch_execute("SELECT 1")?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Verdict::pass(format!(
        "PostgreSQL {version} at {target}: connected in {connect_ms:.1} ms, round trip {:.2} ms (median of {PINGS})",
        median(&mut times)
    )))
}

/// One client session on this database, as pg_stat_activity shows it.
#[derive(Debug, Clone)]
struct Session {
    pid: i32,
    application: String,
    user: String,
    /// None: another role's session we are not allowed to see into.
    state: Option<String>,
    /// Idle in transaction: since the last statement ended; active: since the query started.
    age: Duration,
    query: String,
}

impl Session {
    fn idle_in_transaction(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.starts_with("idle in transaction"))
    }

    fn too_old(&self, limit: Duration) -> bool {
        let active = self.state.as_deref() == Some("active");
        (active || self.idle_in_transaction()) && self.age > limit
    }
}

/// sessions: none of the application's sessions on this database is idle in
/// transaction, or running one statement, for longer than [verify] session_age.
pub fn sessions(ctx: &mut Ctx) -> Result<Verdict> {
    let limit = ctx.config.verify.session_age;
    let rows = ctx.client()?.query_typed(
        "SELECT pid, COALESCE(NULLIF(application_name, ''), '(no application_name)'), COALESCE(usename::text, ''), state, \
                COALESCE(EXTRACT(EPOCH FROM now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END), 0)::float8, \
                left(regexp_replace(COALESCE(query, ''), '\\s+', ' ', 'g'), 80) \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND backend_type = 'client backend' \
           AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM $1 \
         ORDER BY 5 DESC",
        &[(&super::pool::pool_application_name(), Type::TEXT)],
    )?;
    let sessions: Vec<Session> = rows
        .iter()
        .map(|r| Session {
            pid: r.get(0),
            application: r.get(1),
            user: r.get(2),
            state: r.get(3),
            age: Duration::from_secs_f64(r.get::<_, f64>(4).max(0.0)),
            query: r.get(5),
        })
        .collect();
    let hidden = sessions.iter().filter(|s| s.state.is_none()).count();
    let hidden_note = if hidden > 0 {
        format!(
            "; {hidden} sessions of other roles not visible (grant pg_read_all_stats to see them)"
        )
    } else {
        String::new()
    };
    let old: Vec<&Session> = sessions.iter().filter(|s| s.too_old(limit)).collect();
    let limit_text = age(limit);
    // Never a PASS on what could not be seen.
    if let (true, Some(view)) = (old.is_empty(), restricted_view(ctx.client()?)?) {
        return Ok(Verdict::warn(
            format!(
                "{}; of its own, none idle in transaction or running longer than {limit_text}",
                view.warning()
            ),
            format!(
                "{}  -- so verify can see every session on the database",
                view.grant()
            ),
        ));
    }
    if old.is_empty() {
        return Ok(Verdict::pass(format!(
            "no session idle in transaction or running longer than {limit_text} ({} of other clients on this database){hidden_note}",
            sessions_count(sessions.len())
        )));
    }
    let mut lines = vec![format!(
        "{} idle in transaction or running longer than {limit_text}:",
        sessions_count(old.len())
    )];
    let mut fixes = Vec::new();
    for s in &old {
        let what = if s.idle_in_transaction() {
            "idle in transaction"
        } else {
            "active"
        };
        lines.push(format!(
            "pid {} ({}, user {}): {what} for {}: {}",
            s.pid,
            s.application,
            s.user,
            age(s.age),
            s.query
        ));
        fixes.push(if s.idle_in_transaction() {
            format!("SELECT pg_terminate_backend({});", s.pid)
        } else {
            format!("SELECT pg_cancel_backend({});", s.pid)
        });
    }
    fixes.push(
        "then find the code path that leaves the session open (use the session manager's scoped sessions); \
         ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min' limits the damage"
            .into(),
    );
    if hidden > 0 {
        lines.push(hidden_note.trim_start_matches("; ").to_string());
    }
    Ok(Verdict::warn(lines.join("\n"), fixes.join("\n")))
}

/// "1 session", "3 sessions".
fn sessions_count(n: usize) -> String {
    format!("{n} session{}", if n == 1 { "" } else { "s" })
}

/// An age as people read it: "850 ms", "6m 12s".
fn age(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_idle_in_transaction_or_active_sessions_count() {
        let s = |state: Option<&str>, secs: u64| Session {
            pid: 1,
            application: "a".into(),
            user: "u".into(),
            state: state.map(str::to_string),
            age: Duration::from_secs(secs),
            query: String::new(),
        };
        let limit = Duration::from_secs(300);
        assert!(s(Some("idle in transaction"), 301).too_old(limit));
        assert!(s(Some("idle in transaction (aborted)"), 400).too_old(limit));
        assert!(s(Some("active"), 900).too_old(limit));
        assert!(!s(Some("idle in transaction"), 10).too_old(limit));
        assert!(!s(Some("idle"), 9000).too_old(limit));
        assert!(!s(None, 9000).too_old(limit));
        assert_eq!(age(Duration::from_millis(850)), "850 ms");
        assert_eq!(age(Duration::from_millis(372_400)), "6m 12s");
    }
}
