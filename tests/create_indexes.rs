// create-indexes and drop-indexes on a real server: created/skipped/rebuilt/
// drifted by definition, dry runs, parallel plain builds, bad files. What a
// run meets from other sessions (lock timeouts that name the blocker and
// leave nothing INVALID, old snapshots, the run lock) and signals are in
// create_indexes/blockers_and_signals.rs.

mod blockers_and_signals;

use crate::support::{self, TestDb};
use o2o_db::catalog::indexes::{inspect, State};
use o2o_db::commands::create_indexes::{self, CreateIndexesArgs, Status};
use o2o_db::commands::drop_indexes::{self, DropIndexesArgs, DropStatus};
use o2o_db::config::HumanDuration;
use o2o_db::ddl::SessionArgs;
use o2o_db::report::{Outcome, Report};
use o2o_db::stop::Stop;
use std::time::{Duration, Instant};

const ORDERS: u64 = 3000;

fn create(db: &TestDb, args: &CreateIndexesArgs) -> create_indexes::CreateIndexesReport {
    create_indexes::run_with(&db.config(), args, &Stop::new()).expect("create-indexes")
}

fn invalid_indexes(db: &TestDb) -> i64 {
    db.scalar_i64(
        "SELECT count(*) FROM pg_index WHERE indrelid = 'orders'::regclass AND NOT (indisvalid AND indisready)",
    )
}

fn managed_indexes(db: &TestDb) -> i64 {
    db.scalar_i64("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders' AND indexname LIKE 'idx_orders_%'")
}

/// No managed index at all, so none INVALID either.
fn assert_nothing_left(db: &TestDb) {
    assert_eq!(invalid_indexes(db), 0, "an INVALID index was left behind");
    assert_eq!(managed_indexes(db), 0);
}

/// Every index of the built-in set is on the server as defined.
fn all_builtin_match(db: &TestDb) -> bool {
    let set = o2o_db::sqlfiles::IndexSet::builtin().unwrap();
    inspect(&mut db.client(), &set)
        .unwrap()
        .iter()
        .all(|l| l.state == State::Matches)
}

/// A two-index file, so the lock tests stay short.
fn two_index_file() -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".sql").tempfile().unwrap();
    std::fs::write(
        f.path(),
        "CREATE INDEX idx_orders_channel ON orders (channel);\nCREATE INDEX idx_orders_scene ON orders (scene);\n",
    )
    .unwrap();
    f
}

