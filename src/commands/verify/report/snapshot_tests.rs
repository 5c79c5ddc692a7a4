//! Snapshots of the verify report in every format, from reports built by hand
//! with the README tour's checks: a healthy deploy, failures under --strict,
//! one check alone, no check at all, and the replication figures of a
//! primary with a standby and a slot and of a standby whose replay is paused.

use super::{
    Check, IndexFigures, Replay, ReplicationFigures, Role, Slot, StandbyLink, Status, VerifyReport,
};
use crate::report::snapshot::assert_formats;
use crate::report::{Outcome, Report};
use std::time::Duration;

fn check(name: &str, status: Status, detail: &str, fix: Option<&str>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_string),
        duration_seconds: 0.012,
    }
}

fn pass(name: &str, detail: &str) -> Check {
    check(name, Status::Pass, detail, None)
}

const REDUNDANCY_FIX: &str = "\
DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_date_desc\";  -- it is in the built-in set: give [indexes] file a copy of sql/indexes.sql without it
DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_store_name\";  -- it is in the built-in set: give [indexes] file a copy of sql/indexes.sql without it";

/// The README tour's `verify` after create-indexes: ten passes and the
/// redundancy warning the built-in set carries.
fn tour() -> Vec<Check> {
    vec![
        pass("config", "pool size: 20 (target: 20)\nmax_overflow: 40 (target: 40)\npre_ping (health check on checkout): on (target: on)\nrecycle: 1h (target: 1h)\ntimeout: 30s (target: 30s)"),
        pass("connectivity", "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) at /tmp/o2o-db-pg-tSMVsr/sock:39245/o2o_dashboard: connected in 44.6 ms, round trip 0.02 ms (median of 5)"),
        pass("pool", "opened 20 of 20 connections (min_idle) in 364 ms (timeout 30s); max_size 60; health check on checkout: on"),
        pass("headroom", "max_connections 200 - reserved 3 - in use 0 = 197 free; the pool's max_size 60 fits (137 to spare)"),
        pass("schema", "public.orders: 16 columns; it takes all 11 managed indexes of built-in sql/indexes.sql"),
        pass("indexes", "all 11 managed indexes present, valid and as defined in built-in sql/indexes.sql"),
        pass("planner", "8 queries reach orders through an index (1 not expected to: count_all):\nby_store: idx_orders_store_name\nstore_date: idx_orders_store_date\nchannel_revenue: idx_orders_store_date\ntop_products: idx_orders_store_date\ncategory_share: idx_orders_date_desc\nby_time_period: idx_orders_store_date\nby_scene: idx_orders_date_channel\nlatest_orders: idx_orders_date_desc"),
        pass("speed", "medians of 5 runs, all under 100 ms (ms):\ncount_all 9.59, by_store 7.65, store_date 0.60\nchannel_revenue 1.16, top_products 6.65, category_share 1.11\nby_time_period 0.18, by_scene 0.38, latest_orders 0.14"),
        pass("statistics", "public.orders analyzed 0s ago (manual): 93728 rows, 0 modified since (0.0%, limit 10%)"),
        check("redundancy", Status::Warn, "idx_orders_date_desc is covered by idx_orders_date_channel (read backwards)\nidx_orders_store_name is covered by idx_orders_store_date, idx_orders_store_channel, idx_orders_store_product", Some(REDUNDANCY_FIX)),
        pass("sessions", "no session idle in transaction or running longer than 5m (0 sessions of other clients on this database)"),
        pass("replication", "no standbys (pg_stat_replication is empty) and no replication slots"),
    ]
}

#[test]
fn the_tour_verify() {
    let mut r = VerifyReport::new(tour(), false, Duration::from_millis(590));
    r.database = "o2o_dashboard".into();
    r.server = Some("/tmp/o2o-db-pg-tSMVsr/sock:39245".into());
    r.table = Some("public.orders".into());
    r.role = Some(Role::Primary);
    r.replication = Some(ReplicationFigures::default());
    r.analyze_age_seconds = Some(12.5);
    let index = |name: &str, exists, valid, matches, size_bytes, scans| IndexFigures {
        name: name.into(),
        table: "public.orders".into(),
        exists,
        valid,
        matches,
        size_bytes,
        scans,
    };
    r.indexes = vec![
        index(
            "idx_orders_store_date",
            true,
            true,
            true,
            720_896,
            Some(412),
        ),
        index("idx_orders_scene", true, false, false, 679_936, Some(0)),
        index("idx_orders_channel", false, false, false, 0, None),
    ];
    assert_eq!((r.summary.passed, r.summary.warned), (11, 1));
    assert_eq!(r.outcome(), Outcome::Clean);
    assert_formats!("tour", r);
}

