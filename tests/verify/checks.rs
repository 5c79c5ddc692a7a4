// verify's checks one by one: each fails (or warns) on the breakage it exists
// for, with the fix, and passes once that is fixed.

use super::{
    apply_fix, check, exec, expect, only, run, says, test_config, wait_for_modified, ORDERS,
};
use crate::support::TestDb;
use o2o_db::commands::seed::{self, SeedArgs};
use o2o_db::commands::verify::{Status, VerifyArgs};
use o2o_db::config::HumanDuration;
use o2o_db::report::{Outcome, Report};
use o2o_db::sqlfiles::IndexSet;
use std::time::Duration;

#[test]
fn missing_invalid_and_drifted_indexes_fail_with_the_sql_that_fixes_them() {
    let db = TestDb::seeded("verify_indexes", ORDERS);
    let mut c = db.client();
    for spec in IndexSet::builtin().unwrap().indexes {
        let sql = match spec.name.as_str() {
            "idx_orders_product_name" => continue, // missing
            "idx_orders_channel" => {
                "CREATE INDEX idx_orders_channel ON orders (channel, scene)".into()
            }
            // A failed concurrent unique build leaves an INVALID index behind.
            "idx_orders_scene" => {
                assert!(c
                    .batch_execute(
                        "CREATE UNIQUE INDEX CONCURRENTLY idx_orders_scene ON orders (scene)"
                    )
                    .is_err());
                continue;
            }
            _ => spec.create_sql(false),
        };
        c.batch_execute(&sql).unwrap();
    }
    let config = test_config(&db);
    let report = run(&config, &only(&["indexes"]));
    assert_eq!(report.outcome(), Outcome::Findings);
    let ix = check(&report, "indexes");
    assert_eq!(ix.status, Status::Fail);
    says(ix, "8 of 11 managed indexes as defined");
    says(ix, "idx_orders_product_name: missing");
    says(ix, "idx_orders_scene: INVALID");
    says(ix, "idx_orders_channel: drifted");
    says(ix, "(channel, scene)");
    let fix = ix.fix.as_deref().unwrap();
    for want in [
        "CREATE INDEX CONCURRENTLY \"idx_orders_product_name\" ON \"orders\" (product_name);",
        "DROP INDEX CONCURRENTLY IF EXISTS \"idx_orders_scene\";",
        "DROP INDEX CONCURRENTLY IF EXISTS \"idx_orders_channel\";",
    ] {
        assert!(fix.contains(want), "{want} not in {fix}");
    }
    // The fix is exactly what it takes.
    apply_fix(&db, fix);
    expect(&config, &only(&["indexes"]), "indexes", Status::Pass);
}

#[test]
fn a_table_missing_columns_or_missing_altogether_fails_schema() {
    let db = TestDb::with_schema("verify_schema");
    exec(
        &db,
        "ALTER TABLE orders DROP COLUMN scene, DROP COLUMN time_period",
    );
    let config = test_config(&db);
    let report = run(&config, &only(&["schema", "indexes"]));
    let s = check(&report, "schema");
    assert_eq!(s.status, Status::Fail);
    says(s, "cannot take 2 of the 11 managed indexes");
    says(
        s,
        "idx_orders_scene (built-in sql/indexes.sql:16): ERROR: column \"scene\" does not exist",
    );
    says(s, "idx_orders_time_period (");
    // indexes cannot judge definitions on such a table: it fails too, saying why.
    let ix = check(&report, "indexes");
    assert_eq!(ix.status, Status::Fail);
    assert!(ix.detail.starts_with("could not check: "), "{}", ix.detail);

    let empty = TestDb::empty("verify_no_table");
    let s = expect(
        &test_config(&empty),
        &only(&["schema"]),
        "schema",
        Status::Fail,
    );
    assert!(
        s.detail.starts_with("table \"orders\" does not exist"),
        "{}",
        s.detail
    );
}

