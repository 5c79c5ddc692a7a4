//! Snapshots of the pool-status report in every format, from reports built by
//! hand: the README tour's idle server, a busy one with leaks and the alert,
//! clients queued in pgbouncer, and --load runs that queued, failed, were
//! interrupted or hit pgbouncer's pool size.

use super::super::bouncer::example_status;
use super::super::watch;
use super::super::{AppUsage, BouncerSection, BouncerUnderLoad, LoadReport, PoolStatusReport};
use super::super::{
    ApplicationGroup, IdleSession, OwnBackend, PoolFigures, PoolerGroup, ServerFigures,
};
use crate::config::HumanDuration;
use crate::db::CheckoutStats;
use crate::report::snapshot::{assert_formats, rendered};
use crate::report::{Format, Outcome, Report};
use std::time::Duration;

fn secs(s: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(s))
}

/// The README tour's `pool-status`: the default pool, nobody connected.
fn tour() -> PoolStatusReport {
    PoolStatusReport {
        taken_at: "2026-11-26T07:38:04Z".into(),
        target: "/tmp/o2o-db-pg-tSMVsr/sock:39245/o2o_dashboard".into(),
        reached: "/tmp/o2o-db-pg-tSMVsr/sock:39245".into(),
        pool: PoolFigures {
            size: 20,
            max_overflow: 40,
            max_size: 60,
            pre_ping: true,
            recycle: secs(3600),
            timeout: secs(30),
            connections: 0,
            idle: 0,
            checked_out: 0,
            usage_percent: 0.0,
            checkout: CheckoutStats::default(),
        },
        server: ServerFigures {
            database: "o2o_dashboard".into(),
            max_connections: 200,
            reserved: 3,
            backends: 0,
            usage_percent: 0.0,
            by_application: Vec::new(),
            pooler_servers: Vec::new(),
            idle_in_transaction: Vec::new(),
            session_age_seconds: 300.0,
            hidden_sessions: 0,
            restricted_role: None,
            own_backend: OwnBackend {
                pid: 10246,
                via: "direct",
                counted: false,
            },
        },
        app: AppUsage {
            name: "o2o-db".into(),
            connections: 0,
            direct: 0,
            through_pgbouncer: None,
            max_size: 60,
            usage_percent: 0.0,
            alert_percent: 80.0,
            not_judged: None,
        },
        alert: false,
        load: None,
        pgbouncer: None,
    }
}

fn group(
    application: &str,
    state: &str,
    connections: i64,
    oldest_seconds: f64,
) -> ApplicationGroup {
    ApplicationGroup {
        application: application.into(),
        state: state.into(),
        connections,
        oldest_seconds,
    }
}

/// The dashboard's API holding 50 of its 60 connections, two of them leaked.
fn busy() -> PoolStatusReport {
    let mut r = tour();
    // A multi-host URL: the header names the host that answered.
    r.target = "db1:5432,db2:5433/o2o_dashboard".into();
    r.reached = "db2:5433".into();
    r.pool.connections = 1;
    r.pool.idle = 1;
    r.pool.usage_percent = 0.0;
    r.pool.checkout.checkouts = 1;
    r.server.backends = 53;
    r.server.usage_percent = 26.9;
    r.server.by_application = vec![
        group("dashboard-api", "active", 12, 0.42),
        group("dashboard-api", "idle", 36, 192.0),
        group("dashboard-api", "idle in transaction", 1, 912.0),
        group("dashboard-api", "idle in transaction (aborted)", 1, 7500.0),
        group("", "idle", 1, 42.0),
        group("reporting", "(hidden)", 2, 0.0),
    ];
    r.server.idle_in_transaction = vec![
        IdleSession {
            pid: 31337,
            application: "dashboard-api".into(),
            user: "o2o".into(),
            client_addr: "10.0.3.7".into(),
            state: "idle in transaction".into(),
            idle_seconds: 912.0,
            transaction_seconds: Some(915.4),
            query: "UPDATE orders\n   SET scene = '午餐', time_period = '中午'\n WHERE order_id = 8812 AND store_name = '旗舰店'".into(),
        },
        IdleSession {
            pid: 31340,
            application: "dashboard-api".into(),
            user: "o2o".into(),
            client_addr: "local".into(),
            state: "idle in transaction (aborted)".into(),
            idle_seconds: 7500.0,
            transaction_seconds: None,
            query: "SELECT 1/0".into(),
        },
    ];
    r.server.hidden_sessions = 2;
    r.server.restricted_role = Some("dashboard".into());
    r.server.own_backend = OwnBackend {
        pid: 10311,
        via: "pool",
        counted: true,
    };
    r.app = AppUsage {
        name: "dashboard-api".into(),
        connections: 50,
        direct: 50,
        usage_percent: 83.3,
        ..r.app
    };
    r.alert = true;
    r
}

/// The dashboard's API through transaction-mode pgbouncer: its 27 clients
/// there are its usage, the 20 server connections are pgbouncer's pool, all
/// busy, and 7 clients queue for one.
fn through_pgbouncer() -> PoolStatusReport {
    let mut r = tour();
    r.server.backends = 20;
    r.server.usage_percent = 10.1;
    r.server.pooler_servers = vec![
        PoolerGroup {
            state: "active".into(),
            connections: 18,
            oldest_seconds: 0.01,
        },
        PoolerGroup {
            state: "idle".into(),
            connections: 2,
            oldest_seconds: 0.002,
        },
    ];
    r.app = AppUsage {
        name: "dashboard-api".into(),
        connections: 27,
        direct: 0,
        through_pgbouncer: Some(27),
        usage_percent: 45.0,
        ..r.app
    };
    r.pgbouncer = Some(BouncerSection::judge(example_status(7, 0.31), 0.05));
    r
}

