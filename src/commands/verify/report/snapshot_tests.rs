//! Snapshots of the verify report in every format, from reports built by hand
//! with the README tour's checks: a healthy deploy, failures under --strict,
//! one check alone and no check at all.

use super::{Check, IndexFigures, Status, VerifyReport};
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
    ]
}

#[test]
fn the_tour_verify() {
    let mut r = VerifyReport::new(tour(), false, Duration::from_millis(590));
    r.database = "o2o_dashboard".into();
    r.server = Some("/tmp/o2o-db-pg-tSMVsr/sock:39245".into());
    r.table = Some("public.orders".into());
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
    assert_eq!((r.summary.passed, r.summary.warned), (10, 1));
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