#[test]
fn failures_under_strict() {
    let mut checks = tour();
    checks[5] = check(
        "indexes",
        Status::Fail,
        "2 of 11 managed indexes are not as they should be:\nidx_orders_scene: missing\nidx_orders_channel: INVALID (a failed concurrent build)",
        Some("o2o-db create-indexes"),
    );
    checks[7] = check(
        "speed",
        Status::Fail,
        "could not check: query count_all (built-in sql/benchmark.sql:3): canceling statement due to statement timeout",
        Some("resolve the error shown, then run `o2o-db verify --only speed` again"),
    );
    let r = VerifyReport::new(checks, true, Duration::from_millis(2_345));
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("strict-failures", r);
}

#[test]
fn one_check_alone() {
    let only = tour().swap_remove(1);
    assert_formats!(
        "only-connectivity",
        VerifyReport::new(vec![only], false, Duration::from_millis(47))
    );
}

#[test]
fn no_check() {
    assert_formats!(
        "empty",
        VerifyReport::new(Vec::new(), false, Duration::ZERO)
    );
}

#[test]
fn a_primary_with_a_standby_and_a_slot() {
    let mut r = VerifyReport::new(
        vec![check(
            "replication",
            Status::Warn,
            "standby replica1 (10.0.0.7): streaming, async: behind by 0 bytes written, 0 bytes flushed, 4 kB replayed; lag write 0.00 s, flush 0.00 s, replay 0.31 s\nslot old_replica (physical, inactive, wal_status reserved): keeps 48.0 MB of WAL",
            Some("SELECT pg_drop_replication_slot('old_replica');  -- if what used it is gone for good: an inactive slot keeps WAL until the disk fills"),
        )],
        false,
        Duration::from_millis(40),
    );
    r.database = "o2o_dashboard".into();
    r.server = Some("10.0.0.5:5432".into());
    r.role = Some(Role::Primary);
    r.replication = Some(ReplicationFigures {
        standbys: vec![StandbyLink {
            application_name: "replica1".into(),
            client_addr: Some("10.0.0.7".into()),
            state: Some("streaming".into()),
            sync_state: Some("async".into()),
            write_lag_bytes: Some(0),
            flush_lag_bytes: Some(0),
            replay_lag_bytes: Some(4096),
            write_lag_seconds: Some(0.0002),
            flush_lag_seconds: Some(0.0015),
            replay_lag_seconds: Some(0.31),
        }],
        slots: vec![Slot {
            name: "old_replica".into(),
            kind: "physical".into(),
            active: false,
            wal_status: Some("reserved".into()),
            retained_bytes: Some(48 * 1024 * 1024),
        }],
        replay: None,
    });
    assert_formats!("primary-replication", r);
}

#[test]
fn a_standby_with_replay_paused() {
    let mut r = VerifyReport::new(
        vec![
            pass("statistics", "public.orders on a hot standby: 93728 rows per pg_class.reltuples and planner statistics for 16 columns, replicated from the primary (when ANALYZE ran and what changed since are counted on the primary: run verify there)"),
            check(
                "replication",
                Status::Fail,
                "replay is paused (pg_get_wal_replay_pause_state): received up to 0/5723EA0, replayed up to 0/50EDBF8, 6.2 MB waiting, 12.40 s behind in time; this standby serves data as of its last replayed commit\nWAL receiver streaming from 10.0.0.5:5432\nnote: hot_standby_feedback = off, max_standby_streaming_delay = 30s: a dashboard query that reads rows the primary has since vacuumed is cancelled after 30s (hot_standby_feedback = on prevents that, at the cost of bloat on the primary)",
                Some("SELECT pg_wal_replay_resume();  -- on this standby"),
            ),
        ],
        false,
        Duration::from_millis(52),
    );
    r.database = "o2o_dashboard".into();
    r.server = Some("10.0.0.8:5432".into());
    r.role = Some(Role::Standby);
    r.table = Some("public.orders".into());
    r.replication = Some(ReplicationFigures {
        standbys: Vec::new(),
        slots: Vec::new(),
        replay: Some(Replay {
            receive_lsn: Some("0/5723EA0".into()),
            replay_lsn: Some("0/50EDBF8".into()),
            receive_replay_bytes: Some(6_500_000),
            lag_seconds: Some(12.4),
            pause_state: "paused".into(),
            receiver_status: Some("streaming".into()),
            receiver_running: true,
            primary: Some("10.0.0.5:5432".into()),
            primary_conninfo_set: Some(true),
            hot_standby_feedback: "off".into(),
            max_standby_streaming_delay: "30s".into(),
        }),
    });
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_formats!("standby-paused", r);
}
