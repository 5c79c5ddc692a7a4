//! Other sessions that get in an index build's way, described so a DBA can act:
//! who blocks a waiting build right now (pg_blocking_pids), who holds locks on
//! the table or old transactions (after a lock timeout, when the waiter is gone),
//! and, before starting, who would stall a concurrent build.

use anyhow::Result;
use postgres::types::Type;
use postgres::Client;
use std::fmt;

/// Another backend, as pg_stat_activity shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub pid: i32,
    pub application: String,
    pub state: String,
    /// Seconds since its transaction (else its query) started.
    pub age_secs: f64,
    /// Its snapshot's xmin, when it holds one.
    pub xmin: Option<String>,
    pub query: String,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app = if self.application.is_empty() {
            "no application_name"
        } else {
            &self.application
        };
        let age = humantime::format_duration(std::time::Duration::from_secs(self.age_secs as u64));
        write!(f, "pid {} ({app}, {} for {age}", self.pid, self.state)?;
        if let Some(xmin) = &self.xmin {
            write!(f, ", snapshot xmin {xmin}")?;
        }
        let query: String = self.query.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "): {query}")
    }
}

const BACKEND_COLUMNS: &str =
    "a.pid, coalesce(a.application_name, ''), coalesce(a.state, 'unknown'), \
     coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)), 0)::float8, \
     a.backend_xmin::text, left(coalesce(a.query, ''), 200)";

fn backend(row: &postgres::Row, first: usize) -> Backend {
    Backend {
        pid: row.get(first),
        application: row.get(first + 1),
        state: row.get(first + 2),
        age_secs: row.get(first + 3),
        xmin: row.get(first + 4),
        query: row.get(first + 5),
    }
}

/// For each of `waiters` that is blocked right now: (waiter pid, the backend blocking it).
pub fn blocking(client: &mut Client, waiters: &[i32]) -> Result<Vec<(i32, Backend)>> {
    if waiters.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT w.pid, {BACKEND_COLUMNS} FROM unnest($1::int4[]) AS w(pid) \
         CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid) \
         JOIN pg_stat_activity a ON a.pid = b.pid ORDER BY w.pid, a.pid"
    );
    let rows = client.query_typed(&sql, &[(&waiters, Type::INT4_ARRAY)])?;
    Ok(rows.iter().map(|r| (r.get(0), backend(r, 1))).collect())
}

/// Sessions of this database, other than `ours`, that hold a lock on `table`
/// or a transaction older than `older_than_secs`: what a build that timed out
/// was most likely waiting for.
pub fn lock_holders(
    client: &mut Client,
    table: &str,
    ours: &[i32],
    older_than_secs: f64,
) -> Result<Vec<Backend>> {
    let sql = format!(
        "SELECT {BACKEND_COLUMNS} FROM pg_stat_activity a \
         WHERE a.datname = current_database() AND a.backend_type = 'client backend' \
           AND a.pid <> pg_backend_pid() AND a.pid <> ALL($1::int4[]) \
           AND (EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted \
                        AND l.locktype = 'relation' AND l.relation = to_regclass($2)) \
                OR a.xact_start < now() - make_interval(secs => $3)) \
         ORDER BY a.xact_start NULLS LAST LIMIT 5"
    );
    let rows = client.query_typed(
        &sql,
        &[
            (&ours, Type::INT4_ARRAY),
            (&table, Type::TEXT),
            (&older_than_secs, Type::FLOAT8),
        ],
    )?;
    Ok(rows.iter().map(|r| backend(r, 0)).collect())
}

/// Every other session holding a lock on `table`, with the modes it holds:
/// "pid 7 (migration, idle in transaction for 2m): LOCK TABLE ... [AccessExclusiveLock]".
pub fn table_lockers(client: &mut Client, table: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT {BACKEND_COLUMNS}, string_agg(DISTINCT l.mode, ', ') FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.granted \
           AND l.pid <> pg_backend_pid() \
         GROUP BY 1, 2, 3, 4, 5, 6, a.xact_start ORDER BY a.xact_start NULLS LAST LIMIT 5"
    );
    let rows = client.query_typed(&sql, &[(&table, Type::TEXT)])?;
    Ok(rows
        .iter()
        .map(|r| format!("{} [{}]", backend(r, 0), r.get::<_, String>(6)))
        .collect())
}