#[test]
fn a_never_analyzed_table_fails_statistics_and_a_stale_one_warns() {
    let db = TestDb::with_schema("verify_stats");
    let mut c = db.client();
    // Autovacuum off for the table, so it cannot analyze it behind the test's back.
    c.batch_execute("ALTER TABLE orders SET (autovacuum_enabled = false)")
        .unwrap();
    let args = SeedArgs {
        orders: 2000,
        no_analyze: true,
        ..SeedArgs::default()
    };
    seed::load(&mut c, &db.config(), &args).unwrap();
    drop(c);
    // The load's counts must land before the ANALYZE below, or they would count as changes after it.
    wait_for_modified(&db, 2000);
    let config = test_config(&db);
    let stats = only(&["statistics"]);
    let s = expect(&config, &stats, "statistics", Status::Fail);
    assert!(
        s.detail
            .starts_with("public.orders has never been analyzed"),
        "{}",
        s.detail
    );
    assert_eq!(s.fix.as_deref(), Some("ANALYZE \"public\".\"orders\";"));
    apply_fix(&db, s.fix.as_deref().unwrap());
    let s = expect(&config, &stats, "statistics", Status::Pass);
    says(&s, "2000 rows, 0 modified since");
    // A third of the rows changed since: stale (the limit is 10%).
    exec(
        &db,
        "UPDATE orders SET scene = '堂食' WHERE order_id % 3 = 0",
    );
    wait_for_modified(&db, 666);
    let s = expect(&config, &stats, "statistics", Status::Warn);
    says(&s, "666 modified since (33.3%, limit 10%)");
}

#[test]
fn a_session_left_idle_in_transaction_warns_with_pid_application_and_age() {
    let db = TestDb::seeded("verify_sessions", 500);
    let mut config = test_config(&db);
    config.verify.session_age = Duration::from_millis(100);
    // The pool check's own idle connections are not the application's.
    let sessions = only(&["pool", "sessions"]);
    expect(&config, &sessions, "sessions", Status::Pass);

    let mut conn = db.conn.clone();
    conn.application_name = Some("leaky-dashboard".into());
    let mut leaky = o2o_db::db::connect(&conn).unwrap();
    let pid: i32 = leaky
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    leaky
        .batch_execute("BEGIN; SELECT count(*) FROM orders")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let s = expect(&config, &sessions, "sessions", Status::Warn);
    assert!(
        s.detail.starts_with("1 session idle in transaction"),
        "{}",
        s.detail
    );
    says(
        &s,
        &format!("pid {pid} (leaky-dashboard, user postgres): idle in transaction for "),
    );
    let fix = s.fix.unwrap();
    assert!(
        fix.starts_with(&format!("SELECT pg_terminate_backend({pid});")),
        "{fix}"
    );
    leaky.batch_execute("COMMIT").unwrap();
    expect(&config, &sessions, "sessions", Status::Pass);
}

#[test]
fn a_pool_too_large_for_the_free_slots_warns_headroom() {
    let db = TestDb::empty("verify_headroom");
    let mut config = test_config(&db);
    // The test server has max_connections 200: a 502-connection pool cannot fit.
    config.pool.max_overflow = 500;
    let report = run(&config, &only(&["headroom"]));
    let h = check(&report, "headroom");
    assert_eq!(h.status, Status::Warn, "{}", h.detail);
    assert!(
        h.detail
            .starts_with("the pool's max_size 502 cannot fit in "),
        "{}",
        h.detail
    );
    says(h, "max_connections 200 - reserved 3 - in use ");
    let fix = h.fix.as_deref().unwrap();
    assert!(fix.contains("ALTER SYSTEM SET max_connections = "), "{fix}");
    assert_eq!(report.outcome(), Outcome::Clean);
    let strict = VerifyArgs {
        strict: true,
        ..only(&["headroom"])
    };
    assert_eq!(run(&config, &strict).outcome(), Outcome::Findings);
}

#[test]
fn a_query_without_its_index_fails_planner_then_passes_once_indexed() {
    let db = TestDb::seeded("verify_planner", ORDERS);
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.sql");
    std::fs::write(
        &suite,
        "-- name: by_category\n-- index: yes\n-- params: SELECT DISTINCT category_l2 FROM orders\n\
         SELECT count(*), sum(amount) FROM orders WHERE category_l2 = $1;\n",
    )
    .unwrap();
    let config = test_config(&db);
    let args = VerifyArgs {
        queries: Some(suite),
        ..only(&["planner"])
    };
    let p = expect(&config, &args, "planner", Status::Fail);
    says(&p, "by_category: Seq Scan on orders (parameters '");
    says(&p, "'::text)");
    let fix = p.fix.unwrap();
    assert!(fix.contains("ANALYZE \"public\".\"orders\""), "{fix}");
    exec(
        &db,
        "CREATE INDEX idx_orders_category_l2 ON orders (category_l2); ANALYZE orders",
    );
    let p = expect(&config, &args, "planner", Status::Pass);
    says(&p, "by_category: idx_orders_category_l2");
}

