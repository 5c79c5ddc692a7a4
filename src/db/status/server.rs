//! The server's side of pool_status: pg_stat_activity and the connection
//! settings read in one READ ONLY transaction, so every figure is from one
//! snapshot; the status query's own connection counted or left out as asked.

use super::figures::{ApplicationGroup, IdleSession, OwnBackend, PoolerGroup, ServerFigures};
use super::{percent, query_start, StatusOptions, QUERY_CHARS};
use crate::db::describe_pg_error;
use anyhow::{anyhow, Result};
use postgres::Client;

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

// $1: pids left out. $2: the own pooled connection, shown as the idle one it
// is (0: none). $3: a pooler's server connections, grouped apart by the second query.
fn groups_sql() -> String {
    format!(
        "SELECT coalesce(application_name, ''),
                CASE WHEN pid = $2 THEN 'idle' ELSE coalesce(state, '(hidden)') END AS st,
                count(*),
                coalesce(max(CASE WHEN pid = $2 THEN 0
                             ELSE greatest(0, extract(epoch FROM clock_timestamp() - state_change)) END), 0)::float8
           FROM pg_stat_activity
          WHERE datname = current_database() AND {CLIENT_BACKEND} AND pid <> ALL($1)
            AND pid <> ALL($3)
          GROUP BY 1, 2
          ORDER BY 1, 2"
    )
}

// $1: pids left out. $2: a pooler's server connections.
fn pooler_groups_sql() -> String {
    format!(
        "SELECT coalesce(state, '(hidden)'),
                count(*),
                coalesce(max(greatest(0, extract(epoch FROM clock_timestamp() - state_change))), 0)::float8
           FROM pg_stat_activity
          WHERE datname = current_database() AND {CLIENT_BACKEND} AND pid <> ALL($1)
            AND pid = ANY($2)
          GROUP BY 1
          ORDER BY 1"
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

pub(super) fn read_server(
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
    let mut excluded: Vec<i32> = options.left_out_pids.clone();
    if !counted {
        excluded.push(own_pid);
    }
    let shown_idle: i32 = if counted { own_pid } else { 0 };

    let row = tx
        .query_one(backends_sql().as_str(), &[&excluded])
        .map_err(|e| fail("backends", e))?;
    let backends: i64 = row.get(0);

    let by_application = tx
        .query(
            groups_sql().as_str(),
            &[&excluded, &shown_idle, &options.pooler_pids],
        )
        .map_err(|e| fail("connections by application", e))?
        .iter()
        .map(|r| ApplicationGroup {
            application: r.get(0),
            state: r.get(1),
            connections: r.get(2),
            oldest_seconds: r.get(3),
        })
        .collect::<Vec<_>>();
    let pooler_servers = tx
        .query(
            pooler_groups_sql().as_str(),
            &[&excluded, &options.pooler_pids],
        )
        .map_err(|e| fail("a pooler's server connections", e))?
        .iter()
        .map(|r| PoolerGroup {
            state: r.get(0),
            connections: r.get(1),
            oldest_seconds: r.get(2),
        })
        .collect();
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
        pooler_servers,
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