/// `err` with the sessions holding locks on `table` named, when it is a lock
/// timeout (or cancel) of ours: the plan's catalog reads wait like any query
/// behind an ACCESS EXCLUSIVE lock.
pub fn name_lock_holders(client: &mut Client, table: &str, err: anyhow::Error) -> anyhow::Error {
    let text = format!("{err:#}");
    if !(text.contains("lock timeout") || text.contains("statement timeout")) {
        return err;
    }
    match table_lockers(client, table) {
        Ok(holders) if !holders.is_empty() => err.context(format!(
            "{table} is locked by {}; let that transaction finish (or end it), then run again",
            holders.join("; ")
        )),
        _ => err,
    }
}

/// Sessions that would make a build on `table` wait: idle in transaction, a
/// transaction (hence locks or a snapshot) open for more than a few seconds,
/// or any transaction that has written to the table.
pub fn stallers(client: &mut Client, table: &str) -> Result<Vec<Backend>> {
    let sql = format!(
        "SELECT {BACKEND_COLUMNS} FROM pg_stat_activity a \
         WHERE a.datname = current_database() AND a.backend_type = 'client backend' \
           AND a.pid <> pg_backend_pid() \
           AND (a.state LIKE 'idle in transaction%' OR a.xact_start < now() - interval '5 seconds' \
                OR EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted \
                           AND l.locktype = 'relation' AND l.relation = to_regclass($1) \
                           AND l.mode <> 'AccessShareLock')) \
         ORDER BY a.xact_start NULLS LAST LIMIT 20"
    );
    let rows = client.query_typed(&sql, &[(&table, Type::TEXT)])?;
    Ok(rows.iter().map(|r| backend(r, 0)).collect())
}

/// A role that sees only its own sessions in pg_stat_activity (other roles'
/// rows have no state, query or xmin), when it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictedView {
    pub role: String,
    /// Sessions of other roles on this database it sees only as rows.
    pub hidden_sessions: i64,
}

impl RestrictedView {
    /// The warning: what could not be seen and the GRANT that fixes it.
    pub fn warning(&self) -> String {
        format!(
            "role {} sees only its own sessions ({} sessions of other roles on this database hidden): \
             what they hold could not be checked",
            self.role, self.hidden_sessions
        )
    }

    pub fn grant(&self) -> String {
        format!(
            "GRANT pg_read_all_stats TO {};",
            crate::ident::quote_ident(&self.role)
        )
    }
}

/// Whether this role's view of pg_stat_activity is restricted: neither
/// superuser nor a member of pg_read_all_stats.
pub fn restricted_view(client: &mut Client) -> Result<Option<RestrictedView>> {
    let row = client.query_typed_one(
        "SELECT current_user::text, \
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
                  OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'), \
                (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database() \
                   AND a.usename IS DISTINCT FROM current_user AND a.backend_type = 'client backend')",
        &[],
    )?;
    let sees_all: Option<bool> = row.get(1);
    Ok((!sees_all.unwrap_or(false)).then(|| RestrictedView {
        role: row.get(0),
        hidden_sessions: row.get(2),
    }))
}

/// "blocked by pid 1 (...): query; pid 2 (...): query".
pub fn describe(backends: &[Backend]) -> String {
    backends
        .iter()
        .map(Backend::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_reads_as_one_line() {
        let b = Backend {
            pid: 42,
            application: "psql".into(),
            state: "idle in transaction".into(),
            age_secs: 75.4,
            xmin: Some("731".into()),
            query: "LOCK TABLE orders\n   IN SHARE MODE".into(),
        };
        assert_eq!(
            b.to_string(),
            "pid 42 (psql, idle in transaction for 1m 15s, snapshot xmin 731): LOCK TABLE orders IN SHARE MODE"
        );
    }
}