/// A seq scan the planner prices cheaper than the index it has (most of the
/// table matches) is its judgement, a WARN with both costs; without that
/// index the same query FAILs.
#[test]
fn a_seq_scan_cheaper_than_the_index_is_a_warning_not_a_failure() {
    let db = TestDb::seeded("verify_cheaper", ORDERS);
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.sql");
    std::fs::write(
        &suite,
        "-- name: most_orders\n-- index: yes\n-- params: SELECT 1\n\
         SELECT count(*), sum(amount) FROM orders WHERE quantity >= $1;\n",
    )
    .unwrap();
    let config = test_config(&db);
    let args = VerifyArgs {
        queries: Some(suite),
        ..only(&["planner"])
    };
    let p = expect(&config, &args, "planner", Status::Fail);
    says(&p, "none would serve them");
    exec(
        &db,
        "CREATE INDEX idx_orders_quantity ON orders (quantity); ANALYZE orders",
    );
    let p = expect(&config, &args, "planner", Status::Warn);
    says(
        &p,
        "most_orders: Seq Scan on orders, estimated cheaper than idx_orders_quantity (cost ",
    );
    says(&p, "(parameters '1'::int4)");
    assert!(p.fix.unwrap().starts_with("nothing to build"));
}

#[test]
fn queries_slower_than_the_threshold_fail_speed() {
    let db = TestDb::seeded("verify_speed", 500);
    let mut config = test_config(&db);
    config.verify.runs = 3;
    let args = VerifyArgs {
        max_ms: Some(0.000_001),
        ..only(&["speed"])
    };
    let s = expect(&config, &args, "speed", Status::Fail);
    assert!(
        s.detail
            .starts_with("9 of 9 queries on public.orders slower than 0.000001 ms"),
        "{}",
        s.detail
    );
    says(&s, "count_all: median ");
    says(&s, "medians of 3 runs (ms):");
    // Without --max-ms the threshold is [alert] query_ms.
    config.alert.query_ms = 60_000.0;
    expect(&config, &only(&["speed"]), "speed", Status::Pass);
}

#[test]
fn pool_settings_below_target_fail_config_and_no_health_check_fails_pool() {
    let db = TestDb::empty("verify_config");
    let mut config = db.config();
    config.pool.pre_ping = false;
    config.verify.target.size = 20;
    config.verify.target.recycle = HumanDuration(Duration::from_secs(600));
    let report = run(&config, &only(&["config", "pool"]));
    let c = check(&report, "config");
    assert_eq!(c.status, Status::Fail);
    says(c, "pool size: 2 (target: 20)  <- off target");
    says(c, "recycle: 1h (target: 10m)  <- off target");
    let fix = c.fix.as_deref().unwrap();
    for want in ["size = 20\n", "pre_ping = true\n", "recycle = \"10m\""] {
        assert!(fix.contains(want), "{want} not in {fix}");
    }
    let p = check(&report, "pool");
    assert_eq!(p.status, Status::Fail);
    assert!(
        p.detail.starts_with("opened 2 of 2 connections"),
        "{}",
        p.detail
    );
    says(p, "health check on checkout: off");
    // Targets met: both pass.
    let report = run(&test_config(&db), &only(&["config", "pool"]));
    assert_eq!(report.outcome(), Outcome::Clean);
}

#[test]
fn no_redundancy_among_distinct_indexes_and_unused_ones_are_info() {
    let db = TestDb::seeded("verify_redundancy", 500);
    let two = "CREATE INDEX idx_orders_store_date ON orders (store_name, date);\n\
               CREATE INDEX idx_orders_date_channel ON orders (date, channel);\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("indexes.sql");
    std::fs::write(&file, two).unwrap();
    let mut c = db.client();
    c.batch_execute(two).unwrap();
    let config = test_config(&db);
    let args = VerifyArgs {
        indexes: Some(file),
        ..only(&["indexes", "redundancy"])
    };
    expect(&config, &args, "indexes", Status::Pass);
    let r = expect(&config, &args, "redundancy", Status::Pass);
    assert!(
        r.detail
            .starts_with("no index on orders is covered by another (3 valid indexes)"),
        "{}",
        r.detail
    );
    says(&r, "info: 2 never used since");
    // An unmanaged duplicate of a prefix is named, with the drop that removes it.
    c.batch_execute("CREATE INDEX extra_store ON orders (store_name)")
        .unwrap();
    let r = expect(&config, &args, "redundancy", Status::Warn);
    assert!(
        r.detail
            .starts_with("extra_store is covered by idx_orders_store_date"),
        "{}",
        r.detail
    );
    assert_eq!(
        r.fix.as_deref(),
        Some("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"extra_store\";")
    );
}
