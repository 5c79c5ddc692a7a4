//! pool-status for Prometheus and Nagios: the pool's size and use, its
//! checkout counters, the server's connections by application and state, and
//! the sessions idle in transaction; Nagios says OK or CRITICAL by the alert.

use super::PoolStatusReport;
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
    e.family(
        "o2o_db_app_usage_ratio",
        Kind::Gauge,
        "The application's connections over its pool's max_size (0-1); the alert is at alert_ratio.",
        vec![(
            [base.clone(), vec![("application", r.app.name.clone())]].concat(),
            r.app.usage_percent / 100.0,
        )],
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
    if let Some(pools) = &r.pgbouncer {
        let each = |f: fn(&crate::db::pgbouncer::BouncerPool) -> f64| -> Vec<(Labels, f64)> {
            pools
                .iter()
                .map(|p| {
                    let labels: Labels = vec![
                        ("database", p.database.clone()),
                        ("user", p.user.clone()),
                        ("pool_mode", p.pool_mode.clone()),
                    ];
                    (labels, f(p))
                })
                .collect()
        };
        e.family(
            "o2o_db_pgbouncer_clients_waiting",
            Kind::Gauge,
            "Clients of the pgbouncer pool waiting for a server connection.",
            each(|p| p.clients_waiting as f64),
        );
        e.family(
            "o2o_db_pgbouncer_clients_active",
            Kind::Gauge,
            "Clients of the pgbouncer pool linked to a server connection.",
            each(|p| p.clients_active as f64),
        );
        e.family(
            "o2o_db_pgbouncer_max_wait_seconds",
            Kind::Gauge,
            "How long the pool's oldest waiting client has waited.",
            each(|p| p.max_wait_seconds),
        );
        e.family(
            "o2o_db_pgbouncer_servers",
            Kind::Gauge,
            "The pool's server connections in use (active) and idle.",
            pools
                .iter()
                .flat_map(|p| {
                    [("active", p.servers_active), ("idle", p.servers_idle)].map(|(state, n)| {
                        let labels: Labels = vec![
                            ("database", p.database.clone()),
                            ("user", p.user.clone()),
                            ("pool_mode", p.pool_mode.clone()),
                            ("state", state.to_string()),
                        ];
                        (labels, n as f64)
                    })
                })
                .collect(),
        );
    }
    w.write_all(e.into_string().as_bytes())?;
    Ok(())
}

pub fn nagios(r: &PoolStatusReport) -> NagiosCheck {
    let state = if r.alert {
        NagiosState::Critical
    } else if !r.server.idle_in_transaction.is_empty() {
        NagiosState::Warning
    } else {
        NagiosState::Ok
    };
    let warn = r.app.alert_percent;
    NagiosCheck {
        service: "POOL_STATUS",
        state,
        summary: format!(
            "{} at {:.1}% of its pool ({} of {} connections), alert at {warn}%; {} idle in transaction",
            r.app.name,
            r.app.usage_percent,
            r.app.connections,
            r.app.max_size,
            r.server.idle_in_transaction.len()
        ),
        perfdata: vec![
            format!("{}={:.1}%;{warn};{warn};0;100", label("app_usage"), r.app.usage_percent),
            format!("connections={};;;0;{}", r.app.connections, r.app.max_size),
            format!("idle_in_transaction={}", r.server.idle_in_transaction.len()),
            format!("server_backends={};;;0;{}", r.server.backends, r.server.max_connections),
        ],
    }
}
