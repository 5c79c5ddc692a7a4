//! pool-status for Prometheus and Nagios: the pool's size and use, its
//! checkout counters, the server's connections by application and state, and
//! the sessions idle in transaction; Nagios says OK or CRITICAL by the alert.

use super::{BouncerSection, PoolStatusReport};
use crate::db::pgbouncer::{BouncerPool, BouncerStats};
use crate::report::nagios::{label, NagiosCheck, NagiosState};
use crate::report::prometheus::{Exposition, Kind, Labels};
use anyhow::Result;
use std::io::Write;

pub fn prometheus(r: &PoolStatusReport, w: &mut dyn Write) -> Result<()> {
    let base: Labels = vec![
        ("target", r.target.clone()),
        ("database", r.server.database.clone()),
    ];
    let one = |v: f64| vec![(base.clone(), v)];
    let p = &r.pool;
    let mut e = Exposition::new();
    let gauges: [(&str, &str, f64); 5] = [
        (
            "o2o_db_pool_max_size",
            "The most connections the pool opens (size + max_overflow).",
            p.max_size.into(),
        ),
        (
            "o2o_db_pool_connections",
            "Connections the pool has open.",
            p.connections.into(),
        ),
        (
            "o2o_db_pool_idle_connections",
            "Open connections waiting in the pool.",
            p.idle.into(),
        ),
        (
            "o2o_db_pool_checked_out_connections",
            "Connections held by callers.",
            p.checked_out.into(),
        ),
        (
            "o2o_db_pool_usage_ratio",
            "Checked-out connections over max_size (0-1).",
            p.usage_percent / 100.0,
        ),
    ];
    for (name, help, value) in gauges {
        e.family(name, Kind::Gauge, help, one(value));
    }
    let c = &p.checkout;
    let counters: [(&str, &str, f64); 4] = [
        (
            "o2o_db_pool_checkouts_total",
            "Connections checked out of the pool.",
            c.checkouts as f64,
        ),
        (
            "o2o_db_pool_waits_total",
            "Checkouts that found no idle connection.",
            c.waits as f64,
        ),
        (
            "o2o_db_pool_timeouts_total",
            "Checkouts that gave up after the pool timeout.",
            c.timeouts as f64,
        ),
        (
            "o2o_db_pool_connection_errors_total",
            "Failed attempts to open a connection.",
            c.connection_errors as f64,
        ),
    ];
    for (name, help, value) in counters {
        e.family(name, Kind::Counter, help, one(value));
    }
    // Absent when not judged: behind a transaction pooler the ratio would be its servers'.
    let usage = [base.clone(), vec![("application", r.app.name.clone())]].concat();
    e.family(
        "o2o_db_app_usage_ratio",
        Kind::Gauge,
        "The application's connections over its pool's max_size (0-1); the alert is at alert_ratio.",
        match r.app.not_judged {
            Some(_) => Vec::new(),
            None => vec![(usage, r.app.usage_percent / 100.0)],
        },
    );
    e.family(
        "o2o_db_app_alert_ratio",
        Kind::Gauge,
        "The usage ratio above which pool-status alerts.",
        one(r.app.alert_percent / 100.0),
    );
    e.family(
        "o2o_db_pool_alert",
        Kind::Gauge,
        "1 when the application's usage is above the alert.",
        one(crate::report::prometheus::flag(r.alert)),
    );
    let s = &r.server;
    e.family(
        "o2o_db_server_max_connections",
        Kind::Gauge,
        "The server's max_connections.",
        one(s.max_connections.into()),
    );
    e.family(
        "o2o_db_server_backends",
        Kind::Gauge,
        "Client backends in use on the server, all databases.",
        one(s.backends as f64),
    );
    e.family(
        "o2o_db_server_connections",
        Kind::Gauge,
        "This database's client connections by application and state.",
        s.by_application
            .iter()
            .map(|g| {
                let mut labels = base.clone();
                labels.push(("application", g.application.clone()));
                labels.push(("state", g.state.clone()));
                (labels, g.connections as f64)
            })
            .collect(),
    );
    e.family(
        "o2o_db_idle_in_transaction_sessions",
        Kind::Gauge,
        "Sessions idle in transaction longer than the session age.",
        one(s.idle_in_transaction.len() as f64),
    );
    let oldest = s
        .idle_in_transaction
        .iter()
        .map(|i| i.idle_seconds)
        .fold(0.0, f64::max);
    e.family(
        "o2o_db_idle_in_transaction_oldest_seconds",
        Kind::Gauge,
        "How long the oldest of them has been idle in transaction (0: none).",
        one(oldest),
    );
    if let Some(b) = &r.pgbouncer {
        bouncer(b, &mut e);
    }
    e.family(
        "o2o_db_server_pgbouncer_connections",
        Kind::Gauge,
        "This database's backends that are pgbouncer's server connections, by state (with --pgbouncer).",
        s.pooler_servers
            .iter()
            .map(|g| {
                let mut labels = base.clone();
                labels.push(("state", g.state.clone()));
                (labels, g.connections as f64)
            })
            .collect(),
    );
    w.write_all(e.into_string().as_bytes())?;
    Ok(())
}

/// How a pool's metric is read from the section.
type PoolValue = fn(&BouncerSection, &BouncerPool) -> f64;
/// How a database's metric is read from SHOW STATS.
type StatsValue = fn(&BouncerStats) -> f64;

