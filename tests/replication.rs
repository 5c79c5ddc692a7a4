//! verify against a real primary and its streaming replica: on a healthy
//! standby nothing fails and nothing is written, statistics come from what
//! replicates, the replication check shows each side of the stream, and a
//! paused replay or a primary gone away is named with its fix.

use crate::support::replication::{
    flushed_position, session, verify_config, wait_until_replayed, Pair, DB,
};
use crate::support::{bare_cmd, run, stdout};
use crate::verify::{check, says};
use o2o_db::commands::verify::{self, Check, Role, Status, VerifyArgs, VerifyReport};
use o2o_db::pg_sandbox::Sandbox;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pair the tests that only read share; a test that pauses or stops a
/// node starts its own.
fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| Pair::start(3000))
}

fn verify_on(node: &Sandbox, only: &[&str]) -> VerifyReport {
    let args = VerifyArgs {
        only: only.iter().map(|s| s.to_string()).collect(),
        ..VerifyArgs::default()
    };
    verify::run(&verify_config(node, DB), &args).expect("verify runs")
}

/// Writes some WAL on `primary` (a table of its own in the postgres database).
fn write_wal(primary: &Sandbox, table: &str) {
    session(primary)
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} AS SELECT generate_series(1, 20000) AS n"
        ))
        .expect("write on the primary");
}

