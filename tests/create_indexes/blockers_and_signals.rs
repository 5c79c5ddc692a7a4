// create-indexes among other sessions: a blocker holding the table's lock, an
// old snapshot, a writer that also blocks the cleanup, a second run meeting
// the run lock, and Ctrl-C or SIGTERM during a build.

use super::{
    assert_nothing_left, create, invalid_indexes, json, short_locks, std_cmd, two_index_file,
    wait_until, ORDERS,
};
use crate::support::{self, TestDb};
use o2o_db::commands::create_indexes::{self, CreateIndexesArgs, Status};
use o2o_db::config::HumanDuration;
use o2o_db::ddl::{run_lock, SessionArgs};
use o2o_db::report::{Outcome, Report};
use o2o_db::stop::Stop;
use std::time::Duration;

/// A run on the two-index file (1s lock timeout) while another session,
/// kept open, has run `blocker_sql`.
struct Blocked {
    db: TestDb,
    blocker: postgres::Client,
    blocker_pid: i32,
    args: CreateIndexesArgs,
    report: create_indexes::CreateIndexesReport,
    _file: tempfile::NamedTempFile,
}

fn run_blocked(label: &str, blocker_sql: &str, retries: u32) -> Blocked {
    run_blocked_for(label, blocker_sql, retries, None)
}

/// `run_blocked` with a statement timeout: what ends a wait for an old transaction.
fn run_blocked_for(
    label: &str,
    blocker_sql: &str,
    retries: u32,
    statement_timeout: Option<Duration>,
) -> Blocked {
    let db = TestDb::seeded(label, ORDERS);
    let file = two_index_file();
    let mut blocker = db.client();
    let blocker_pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    blocker.batch_execute(blocker_sql).unwrap();
    let args = CreateIndexesArgs {
        session: SessionArgs {
            statement_timeout: statement_timeout.map(HumanDuration),
            ..short_locks(file.path(), retries)
        },
        ..CreateIndexesArgs::default()
    };
    let report = create(&db, &args);
    Blocked {
        db,
        blocker,
        blocker_pid,
        args,
        report,
        _file: file,
    }
}

#[test]
fn a_locked_table_fails_within_the_lock_timeout_naming_the_blocker() {
    let Blocked {
        db,
        mut blocker,
        blocker_pid,
        report: r,
        ..
    } = run_blocked(
        "ci_locked",
        "SET application_name = 'nightly-report'; BEGIN; LOCK TABLE orders IN SHARE MODE",
        1,
    );
    assert_eq!(r.outcome(), Outcome::Findings);
    assert_eq!((r.summary.failed, r.summary.created), (1, 0));
    let first = &r.indexes[0];
    assert_eq!(first.status, Status::Failed);
    let error = first.error.as_deref().unwrap();
    assert!(error.contains("lock timeout"), "{error}");
    assert!(error.contains("(after 1 retry)"), "{error}");
    assert!(
        error.contains(&format!("pid {blocker_pid} (nightly-report")),
        "{error}"
    );
    assert!(error.contains("LOCK TABLE orders IN SHARE MODE"), "{error}");
    // One lock failure stops the run: the next build would queue behind the same blocker.
    assert_eq!(r.indexes[1].status, Status::NotStarted);
    assert!(r.indexes[1]
        .error
        .as_deref()
        .unwrap()
        .contains("idx_orders_channel could not get its lock"));
    // The open transaction was named before starting.
    assert!(
        r.notices
            .iter()
            .any(|n| n.contains(&format!("pid {blocker_pid}"))),
        "{:?}",
        r.notices
    );
    assert_nothing_left(&db);
    blocker.batch_execute("COMMIT").unwrap();
}

#[test]
fn a_build_stalled_by_an_old_snapshot_leaves_nothing_invalid() {
    // A snapshot older than the build: CREATE INDEX CONCURRENTLY creates the
    // index, builds it, then waits for this transaction until the statement
    // timeout (not the 1 s lock timeout) ends it.
    let Blocked {
        db,
        mut blocker,
        report: r,
        ..
    } = run_blocked_for(
        "ci_snapshot",
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1",
        0,
        Some(Duration::from_secs(3)),
    );
    let error = r.indexes[0].error.as_deref().unwrap();
    assert!(error.contains("statement timeout"), "{error}");
    assert!(
        r.indexes[0].duration_ms >= 2500.0,
        "outlived the lock timeout: {:?}",
        r.indexes[0]
    );
    assert!(
        error.contains("its INVALID leftover was dropped"),
        "{error}"
    );
    assert_nothing_left(&db);
    blocker.batch_execute("COMMIT").unwrap();
}

/// The lock timeout bounds the wait for the table lock only: a finished build
/// waiting for an old snapshot (which blocks no writer) is not thrown away,
/// and the progress line names what it waits for.
#[test]
fn a_build_waiting_for_an_old_snapshot_outlives_the_lock_timeout() {
    let db = TestDb::seeded("ci_old_snapshot_waits", ORDERS);
    let file = two_index_file();
    let mut holder = db.client();
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    holder
        .batch_execute(
            "SET application_name = 'old-report'; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1",
        )
        .unwrap();
    let child = std_cmd(&db)
        .args([
            "--format",
            "json",
            "create-indexes",
            "--lock-timeout",
            "1s",
            "--lock-retries",
            "0",
            "--indexes",
        ])
        .arg(file.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        &db,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE datname = current_database() AND phase = 'waiting for old snapshots')",
    );
    std::thread::sleep(Duration::from_millis(2500));
    holder.batch_execute("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v = json(&out);
    assert_eq!(v["summary"]["created"], 2, "{v}");
    assert!(
        err.contains(&format!(
            "waiting for old snapshots: waiting for pid {holder_pid} (old-report"
        )),
        "the progress line names the holder: {err}"
    );
    assert_eq!(invalid_indexes(&db), 0);
}