fn short_locks(file: &std::path::Path, retries: u32) -> SessionArgs {
    SessionArgs {
        indexes: Some(file.to_path_buf()),
        lock_timeout: Some(HumanDuration(Duration::from_secs(1))),
        lock_retries: Some(retries),
        ..SessionArgs::default()
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", support::stdout(out), support::stderr(out)))
}

/// Waits (up to a minute) until `sql` returns true.
fn wait_until(db: &TestDb, sql: &str) {
    let mut c = db.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c.query_one(sql, &[]).unwrap().get::<_, bool>(0) {
        assert!(Instant::now() < deadline, "timed out waiting for: {sql}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn fresh_database_gets_eleven_created_then_eleven_skipped() {
    let db = TestDb::seeded("ci_fresh", ORDERS);
    let first = create(&db, &CreateIndexesArgs::default());
    let s = &first.summary;
    assert_eq!(
        (s.total, s.created, s.skipped, s.failed),
        (11, 11, 0, 0),
        "{first:?}"
    );
    assert!(first.analyzed);
    assert_eq!(first.outcome(), Outcome::Clean);
    assert!(first
        .indexes
        .iter()
        .all(|i| i.size_bytes > 0 && i.duration_ms > 0.0));
    assert_eq!(first.indexes[0].table, "public.orders");
    assert!(first.sql[0].starts_with("CREATE INDEX CONCURRENTLY \"idx_orders_store_date\""));
    assert_eq!(managed_indexes(&db), 11);
    assert_eq!(invalid_indexes(&db), 0);
    // The server agrees, by definition.
    assert!(all_builtin_match(&db));

    // Second run, through the binary: 11 skipped, JSON as the issue specifies, exit 0.
    let out = support::run(db.cmd().args(["--format", "json", "create-indexes"]), 0);
    let v = json(&out);
    assert_eq!(
        v["summary"],
        serde_json::json!({"total": 11, "created": 0, "skipped": 11, "rebuilt": 0, "completed": 0, "drifted": 0, "failed": 0})
    );
    let first_index = v["indexes"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first_index.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "definition",
            "duration_ms",
            "error",
            "name",
            "size_bytes",
            "status",
            "table"
        ]
    );
    assert_eq!(first_index["status"], "skipped");
    assert!(first_index["definition"]
        .as_str()
        .unwrap()
        .ends_with("USING btree (store_name, date)"));
    assert_eq!(v["analyzed"], false, "nothing built, nothing to analyze");

    // The table form has the report's totals line.
    let out = db.cmd().arg("create-indexes").output().unwrap();
    let text = support::stdout(&out);
    assert!(
        text.contains("total 11 / created 0 / skipped 11 / rebuilt 0 / drifted 0 / failed 0"),
        "{text}"
    );
    assert!(
        text.contains("idx_orders_date_desc") && text.contains("date DESC"),
        "{text}"
    );
}

#[test]
fn one_dropped_index_is_created_again() {
    let db = TestDb::seeded("ci_one_dropped", ORDERS);
    create(&db, &CreateIndexesArgs::default());
    let out = support::run(
        db.cmd()
            .args(["--format", "json", "drop-indexes", "idx_orders_scene"]),
        0,
    );
    let v = json(&out);
    assert_eq!(v["summary"]["dropped"], 1);
    assert_eq!(v["indexes"][0]["status"], "dropped");
    assert!(v["indexes"][0]["size_bytes"].as_i64().unwrap() > 0);
    assert_eq!(managed_indexes(&db), 10);

    let r = create(&db, &CreateIndexesArgs::default());
    assert_eq!((r.summary.created, r.summary.skipped), (1, 10));
    let scene = r
        .indexes
        .iter()
        .find(|i| i.name == "idx_orders_scene")
        .unwrap();
    assert_eq!(scene.status, Status::Created);
    assert_eq!(managed_indexes(&db), 11);
}

#[test]
fn an_invalid_index_is_rebuilt() {
    let db = TestDb::seeded("ci_invalid", ORDERS);
    // A failed concurrent build leaves an INVALID index under a managed name.
    let err = db
        .client()
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY idx_orders_scene ON orders (scene)")
        .unwrap_err();
    assert!(err.as_db_error().is_some());
    assert_eq!(invalid_indexes(&db), 1);

    let r = create(&db, &CreateIndexesArgs::default());
    assert_eq!(
        (r.summary.created, r.summary.rebuilt, r.summary.failed),
        (10, 1, 0)
    );
    let scene = r
        .indexes
        .iter()
        .find(|i| i.name == "idx_orders_scene")
        .unwrap();
    assert_eq!(scene.status, Status::Rebuilt);
    assert!(r.sql.contains(
        &"DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_scene\"".to_string()
    ));
    assert_eq!(invalid_indexes(&db), 0);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_index WHERE indexrelid = 'idx_orders_scene'::regclass AND NOT indisunique"),
        1
    );
}

#[test]
fn a_drifted_index_is_reported_and_replaced_only_on_request() {
    let db = TestDb::seeded("ci_drifted", ORDERS);
    db.client()
        .batch_execute("CREATE INDEX idx_orders_channel ON orders (channel, scene)")
        .unwrap();
    let out = db
        .cmd()
        .args(["--format", "json", "create-indexes"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "drifted is a finding: {}",
        support::stderr(&out)
    );
    let v = json(&out);
    assert_eq!(v["summary"]["drifted"], 1);
    assert_eq!(v["summary"]["created"], 10);
    let ch = v["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "idx_orders_channel")
        .unwrap();
    assert_eq!(ch["status"], "drifted");
    assert!(
        ch["error"].as_str().unwrap().contains("(channel, scene)"),
        "{ch}"
    );
    assert!(
        ch["definition"]
            .as_str()
            .unwrap()
            .ends_with("USING btree (channel)"),
        "{ch}"
    );
    // Left alone.
    let def = |db: &TestDb| -> String {
        db.client()
            .query_one(
                "SELECT pg_get_indexdef('idx_orders_channel'::regclass)",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert!(def(&db).ends_with("(channel, scene)"));
    let text = support::stdout(&db.cmd().arg("create-indexes").output().unwrap());
    assert!(
        text.contains("idx_orders_channel drifted: defined differently on the server"),
        "{text}"
    );
    assert!(text.contains("expected: CREATE INDEX"), "{text}");

    let out = support::run(
        db.cmd()
            .args(["--format", "json", "create-indexes", "--replace-drifted"]),
        0,
    );
    let v = json(&out);
    assert_eq!(
        (
            v["summary"]["rebuilt"].as_i64(),
            v["summary"]["drifted"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert!(def(&db).ends_with("USING btree (channel)"), "{}", def(&db));
}

#[test]
fn a_managed_name_on_another_table_is_left_alone() {
    let db = TestDb::seeded("ci_foreign", ORDERS);
    db.client()
        .batch_execute("CREATE TABLE other (x int); CREATE INDEX idx_orders_scene ON other (x)")
        .unwrap();
    let args = CreateIndexesArgs {
        replace_drifted: true,
        ..CreateIndexesArgs::default()
    };
    let r = create(&db, &args);
    assert_eq!((r.summary.created, r.summary.failed), (10, 1));
    let scene = r
        .indexes
        .iter()
        .find(|i| i.name == "idx_orders_scene")
        .unwrap();
    assert_eq!(scene.status, Status::Failed);
    assert!(
        scene
            .error
            .as_deref()
            .unwrap()
            .contains("taken by an index of another table"),
        "{scene:?}"
    );
    assert!(!r.sql.iter().any(|s| s.contains("idx_orders_scene")));
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_index WHERE indexrelid = 'idx_orders_scene'::regclass AND indrelid = 'other'::regclass"),
        1
    );
}

#[test]
fn dry_run_changes_nothing() {
    let db = TestDb::seeded("ci_dry_run", ORDERS);
    db.client()
        .batch_execute("CREATE INDEX idx_orders_store_name ON orders (store_name)")
        .unwrap();
    // A failed concurrent unique build leaves an INVALID index behind.
    assert!(db
        .client()
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY idx_orders_scene ON orders (scene)")
        .is_err());
    let before = db.scalar_i64("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'");
    let out = support::run(db.cmd().args(["create-indexes", "--dry-run"]), 0);
    let text = support::stdout(&out);
    assert!(
        text.contains("dry run, nothing changed: total 11 / created 9 / skipped 1 / rebuilt 1"),
        "{text}"
    );
    assert!(text.contains("CREATE INDEX CONCURRENTLY \"idx_orders_store_date\" ON \"public\".\"orders\" (store_name, date);"), "{text}");
    assert!(
        text.contains("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_scene\";"),
        "{text}"
    );
    assert!(text.contains("ANALYZE \"public\".\"orders\";"), "{text}");
    assert!(text.contains("lock_timeout 1m"), "{text}");
    let out = support::run(
        db.cmd().args([
            "--format",
            "json",
            "create-indexes",
            "--dry-run",
            "--no-concurrently",
        ]),
        0,
    );
    let v = json(&out);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["indexes"][0]["status"], "would_create");
    assert_eq!(
        v["sql"][0],
        "CREATE INDEX \"idx_orders_store_date\" ON \"public\".\"orders\" (store_name, date)"
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'"),
        before
    );
    assert_eq!(invalid_indexes(&db), 1, "the INVALID index is still there");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'orders' AND analyze_count > 1"),
        0,
        "no ANALYZE ran"
    );
}

#[test]
fn jobs_two_builds_the_same_set_with_plain_builds() {
    let db = TestDb::seeded("ci_jobs", ORDERS);
    let args = CreateIndexesArgs {
        no_concurrently: true,
        jobs: 2,
        parallel_workers: Some(0),
        maintenance_work_mem: Some("32MB".into()),
        ..CreateIndexesArgs::default()
    };
    let r = create(&db, &args);
    assert_eq!((r.summary.created, r.summary.failed), (11, 0), "{r:?}");
    assert!(r.sql.iter().all(|s| !s.contains("CONCURRENTLY")));
    assert!(all_builtin_match(&db));
    assert!(
        r.how
            .contains("max_parallel_maintenance_workers 0, maintenance_work_mem 32MB"),
        "{}",
        r.how
    );

    // A setting the server refuses stops the run before anything is built.
    let out = support::run(
        db.cmd()
            .args(["create-indexes", "--maintenance-work-mem", "lots"]),
        2,
    );
    assert!(support::stderr(&out).contains("cannot set maintenance_work_mem to lots"));

    // Concurrent builds of one table cannot overlap: refused with the reason.
    let out = support::run(db.cmd().args(["create-indexes", "--jobs", "2"]), 2);
    assert!(support::stderr(&out).contains("--jobs 2 needs --no-concurrently"));
}

#[test]
fn drop_indexes_drops_managed_indexes_only() {
    let db = TestDb::seeded("ci_drop", ORDERS);
    create(&db, &CreateIndexesArgs::default());
    let config = db.config();
    let flag = Stop::new();
    // An unknown name is refused before anything happens, listing the managed ones.
    let err = drop_indexes::run_with(
        &config,
        &DropIndexesArgs {
            names: vec!["orders_pkey".into()],
            ..DropIndexesArgs::default()
        },
        &flag,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("orders_pkey is not a managed index") && err.contains("idx_orders_store_date"),
        "{err}"
    );

    let dry = drop_indexes::run_with(
        &config,
        &DropIndexesArgs {
            session: SessionArgs {
                dry_run: true,
                ..SessionArgs::default()
            },
            ..DropIndexesArgs::default()
        },
        &flag,
    )
    .unwrap();
    assert_eq!(dry.summary.dropped, 11);
    assert_eq!(managed_indexes(&db), 11);

    let r = drop_indexes::run_with(&config, &DropIndexesArgs::default(), &flag).unwrap();
    assert_eq!((r.summary.dropped, r.summary.failed), (11, 0));
    assert_eq!(managed_indexes(&db), 0);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_index WHERE indrelid = 'orders'::regclass"),
        1,
        "the primary key stays"
    );
    let again = drop_indexes::run_with(&config, &DropIndexesArgs::default(), &flag).unwrap();
    assert_eq!(again.summary.absent, 11);
    assert!(again.indexes.iter().all(|i| i.status == DropStatus::Absent));

    // A same-named index on another table is not ours to drop.
    db.client()
        .batch_execute("CREATE TABLE other (x int); CREATE INDEX idx_orders_scene ON other (x)")
        .unwrap();
    let out = support::run(db.cmd().args(["drop-indexes", "idx_orders_scene"]), 1);
    assert!(support::stdout(&out).contains("exists on table other, not on public.orders"));
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_orders_scene'"),
        1
    );
}

#[test]
fn bad_index_files_are_rejected_with_file_and_line() {
    let db = TestDb::seeded("ci_bad_file", ORDERS);
    let dir = tempfile::tempdir().unwrap();
    for (name, text, at) in [
        (
            "not_index.sql",
            "-- managed\nCREATE INDEX a ON orders (scene);\nDROP TABLE orders;\n",
            "3: expected a named `CREATE INDEX",
        ),
        (
            "bad_column.sql",
            "\nCREATE INDEX idx_x ON orders (no_such_column);\n",
            "2: index idx_x is not valid",
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = support::run(
            db.cmd().arg("create-indexes").arg("--indexes").arg(&file),
            2,
        );
        let err = support::stderr(&out);
        assert!(err.contains(&format!("{}:{at}", file.display())), "{err}");
    }

    // The config's [indexes] file is used when no flag is given, relative to the config.
    std::fs::write(
        dir.path().join("o2o-db.toml"),
        "[indexes]\nfile = \"not_index.sql\"\n",
    )
    .unwrap();
    let out = support::run(
        db.cmd()
            .arg("--config")
            .arg(dir.path().join("o2o-db.toml"))
            .args(["drop-indexes", "--dry-run"]),
        2,
    );
    assert!(support::stderr(&out).contains("not_index.sql:3:"));
    assert_eq!(managed_indexes(&db), 0);
}

/// The binary as a std Command (to spawn and signal it), pointed at `db`.
fn std_cmd(db: &TestDb) -> std::process::Command {
    let mut c = support::bare_std_cmd();
    c.arg("--database-url").arg(db.url());
    c
}
