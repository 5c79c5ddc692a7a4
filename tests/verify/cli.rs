// verify's command line: the JSON shape, selection, exit codes, and what
// makes it unable to run (exit 2).

use super::{create_builtin_indexes, exec};
use crate::support::{self, TestDb};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A config file with the small test pool and targets to match, in its own directory.
fn config_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o2o-db.toml");
    let text = "[pool]\nsize = 2\nmax_overflow = 3\n[verify]\nsize = 2\nmax_overflow = 3\n";
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The binary: `o2o-db --config FILE <global> verify <args>` against the test database.
fn verify_cli(db: &TestDb, config: &Path, global: &[&str], args: &[&str]) -> Output {
    db.cmd()
        .arg("--config")
        .arg(config)
        .args(global)
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_prints_the_json_shape_and_gates_on_exit_codes() {
    let db = TestDb::seeded("verify_cli", 1000);
    create_builtin_indexes(&db);
    let (_dir, path) = config_file();
    let json = ["--format", "json"];
    let out = verify_cli(&db, &path, &json, &["--skip", "speed,planner"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 10);
    for c in checks {
        let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["detail", "duration_seconds", "fix", "name", "status"],
            "{c}"
        );
        assert!(
            c["duration_seconds"]
                .as_f64()
                .is_some_and(|d| (0.0..600.0).contains(&d)),
            "{c}"
        );
        assert!(["pass", "warn", "fail"].contains(&c["status"].as_str().unwrap()));
    }
    assert_eq!(checks[0]["name"], "config");
    assert!(checks[0]["fix"].is_null());
    assert_eq!(
        doc["summary"],
        serde_json::json!({"passed": 9, "warned": 1, "failed": 0})
    );
    assert_eq!(doc["role"], "primary");
    assert_eq!(
        doc["replication"],
        serde_json::json!({"standbys": [], "slots": [], "replay": null})
    );
    // --strict: the redundancy warning fails the run.
    let out = verify_cli(
        &db,
        &path,
        &[],
        &["--strict", "--only", "redundancy", "config"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = support::stdout(&out);
    assert!(text.contains("│ redundancy ┆ WARN"), "{text}");
    assert!(
        text.contains("fixes:\n  redundancy:\n    DROP INDEX CONCURRENTLY"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("warnings count as failures"),
        "{text}"
    );
    // A failed check is exit 1.
    exec(&db, "DROP INDEX idx_orders_scene");
    let out = verify_cli(&db, &path, &[], &["--only", "indexes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(support::stdout(&out).contains("verify: 0 passed, 0 warned, 1 failed"));
}

#[test]
fn cli_cannot_run_is_exit_2_with_the_reason() {
    let unreachable = "postgres://postgres@127.0.0.1:1/o2o_dashboard?connect_timeout=2";
    // Nothing listens on port 1: exit 2 with where and why, and no report.
    let out = support::run(
        support::bare_cmd().args(["--database-url", unreachable, "verify"]),
        2,
    );
    let err = support::stderr(&out);
    assert!(
        err.contains("cannot connect to 127.0.0.1:1/o2o_dashboard"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // Checks that need no server still run without one.
    let out = support::run(
        support::bare_cmd().args(["--database-url", unreachable, "verify", "--only", "config"]),
        0,
    );
    assert!(support::stdout(&out).contains("pool size: 20 (target: 20)"));
    // Unknown check names are a usage error listing the valid ones.
    let out = support::run(support::bare_cmd().args(["verify", "--only", "indexs"]), 2);
    let err = support::stderr(&out);
    assert!(err.contains("indexs"), "{err}");
    assert!(
        err.contains("config, connectivity, pool, headroom"),
        "{err}"
    );
    // A bad query file is exit 2 naming the file and line.
    let db = TestDb::with_schema("verify_bad_file");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sql");
    std::fs::write(&bad, "-- name: x\nDELETE FROM orders;\n").unwrap();
    let out = support::run(db.cmd().args(["verify", "--queries"]).arg(&bad), 2);
    let err = support::stderr(&out);
    assert!(err.contains("bad.sql:2: query x is not a SELECT"), "{err}");
}
