// benchmark under killed backends: each kill is one failed run, and the run
// goes on, on a fresh dedicated connection or a replaced pooled one.

use crate::support::TestDb;
use o2o_db::commands::benchmark::{self, BenchmarkArgs, BenchmarkReport};
use o2o_db::config::HumanDuration;
use o2o_db::report::{Outcome, Report};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Our backends that run latest_orders (the run's, not the setup's).
const OURS: &str = "datname = current_database() AND application_name = 'o2o-db-test' \
                    AND pid <> pg_backend_pid() AND query LIKE '%LIMIT 50%'";

/// Once the run is executing (a backend seen running latest_orders twice, so
/// its statements are prepared), terminates those backends every 100 ms until
/// `done`; returns how many it killed.
fn kill_until(db: &TestDb, done: &AtomicBool) -> i64 {
    let mut killer = db.client();
    let starts = format!("SELECT pid, query_start::text FROM pg_stat_activity WHERE {OURS}");
    let mut seen: Vec<(i32, Option<String>)> = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let now: Vec<(i32, Option<String>)> = killer
            .query(&starts, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if now
            .iter()
            .any(|(pid, at)| seen.iter().any(|(p, a)| p == pid && a != at))
        {
            break;
        }
        seen = now;
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill =
        format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {OURS}");
    let mut killed = 0;
    while !done.load(Ordering::Relaxed) {
        let n: i64 = killer.query_one(&kill, &[]).unwrap().get(0);
        killed += n;
        std::thread::sleep(Duration::from_millis(100));
    }
    killed
}

/// Runs latest_orders for 2 s while its backends are killed: the kills are
/// counted as errors, the run goes on, and the outcome is Findings.
fn run_while_killing(db: &TestDb, clients: u32) -> BenchmarkReport {
    let args = BenchmarkArgs {
        clients,
        duration: Some(HumanDuration(Duration::from_secs(2))),
        warmup: Some(0),
        only: vec!["latest_orders".into()],
        ..BenchmarkArgs::default()
    };
    let config = db.config();
    let done = AtomicBool::new(false);
    let (report, killed) = std::thread::scope(|s| {
        let killer = s.spawn(|| kill_until(db, &done));
        let report = benchmark::run(&config, &args);
        done.store(true, Ordering::Relaxed);
        (report.unwrap(), killer.join().unwrap())
    });
    assert!(killed >= 1, "nothing to kill: the run ended too early");
    let q = &report.queries[0];
    assert!(q.figures.errors >= 1, "{q:?}");
    // One failed run per kill at most: a dead connection is not used twice.
    assert!(q.figures.errors <= killed as u64, "{killed} kills: {q:?}");
    assert!(
        q.figures.iterations > q.figures.errors,
        "the run went on after the kills: {q:?}"
    );
    // The server's FATAL, or the closed socket when the kill came between runs.
    let error = q.last_error.as_deref().unwrap_or("");
    assert!(
        error.contains("terminating connection")
            || error.contains("closed")
            || error.contains("Connection reset"),
        "{q:?}"
    );
    assert_eq!(report.outcome(), Outcome::Findings);
    report
}

#[test]
fn a_killed_backend_is_counted_and_the_dedicated_connection_reconnects() {
    let db = TestDb::seeded("bench_kill_seq", 2000);
    let report = run_while_killing(&db, 1);
    assert_eq!(report.meta.mode, "sequential");
}

#[test]
fn a_killed_backend_is_counted_and_the_pool_replaces_it() {
    let db = TestDb::seeded("bench_kill_pool", 2000);
    let report = run_while_killing(&db, 3);
    let pool = report.meta.pool.as_ref().unwrap();
    assert_eq!(pool.checkouts.timeouts, 0, "{pool:?}");
}