/// `--load 100 --duration 10s`: the tour's pool under 100 sessions, some queued.
fn load() -> LoadReport {
    LoadReport {
        sessions: 100,
        duration_seconds: 10.02,
        hold_ms: 10.0,
        application: "o2o-db-load".into(),
        completed: 48_213,
        sessions_per_second: 4811.7,
        checkouts: 48_213,
        waits: 1_877,
        wait_ms_max: 41.37,
        checkout_ms_p50: 0.004,
        checkout_ms_p95: 9.87,
        checkout_ms_p99: 14.2,
        timeouts: 0,
        timeout_ms: 30_000.0,
        connection_errors: 0,
        query_errors: 0,
        peak_checked_out: 60,
        first_error: None,
        interrupted: false,
        pgbouncer: None,
    }
}

#[test]
fn the_tour_pool_status() {
    assert_eq!(tour().outcome(), Outcome::Clean);
    assert_formats!("tour", tour());
}

#[test]
fn clients_queued_in_pgbouncer_alert_and_its_servers_are_its_own() {
    let r = through_pgbouncer();
    assert!(!r.alert, "27 of 60 is not the usage alert");
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("pgbouncer-waiting", r);
}

#[test]
fn through_a_transaction_pooler_without_its_console_the_usage_is_not_judged() {
    let mut r = tour();
    r.server.backends = 20;
    r.server.by_application = vec![group("dashboard-api", "idle", 20, 3.0)];
    r.app = AppUsage {
        name: "dashboard-api".into(),
        connections: 20,
        direct: 20,
        usage_percent: 33.3,
        not_judged: Some(
            "10.0.3.2:6432/o2o_dashboard pools server connections per transaction, so the server's backends are the pooler's, whatever application_name they carry; its admin console at 10.0.3.2:6432/pgbouncer could not be read (cannot connect to 10.0.3.2:6432/pgbouncer: FATAL: not allowed): pass --pgbouncer URL as an admin_users or stats_users role".into(),
        ),
        ..r.app
    };
    assert_eq!(r.outcome(), Outcome::Clean);
    assert_eq!(
        r.nagios().unwrap().state,
        crate::report::nagios::NagiosState::Unknown
    );
    assert_formats!("not-judged", r);
}

#[test]
fn a_load_pgbouncer_was_the_limit_of() {
    let mut load = load();
    load.pgbouncer = Some(BouncerUnderLoad {
        database: "o2o_dashboard".into(),
        pool_size: 20,
        samples: 100,
        peak_clients_waiting: 40,
        peak_servers_active: 20,
        max_wait_seconds: 0.41,
    });
    let r = loaded(load);
    assert_eq!(r.outcome(), Outcome::Clean);
    let table = rendered(&r, Format::Table);
    assert!(
        table.contains("default_pool_size") && !table.contains("raise [pool] max_overflow"),
        "{table}"
    );
    assert_formats!("load-pgbouncer-limit", r);
}

#[test]
fn leaks_hidden_sessions_and_the_alert() {
    let r = busy();
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("alert", r);
}

/// The report after `load`: the pool figures are those of the pool that carried it.
fn loaded(load: LoadReport) -> PoolStatusReport {
    let mut r = tour();
    r.pool.connections = load.peak_checked_out;
    r.pool.idle = load.peak_checked_out;
    r.pool.checkout = CheckoutStats {
        checkouts: load.checkouts,
        waits: load.waits,
        wait_ms_total: 2_310.5,
        wait_ms_max: load.wait_ms_max,
        timeouts: load.timeouts,
        connection_errors: load.connection_errors,
    };
    r.load = Some(load);
    r
}

#[test]
fn a_load_the_pool_carried_with_queueing() {
    let r = loaded(load());
    assert_eq!(r.outcome(), Outcome::Clean);
    assert_formats!("load-queued", r);
}

#[test]
fn a_load_that_failed_and_was_interrupted() {
    let failed = LoadReport {
        duration_seconds: 3.4,
        completed: 9_120,
        sessions_per_second: 2682.4,
        checkouts: 9_120,
        timeouts: 14,
        connection_errors: 1,
        first_error: Some("timed out waiting for a connection after 30s (pool max_size 60)".into()),
        interrupted: true,
        ..load()
    };
    let r = loaded(failed.clone());
    assert_eq!(r.outcome(), Outcome::Interrupted);
    assert_formats!("load-failed-interrupted", r);
    let not_stopped = loaded(LoadReport {
        interrupted: false,
        ..failed
    });
    assert_eq!(not_stopped.outcome(), Outcome::Findings);
}

#[test]
fn watch_frames_appended_redrawn_and_as_json_lines() {
    let every = Duration::from_secs(5);
    let frame = |format, redraw| {
        let bytes = match watch::frame(&busy(), format, redraw, every) {
            Ok(bytes) => bytes,
            Err(e) => panic!("{e:#}"),
        };
        // The terminal's clear-screen escape, made visible.
        String::from_utf8_lossy(&bytes).replace('\x1b', "<ESC>")
    };
    let appended = frame(Format::Table, false);
    assert_eq!(appended, format!("{}\n", rendered(&busy(), Format::Table)));
    insta::assert_snapshot!("watch-redrawn", frame(Format::Table, true));
    let line = frame(Format::Json, false);
    assert_eq!(line.lines().count(), 1, "{line}");
    insta::assert_snapshot!("watch-json-line", line);
}