#[test]
fn a_leftover_that_cannot_be_dropped_is_reported_and_rebuilt_next_run() {
    // An open writer blocks the build after it created its catalog entry, and the drop as well.
    let Blocked {
        db,
        mut blocker,
        args,
        report: r,
        _file: _index_file_used_again,
        ..
    } = run_blocked_for(
        "ci_leftover",
        "BEGIN; UPDATE orders SET scene = scene WHERE order_id = 1",
        0,
        Some(Duration::from_secs(3)),
    );
    let error = r.indexes[0].error.as_deref().unwrap();
    assert!(error.contains("could not be dropped either"), "{error}");
    assert!(
        error.contains("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_channel\""),
        "{error}"
    );
    assert!(
        error.contains("UPDATE orders SET scene"),
        "names the writer: {error}"
    );
    assert_eq!(invalid_indexes(&db), 1);
    blocker.batch_execute("COMMIT").unwrap();

    let r = create(&db, &args);
    assert_eq!(
        (r.summary.rebuilt, r.summary.created, r.summary.failed),
        (1, 1, 0),
        "{r:?}"
    );
    assert_eq!(invalid_indexes(&db), 0);
}

#[test]
fn a_second_run_meets_the_run_lock() {
    let db = TestDb::seeded("ci_run_lock", ORDERS);
    let file = two_index_file();
    // The first run is held up by a lock on the table, long enough to meet it.
    let mut blocker = db.client();
    blocker
        .batch_execute("BEGIN; LOCK TABLE orders IN SHARE MODE")
        .unwrap();
    let config = db.config();
    let args = CreateIndexesArgs {
        session: SessionArgs {
            indexes: Some(file.path().to_path_buf()),
            lock_timeout: Some(HumanDuration(Duration::from_secs(120))),
            ..SessionArgs::default()
        },
        ..CreateIndexesArgs::default()
    };
    let first =
        std::thread::spawn(move || create_indexes::run_with(&config, &args, &Stop::new()).unwrap());
    let key = run_lock::key("public", "orders");
    wait_until(
        &db,
        // Advisory locks are per database: other tests' runs hold the same key elsewhere.
        &format!(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND objid = ({key}::int8 & 4294967295)::oid)"
        ),
    );
    let out = support::run(
        db.cmd()
            .arg("create-indexes")
            .arg("--indexes")
            .arg(file.path()),
        2,
    );
    let err = support::stderr(&out);
    assert!(
        err.contains("another index run on public.orders is in progress"),
        "{err}"
    );
    assert!(
        err.contains("(o2o-db-test create-indexes, connected since"),
        "{err}"
    );
    assert!(err.contains("--wait"), "{err}");
    // drop-indexes takes the same lock.
    support::run(db.cmd().arg("drop-indexes"), 2);

    // With --wait, a second run waits for the first and then finds nothing to do.
    let mut waiting = std_cmd(&db)
        .args(["--format", "json", "create-indexes", "--wait", "--indexes"])
        .arg(file.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "--wait returned while the lock was held"
    );
    blocker.batch_execute("COMMIT").unwrap();
    let first = first.join().unwrap();
    assert_eq!(first.summary.created, 2, "{first:?}");
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["summary"]["skipped"], 2);
}

#[test]
fn ctrl_c_cancels_the_running_build_and_cleans_up() {
    a_signal_cancels_the_running_build_and_cleans_up(libc::SIGINT, 130);
}

/// systemd, cron wrappers and `kill` send SIGTERM: the same clean stop, exit 143.
#[test]
fn sigterm_cancels_the_running_build_and_cleans_up() {
    a_signal_cancels_the_running_build_and_cleans_up(libc::SIGTERM, 143);
}

fn a_signal_cancels_the_running_build_and_cleans_up(signal: i32, code: i32) {
    let db = TestDb::seeded(&format!("ci_signal_{signal}"), ORDERS);
    // An old snapshot keeps the first concurrent build waiting after it has
    // created its (INVALID) catalog entry: Ctrl-C must cancel it and drop that.
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .unwrap();
    let child = std_cmd(&db)
        .args(["create-indexes", "--lock-timeout", "10m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        &db,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE datname = current_database() AND phase = 'waiting for old snapshots')",
    );
    assert_eq!(invalid_indexes(&db), 1);
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", support::stderr(&out));
    let text = support::stdout(&out);
    assert!(text.contains("interrupted"), "{text}");
    assert!(
        text.contains("cancelled by Ctrl-C (or a signal); its INVALID leftover was dropped"),
        "{text}"
    );
    assert!(text.contains("not started"), "{text}");
    assert_nothing_left(&db);
    holder.batch_execute("COMMIT").unwrap();
}
