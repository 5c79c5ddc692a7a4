// Through a real pgbouncer (Debian's package) in transaction mode: the
// benchmark sends no named statement, so two processes at once time their own
// queries (each query's own row count, no error); index DDL, which needs a
// session of its own, is refused before any session state exists, and the run
// lock never stays behind on a pooled server connection.

use crate::support::{self, pgbouncer::Bouncer, TestDb};
use o2o_db::conninfo::ConnInfo;
use o2o_db::db::Pooling;

fn conn(url: &str) -> ConnInfo {
    ConnInfo::parse(url).unwrap()
}

#[test]
fn auto_tells_transaction_pooling_from_sessions() {
    let db = TestDb::seeded("bouncer_detect", 200);
    let transaction = Bouncer::start(&db.name, "transaction", 2);
    let session = Bouncer::start(&db.name, "session", 2);
    let found = |url: &str| Pooling::Auto.resolve(&conn(url)).unwrap();
    assert_eq!(found(&transaction.url(&db.name)), Pooling::Transaction);
    assert_eq!(found(&session.url(&db.name)), Pooling::Session);
    assert_eq!(found(&db.url()), Pooling::Session);
    // Said in the config, it is taken as said.
    assert_eq!(
        Pooling::Session
            .resolve(&conn(&transaction.url(&db.name)))
            .unwrap(),
        Pooling::Session
    );
}

#[test]
fn two_benchmarks_at_once_through_transaction_pooling_time_their_own_queries() {
    let db = TestDb::seeded("bouncer_bench", 2000);
    let bouncer = Bouncer::start(&db.name, "transaction", 2);
    let url = bouncer.url(&db.name);
    let spawn = || {
        support::bare_std_cmd()
            .args(["--database-url", &url, "--format", "json", "benchmark"])
            .args(["--only", "by_store,latest_orders", "--clients", "4"])
            .args(["--iterations", "300", "--warmup", "20"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let runs = [spawn(), spawn()];
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["meta"]["statements"], "unnamed", "{report}");
        for (name, rows) in [("by_store", 1.0), ("latest_orders", 50.0)] {
            let q = report["queries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|q| q["name"] == name)
                .unwrap();
            assert_eq!(q["errors"], 0, "{name}: {q}");
            assert_eq!(q["iterations"], 300, "{name}: {q}");
            // Every run returned this query's own rows, never another's.
            assert_eq!(q["rows"].as_f64(), Some(rows), "{name}: {q}");
        }
    }
    let table = support::stdout(&support::run(
        support::bare_cmd().args([
            "--database-url",
            &url,
            "benchmark",
            "--only",
            "latest_orders",
            "--iterations",
            "5",
        ]),
        0,
    ));
    assert!(table.contains("timings include parse and plan"), "{table}");
    // Straight to PostgreSQL, statements are prepared as before.
    let direct = support::stdout(&support::run(
        db.cmd().args([
            "--format",
            "json",
            "benchmark",
            "--only",
            "latest_orders",
            "--iterations",
            "5",
        ]),
        0,
    ));
    assert!(direct.contains(r#""statements": "prepared""#), "{direct}");
}

#[test]
fn index_ddl_through_transaction_pooling_is_refused_and_leaves_no_lock() {
    let db = TestDb::seeded("bouncer_ddl", 500);
    let bouncer = Bouncer::start(&db.name, "transaction", 1);
    let url = bouncer.url(&db.name);
    for args in [
        &["create-indexes"][..],
        &["create-indexes", "--dry-run"],
        &["drop-indexes", "idx_orders_scene"],
    ] {
        let out = support::run(
            support::bare_cmd()
                .args(["--database-url", &url])
                .args(args),
            2,
        );
        let err = support::stderr(&out);
        assert!(
            err.contains("pools server connections per transaction")
                && err.contains(&format!("{} needs a session of its own", args[0]))
                && err.contains("Nothing was done"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        0,
        "no run lock stays on pgbouncer's server connection"
    );
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders' AND indexname LIKE 'idx_orders_%'"
        ),
        0
    );
    // The next run, straight to PostgreSQL, takes the lock and builds.
    support::run(db.cmd().args(["create-indexes"]), 0);
}

/// verify's headroom through pgbouncer: every instance's pool against its
/// max_client_conn, and the server connections it may open against the free slots.
#[test]
fn headroom_through_pgbouncer_counts_its_limits_and_every_instance() {
    let db = TestDb::seeded("bouncer_headroom", 200);
    let headroom = |bouncer: &Bouncer, instances: u32| -> (String, String, String) {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(
            &mut file,
            format!("[verify]\ninstances = {instances}\n").as_bytes(),
        )
        .unwrap();
        let out = support::bare_cmd()
            .args(["--config"])
            .arg(file.path())
            .args([
                "--database-url",
                &bouncer.url(&db.name),
                "--format",
                "json",
                "verify",
                "--only",
                "headroom",
            ])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", support::stderr(&out)));
        let check = &doc["checks"][0];
        (
            check["status"].as_str().unwrap_or_default().to_string(),
            check["detail"].as_str().unwrap_or_default().to_string(),
            check["fix"].as_str().unwrap_or_default().to_string(),
        )
    };
    let small = Bouncer::start_with(&db.name, "transaction", 2, &[("max_client_conn", "100")]);
    let (status, detail, _) = headroom(&small, 1);
    assert_eq!(status, "pass", "{detail}");
    assert!(
        detail.contains("the pool's max_size 60 against its max_client_conn 100")
            && detail.contains("it opens at most 2 server connections"),
        "{detail}"
    );
    let (status, detail, fix) = headroom(&small, 3);
    assert_eq!(status, "warn", "{detail}");
    assert!(
        detail.contains("3 instances' pools of max_size 60 (180)"),
        "{detail}"
    );
    assert!(
        fix.contains("raise pgbouncer's max_client_conn to at least 180"),
        "{fix}"
    );
    // A pgbouncer allowed more server connections than PostgreSQL has free.
    let wide = Bouncer::start_with(&db.name, "transaction", 500, &[("max_client_conn", "1000")]);
    let (status, detail, fix) = headroom(&wide, 1);
    assert_eq!(status, "warn", "{detail}");
    assert!(
        detail.contains("it opens at most 500 server connections"),
        "{detail}"
    );
    assert!(fix.contains("lower pgbouncer's default_pool_size"), "{fix}");
}