/// The admin console's pools and databases, labelled as pgbouncer_exporter labels them.
fn bouncer(b: &BouncerSection, e: &mut Exposition) {
    let pools = &b.status.pools;
    let pool_labels = |p: &BouncerPool| -> Labels {
        vec![
            ("database", p.database.clone()),
            ("user", p.user.clone()),
            ("pool_mode", p.pool_mode.clone()),
        ]
    };
    let each = |f: PoolValue| -> Vec<(Labels, f64)> {
        pools.iter().map(|p| (pool_labels(p), f(b, p))).collect()
    };
    let pool_gauges: [(&str, &str, PoolValue); 5] = [
        (
            "o2o_db_pgbouncer_clients_waiting",
            "Clients of the pgbouncer pool waiting for a server connection.",
            |_, p| p.clients_waiting as f64,
        ),
        (
            "o2o_db_pgbouncer_clients_active",
            "Clients of the pgbouncer pool linked to a server connection or idle between transactions.",
            |_, p| p.clients_active as f64,
        ),
        (
            "o2o_db_pgbouncer_max_wait_seconds",
            "How long the pool's oldest waiting client has waited.",
            |_, p| p.max_wait_seconds,
        ),
        (
            "o2o_db_pgbouncer_pool_size",
            "The most server connections the pool opens (its database's pool_size, default_pool_size unless set).",
            |_, p| p.pool_size as f64,
        ),
        (
            "o2o_db_pgbouncer_avg_wait_seconds",
            "The average wait for a server connection over the last stats period (SHOW STATS avg_wait_time).",
            |b, p| b.avg_wait_seconds(p),
        ),
    ];
    for (name, help, f) in pool_gauges {
        e.family(name, Kind::Gauge, help, each(f));
    }
    e.family(
        "o2o_db_pgbouncer_servers",
        Kind::Gauge,
        "The pool's server connections in use (active), idle, and used (back from a client, not yet checked).",
        pools
            .iter()
            .flat_map(|p| {
                [
                    ("active", p.servers_active),
                    ("idle", p.servers_idle),
                    ("used", p.servers_used),
                ]
                .map(|(state, n)| {
                    let mut labels = pool_labels(p);
                    labels.push(("state", state.to_string()));
                    (labels, n as f64)
                })
            })
            .collect(),
    );
    let stats = &b.status.stats;
    let per_database = |f: StatsValue| -> Vec<(Labels, f64)> {
        stats
            .iter()
            .map(|s| (vec![("database", s.database.clone())], f(s)))
            .collect()
    };
    e.family(
        "o2o_db_pgbouncer_avg_query_seconds",
        Kind::Gauge,
        "The average query time over the last stats period (SHOW STATS avg_query_time).",
        per_database(|s| s.avg_query_seconds),
    );
    let counters: [(&str, &str, StatsValue); 3] = [
        (
            "o2o_db_pgbouncer_transactions_total",
            "Transactions pgbouncer pooled since it started.",
            |s| s.transactions_total as f64,
        ),
        (
            "o2o_db_pgbouncer_queries_total",
            "Queries pgbouncer pooled since it started.",
            |s| s.queries_total as f64,
        ),
        (
            "o2o_db_pgbouncer_wait_seconds_total",
            "Time clients spent waiting for a server connection since pgbouncer started.",
            |s| s.wait_seconds_total,
        ),
    ];
    for (name, help, f) in counters {
        e.family(name, Kind::Counter, help, per_database(f));
    }
    let settings = &b.status.settings;
    e.family(
        "o2o_db_pgbouncer_default_pool_size",
        Kind::Gauge,
        "pgbouncer's default_pool_size.",
        vec![(Vec::new(), settings.default_pool_size as f64)],
    );
    e.family(
        "o2o_db_pgbouncer_max_client_conn",
        Kind::Gauge,
        "pgbouncer's max_client_conn.",
        vec![(Vec::new(), settings.max_client_conn as f64)],
    );
    e.family(
        "o2o_db_pgbouncer_alert",
        Kind::Gauge,
        "1 when clients wait in pgbouncer now, or waited longer than the alert on average lately.",
        vec![(Vec::new(), crate::report::prometheus::flag(b.alert))],
    );
}

pub fn nagios(r: &PoolStatusReport) -> NagiosCheck {
    let bouncer_alert = r.pgbouncer.as_ref().is_some_and(|b| b.alert);
    let state = if r.alert || bouncer_alert {
        NagiosState::Critical
    } else if r.app.not_judged.is_some() {
        NagiosState::Unknown
    } else if !r.server.idle_in_transaction.is_empty() {
        NagiosState::Warning
    } else {
        NagiosState::Ok
    };
    let warn = r.app.alert_percent;
    let usage = match &r.app.not_judged {
        Some(_) => format!(
            "{}'s usage not judged (a transaction pooler's backends; pass --pgbouncer)",
            r.app.name
        ),
        None => format!(
            "{} at {:.1}% of its pool ({} of {} connections), alert at {warn}%",
            r.app.name, r.app.usage_percent, r.app.connections, r.app.max_size
        ),
    };
    let mut summary = format!(
        "{usage}; {} idle in transaction",
        r.server.idle_in_transaction.len()
    );
    let mut perfdata = vec![
        format!(
            "{}={:.1}%;{warn};{warn};0;100",
            label("app_usage"),
            r.app.usage_percent
        ),
        format!("connections={};;;0;{}", r.app.connections, r.app.max_size),
        format!("idle_in_transaction={}", r.server.idle_in_transaction.len()),
        format!(
            "server_backends={};;;0;{}",
            r.server.backends, r.server.max_connections
        ),
    ];
    if let Some(b) = &r.pgbouncer {
        let waiting: i64 = b.status.pools.iter().map(|p| p.clients_waiting).sum();
        summary.push_str(&format!("; {waiting} clients waiting in pgbouncer"));
        perfdata.push(format!("pgbouncer_waiting={waiting};0;0;0"));
    }
    NagiosCheck {
        service: "POOL_STATUS",
        state,
        summary,
        perfdata,
    }
}
