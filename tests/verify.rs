// verify: every check passes on a healthy database and fails (or warns) on
// the breakage it exists for; the CLI's JSON shape, selection and exit codes.
// Here the helpers and the full pass; checks.rs takes one check at a time,
// cli.rs the command line.

mod checks;
mod cli;

use crate::support::{self, TestDb};
use o2o_db::commands::verify::{self, Check, Status, VerifyArgs, VerifyReport};
use o2o_db::config::Config;
use o2o_db::report::{Outcome, Report};
use o2o_db::sqlfiles::IndexSet;
use std::time::Duration;

const ORDERS: u64 = 3000;

/// The test database's config, with verify's pool targets set to the small test pool.
fn test_config(db: &TestDb) -> Config {
    let mut c = db.config();
    c.verify.target = c.pool.clone();
    c
}

/// The 11 managed indexes, built with plain CREATE INDEX, then ANALYZE.
fn create_builtin_indexes(db: &TestDb) {
    let mut c = db.client();
    for spec in IndexSet::builtin().unwrap().indexes {
        c.batch_execute(&spec.create_sql(false)).unwrap();
    }
    c.batch_execute("ANALYZE orders").unwrap();
}

fn only(names: &[&str]) -> VerifyArgs {
    VerifyArgs {
        only: names.iter().map(|s| s.to_string()).collect(),
        ..VerifyArgs::default()
    }
}

fn run(config: &Config, args: &VerifyArgs) -> VerifyReport {
    verify::run(config, args).unwrap()
}

pub(crate) fn check<'a>(report: &'a VerifyReport, name: &str) -> &'a Check {
    report
        .check(name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#?}"))
}

/// Runs verify, asserts that check `name` came out `status` and returns it.
fn expect(config: &Config, args: &VerifyArgs, name: &str, status: Status) -> Check {
    let report = run(config, args);
    let c = check(&report, name).clone();
    assert_eq!(c.status, status, "{name}: {}", c.detail);
    c
}

/// Asserts that the check's detail contains `text`.
pub(crate) fn says(c: &Check, text: &str) {
    assert!(
        c.detail.contains(text),
        "{}: expected `{text}` in:\n{}",
        c.name,
        c.detail
    );
}

/// Runs SQL on a fresh connection to the test database.
fn exec(db: &TestDb, sql: &str) {
    db.client()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Waits until the server's statistics show at least `rows` changes to orders
/// since its last ANALYZE: a backend's counts reach the shared statistics
/// when it flushes them (at exit at the latest), not when its statement ends.
fn wait_for_modified(db: &TestDb, rows: i64) {
    let sql = "SELECT COALESCE(max(n_mod_since_analyze), 0) FROM pg_stat_user_tables WHERE relname = 'orders'";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.scalar_i64(sql) < rows {
        assert!(
            std::time::Instant::now() < deadline,
            "the statistics never showed {rows} changed rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs each line of a fix that is SQL (comments after `--` dropped).
fn apply_fix(db: &TestDb, fix: &str) {
    let mut c = db.client();
    for line in fix.lines() {
        let sql = line.split("--").next().unwrap_or("").trim();
        if !sql.is_empty() {
            c.batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

#[test]
fn a_fully_indexed_analyzed_database_passes_every_check() {
    let db = TestDb::seeded("verify_healthy", ORDERS);
    create_builtin_indexes(&db);
    // The speed check's limit is the machine's business, not this test's:
    // queries_slower_than_the_threshold_fail_speed tests the threshold.
    let mut config = test_config(&db);
    config.alert.query_ms = support::GENEROUS_MS;
    let report = run(&config, &VerifyArgs::default());
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, verify::CHECK_NAMES);
    for c in report.checks.iter().filter(|c| c.name != "redundancy") {
        assert_eq!(c.status, Status::Pass, "{}: {}", c.name, c.detail);
        assert!(c.fix.is_none(), "{}: {:?}", c.name, c.fix);
    }
    // The V8.5 set itself carries an index its composites cover: a warning, not a failure.
    let r = check(&report, "redundancy");
    assert_eq!(r.status, Status::Warn, "{}", r.detail);
    says(r, "idx_orders_store_name is covered by idx_orders_store_");
    assert_eq!(report.outcome(), Outcome::Clean);
    assert_eq!((report.summary.passed, report.summary.warned), (11, 1));
    assert_eq!(report.role, Some(verify::Role::Primary));
    // Details carry the numbers a DBA checks.
    says(check(&report, "config"), "pool size: 2 (target: 2)");
    says(check(&report, "connectivity"), "PostgreSQL 15");
    says(
        check(&report, "planner"),
        "store_date: idx_orders_store_date",
    );
    says(check(&report, "planner"), "not expected to: count_all");
    says(check(&report, "speed"), "all under 60000 ms");
    says(check(&report, "speed"), "count_all ");
    says(
        check(&report, "sessions"),
        "no session idle in transaction or running longer than 5m",
    );
    // --strict turns the warning into a failing run.
    let strict = VerifyArgs {
        strict: true,
        ..only(&["redundancy"])
    };
    assert_eq!(run(&config, &strict).outcome(), Outcome::Findings);
}