/// Polls `until` on verify's replication check on `node` for at most 30 s.
fn replication_until(node: &Sandbox, until: impl Fn(&Check) -> bool) -> Check {
    let started = Instant::now();
    loop {
        let report = verify_on(node, &["replication"]);
        let c = check(&report, "replication").clone();
        if until(&c) || started.elapsed() > Duration::from_secs(30) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn verify_on_a_healthy_replica_passes_says_standby_and_writes_nothing() {
    let p = pair();
    let report = verify_on(&p.replica, &[]);
    assert_eq!(report.role, Some(Role::Standby));
    assert_eq!(report.checks.len(), verify::CHECK_NAMES.len());
    for c in &report.checks {
        // A standby refuses every write: any attempt would be a FAIL here.
        assert_ne!(c.status, Status::Fail, "{}: {}", c.name, c.detail);
        assert!(
            !c.detail.contains("read-only transaction") && !c.detail.contains("recovery"),
            "{}: {}",
            c.name,
            c.detail
        );
    }
    assert_eq!(report.summary.failed, 0);
    // The standby's pg_stat counters are empty; the replicated catalog is not.
    let stats = check(&report, "statistics");
    assert_eq!(stats.status, Status::Pass);
    says(stats, "rows per pg_class.reltuples");
    says(stats, "replicated from the primary");
    assert!(!stats.detail.contains("never been analyzed"));
    // A fix that writes is for the primary.
    let redundancy = check(&report, "redundancy");
    assert_eq!(redundancy.status, Status::Warn);
    let fix = redundancy.fix.as_deref().unwrap_or_default();
    assert!(
        fix.starts_with("this node is a hot standby and takes no writes: on the primary, run\n  DROP INDEX CONCURRENTLY"),
        "{fix}"
    );
    says(redundancy, "never used on this standby");
    let replication = check(&report, "replication");
    assert_eq!(replication.status, Status::Pass, "{}", replication.detail);
    says(replication, "on a hot standby: received up to ");
    says(
        replication,
        &format!(
            "WAL receiver streaming from {}:{}",
            p.primary.socket_dir().display(),
            p.primary.port()
        ),
    );
    says(
        replication,
        "note: hot_standby_feedback = off, max_standby_streaming_delay = 30s",
    );
    let replay = report
        .replication
        .as_ref()
        .and_then(|r| r.replay.as_ref())
        .expect("the standby's replay figures");
    assert!(replay.receive_lsn.is_some() && replay.replay_lsn.is_some());
    assert_eq!(replay.pause_state, "not paused");

    // The binary says so above the table and in the JSON.
    let url = p.replica.url(DB);
    let only = ["verify", "--only", "statistics,replication"];
    let out = run(bare_cmd().args(["--database-url", &url]).args(only), 0);
    let first = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        first.ends_with(
            "is a hot standby (pg_is_in_recovery): verify only reads here; fixes that change the database are for the primary and reach this node by replay"
        ),
        "{first}"
    );
    let out = run(
        bare_cmd()
            .args(["--database-url", &url, "--format", "json"])
            .args(only),
        0,
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["role"], "standby");
    assert_eq!(json["replication"]["replay"]["pause_state"], "not paused");
    let metrics = run(
        bare_cmd()
            .args(["--database-url", &url, "--format", "prometheus"])
            .args(only),
        0,
    );
    let metrics = stdout(&metrics);
    assert!(
        metrics.contains("o2o_db_server_in_recovery{database=\"o2o_replication\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("o2o_db_standby_wal_receiver_streaming{database=\"o2o_replication\"} 1"),
        "{metrics}"
    );
}

#[test]
fn on_the_primary_replication_lists_the_standby_streaming_with_its_lag() {
    let p = pair();
    write_wal(&p.primary, "lag_probe");
    let report = verify_on(&p.primary, &["replication", "statistics"]);
    assert_eq!(report.role, Some(Role::Primary));
    let c = check(&report, "replication");
    assert_ne!(c.status, Status::Fail, "{}", c.detail);
    says(
        c,
        "standby walreceiver (local socket): streaming, async: behind by ",
    );
    says(c, " replayed; lag write ");
    let figures = report.replication.as_ref().expect("replication figures");
    assert!(figures.replay.is_none());
    let link = figures
        .standbys
        .iter()
        .find(|s| s.state.as_deref() == Some("streaming"))
        .unwrap_or_else(|| panic!("no streaming standby in {figures:#?}"));
    assert_eq!(link.sync_state.as_deref(), Some("async"));
    for lag in [
        link.write_lag_bytes,
        link.flush_lag_bytes,
        link.replay_lag_bytes,
    ] {
        assert!(lag.is_some_and(|b| b >= 0), "{link:?}");
    }
    // The primary's own statistics are judged as before.
    says(check(&report, "statistics"), "analyzed ");
    // pg_basebackup -R makes no slot: none to warn about.
    assert!(figures.slots.is_empty(), "{figures:#?}");
}

#[test]
fn an_inactive_slot_on_the_primary_warns_with_its_drop() {
    // Its own primary: a slot would show in every other test's report.
    let primary = Sandbox::start().expect("a primary");
    primary
        .create_database(DB)
        .expect("the database verify connects to");
    let mut c = session(&primary);
    c.batch_execute("SELECT pg_create_physical_replication_slot('gone_replica', true)")
        .expect("a slot that keeps WAL");
    let report = verify_on(&primary, &["replication"]);
    let r = check(&report, "replication");
    assert_eq!(r.status, Status::Warn, "{}", r.detail);
    says(r, "no standbys (pg_stat_replication is empty)");
    says(
        r,
        "slot gone_replica (physical, inactive, wal_status reserved): keeps ",
    );
    assert!(r
        .fix
        .as_deref()
        .unwrap_or_default()
        .starts_with("SELECT pg_drop_replication_slot('gone_replica');"));
    c.batch_execute("SELECT pg_drop_replication_slot('gone_replica')")
        .expect("drop the slot");
    let report = verify_on(&primary, &["replication"]);
    let r = check(&report, "replication");
    assert_eq!(r.status, Status::Pass, "{}", r.detail);
    assert_eq!(
        r.detail,
        "no standbys (pg_stat_replication is empty) and no replication slots"
    );
}

/// The case: an index built on the primary while the replica's
/// replay is paused. The replica's verify names the pause with its resume and
/// sends the index's build to the primary, never to this standby.
#[test]
fn paused_replay_fails_with_the_resume_and_passes_once_resumed() {
    // A pair of its own: its replay is paused.
    let own = Pair::start(1000);
    let primary_url = own.primary.url(DB);
    let mut on_primary =
        o2o_db::db::connect(&own.primary.conn_info(DB)).expect("a session on the primary");
    on_primary
        .batch_execute("DROP INDEX idx_orders_scene")
        .expect("drop an index on the primary");
    wait_until_replayed(&own.primary, &own.replica);
    let mut on_replica = session(&own.replica);
    on_replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .expect("pause replay");
    run(
        bare_cmd().args(["--database-url", &primary_url, "create-indexes"]),
        0,
    );
    let target = flushed_position(&own.primary);
    // Wait until the build's WAL has arrived, unreplayed.
    let started = Instant::now();
    while !on_replica
        .query_one(
            "SELECT pg_last_wal_receive_lsn() >= $1::text::pg_lsn",
            &[&target],
        )
        .expect("the receive position")
        .get::<_, bool>(0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "WAL did not arrive"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = verify_on(&own.replica, &["indexes", "replication"]);
    let paused = check(&report, "replication");
    assert_eq!(paused.status, Status::Fail, "{}", paused.detail);
    says(
        paused,
        "replay is paused (pg_get_wal_replay_pause_state): received up to ",
    );
    says(paused, " waiting");
    assert_eq!(
        paused.fix.as_deref(),
        Some("SELECT pg_wal_replay_resume();  -- on this standby")
    );
    let indexes = check(&report, "indexes");
    assert_eq!(indexes.status, Status::Fail, "{}", indexes.detail);
    says(indexes, "idx_orders_scene: missing");
    let fix = indexes.fix.as_deref().unwrap_or_default();
    assert!(
        fix.starts_with(
            "this node is a hot standby and takes no writes: on the primary, run\n  CREATE INDEX CONCURRENTLY \"idx_orders_scene\""
        ) && fix.ends_with("see the replication check if it does not)"),
        "{fix}"
    );
    // The binary exits 1 on it.
    run(
        bare_cmd().args([
            "--database-url",
            &own.replica.url(DB),
            "verify",
            "--only",
            "replication",
        ]),
        1,
    );
    on_replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .expect("resume replay");
    wait_until_replayed(&own.primary, &own.replica);
    let resumed = replication_until(&own.replica, |c| c.status == Status::Pass);
    assert_eq!(resumed.status, Status::Pass, "{}", resumed.detail);
    says(&resumed, "replay has caught up with the WAL received");
    let indexes = verify_on(&own.replica, &["indexes"]);
    assert_eq!(check(&indexes, "indexes").status, Status::Pass);
}

#[test]
fn a_replica_whose_primary_is_stopped_fails_naming_the_primary() {
    // A pair of its own: its primary is stopped.
    let mut own = Pair::start(300);
    let primary = format!(
        "{}:{}",
        own.primary.socket_dir().display(),
        own.primary.port()
    );
    let before = replication_until(&own.replica, |c| c.status == Status::Pass);
    assert_eq!(before.status, Status::Pass, "{}", before.detail);
    own.primary.stop().expect("stop the primary");
    let after = replication_until(&own.replica, |c| c.status == Status::Fail);
    assert_eq!(after.status, Status::Fail, "{}", after.detail);
    assert!(
        after.detail.contains(&format!(
            "no WAL receiver: not streaming from {primary} (primary_conninfo)"
        )) || after
            .detail
            .contains(&format!(", not streaming from {primary}")),
        "{}",
        after.detail
    );
    assert!(
        after
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("check that {primary} is up")),
        "{:?}",
        after.fix
    );
    // Only where, never how: primary_conninfo's other keywords stay out.
    for secret in ["user=", "passfile", "password"] {
        assert!(!after.detail.contains(secret), "{}", after.detail);
    }
    own.replica.stop().expect("stop the replica");
}

/// A standby sees the primary's INVALID index but not whether a build of it
/// still runs there: a WARN that sends the DBA to the primary, which FAILs it.
#[test]
fn an_invalid_index_is_a_warning_on_the_standby_and_a_failure_on_the_primary() {
    // A pair of its own: its primary gets a failed build.
    let own = Pair::start(300);
    let mut on_primary =
        o2o_db::db::connect(&own.primary.conn_info(DB)).expect("a session on the primary");
    on_primary
        .batch_execute("DROP INDEX idx_orders_scene")
        .expect("drop an index on the primary");
    // A failed concurrent unique build leaves an INVALID index behind.
    on_primary
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY idx_orders_scene ON orders (scene)")
        .expect_err("scene is not unique");
    wait_until_replayed(&own.primary, &own.replica);
    // Replayed past the failed build is not always visible at once on the
    // standby: wait until its catalog shows the INVALID index.
    let mut standby =
        o2o_db::db::connect(&own.replica.conn_info(DB)).expect("a session on the replica");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while standby
        .query_one("SELECT to_regclass('idx_orders_scene') IS NULL", &[])
        .expect("the replica's catalog")
        .get::<_, bool>(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the INVALID index never reached the replica"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let on_standby = verify_on(&own.replica, &["indexes"]);
    let ix = check(&on_standby, "indexes");
    assert_eq!(ix.status, Status::Warn, "{}", ix.detail);
    says(ix, "idx_orders_scene: INVALID");
    says(ix, "this standby cannot see builds on the primary");
    let fix = ix.fix.as_deref().unwrap_or_default();
    assert!(
        fix.starts_with("this node is a hot standby and takes no writes: on the primary, run\n  DROP INDEX CONCURRENTLY IF EXISTS \"idx_orders_scene\";"),
        "{fix}"
    );
    let on_primary_report = verify_on(&own.primary, &["indexes"]);
    let ix = check(&on_primary_report, "indexes");
    assert_eq!(ix.status, Status::Fail, "{}", ix.detail);
    assert!(!ix.detail.contains("standby"), "{}", ix.detail);
}
