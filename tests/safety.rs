//! Regression tests for the safety issue (#12): no command damages data,
//! whatever format, suite or index file it is given, and no verdict is given
//! on something that was not measured or not read as PostgreSQL reads it.

use crate::support::{self, TestDb};
use std::io::Write;

const ORDERS: u64 = 2000;

fn managed_indexes(db: &TestDb) -> i64 {
    db.scalar_i64(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders' AND indexname LIKE 'idx_orders_%'",
    )
}

fn sql_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".sql").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn a_format_the_command_cannot_render_is_refused_before_any_work() {
    let db = TestDb::seeded("fmt_first", ORDERS);
    support::run(db.cmd().arg("create-indexes"), 0);
    assert_eq!(managed_indexes(&db), 11);

    let out = support::run(db.cmd().args(["--format", "csv", "drop-indexes"]), 2);
    let err = support::stderr(&out);
    assert!(
        err.contains("--format csv is not available for drop-indexes"),
        "{err}"
    );
    assert_eq!(
        managed_indexes(&db),
        11,
        "drop-indexes dropped before refusing"
    );

    let fresh = TestDb::seeded("fmt_first_create", ORDERS);
    support::run(fresh.cmd().args(["create-indexes", "--format", "csv"]), 2);
    assert_eq!(
        managed_indexes(&fresh),
        0,
        "create-indexes built before refusing"
    );

    let empty = TestDb::empty("fmt_first_seed");
    support::run(
        empty.cmd().args([
            "--format",
            "csv",
            "seed",
            "--create-schema",
            "--orders",
            "10",
        ]),
        2,
    );
    assert_eq!(
        empty.scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'orders'"),
        0,
        "seed created the table before refusing"
    );
    // What a command can render is still rendered.
    support::run(
        db.cmd().args([
            "--format",
            "csv",
            "benchmark",
            "--iterations",
            "1",
            "--warmup",
            "0",
        ]),
        0,
    );
}

/// Suites whose one query writes in a way a text check would miss.
const WRITING_QUERIES: [(&str, &str); 3] = [
    (
        "cte_delete",
        "WITH d AS (DELETE FROM orders WHERE order_id IN (SELECT order_id FROM orders LIMIT 10) RETURNING 1) SELECT count(*) FROM d",
    ),
    ("for_update", "SELECT order_id FROM orders LIMIT 5 FOR UPDATE"),
    ("writer_fn", "SELECT o2o_test_forget_orders()"),
];

fn writing_suite(name: &str, sql: &str) -> tempfile::NamedTempFile {
    sql_file(&format!(
        "-- name: count_all\n-- index: no\nSELECT count(*) FROM orders;\n\n-- name: {name}\n-- index: no\n{sql};\n"
    ))
}

#[test]
fn a_suite_query_that_writes_is_refused_by_the_server_and_changes_nothing() {
    let db = TestDb::seeded("suite_writes", ORDERS);
    db.client()
        .batch_execute(
            "CREATE FUNCTION o2o_test_forget_orders() RETURNS bigint LANGUAGE sql AS \
             $$ WITH d AS (DELETE FROM orders WHERE order_id <= 10 RETURNING 1) SELECT count(*) FROM d $$",
        )
        .unwrap();
    let rows = || db.scalar_i64("SELECT count(*) FROM orders");
    let before = rows();
    for (name, sql) in WRITING_QUERIES {
        let suite = writing_suite(name, sql);
        let path = suite.path().to_str().unwrap().to_string();
        for args in [
            vec!["benchmark", "--iterations", "3", "--queries", &path],
            vec![
                "benchmark",
                "--iterations",
                "3",
                "--clients",
                "2",
                "--queries",
                &path,
            ],
            vec!["verify", "--only", "planner,speed", "--queries", &path],
        ] {
            let out = db.cmd().args(&args).output().unwrap();
            let err = support::stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} {name}: {err}");
            assert!(
                err.contains(&format!("{path}:7: query {name} writes")),
                "{args:?}: the refusal names the file and line: {err}"
            );
            assert!(err.contains("READ ONLY"), "{err}");
            assert_eq!(rows(), before, "{args:?} {name} deleted rows");
        }
    }
}

/// A UNIQUE index whose new definition cannot be built (the table has
/// duplicates for it) is left as it was by --replace-drifted: still there,
/// still valid, still enforcing uniqueness, and no replacement left behind.
#[test]
fn replace_drifted_keeps_the_old_index_until_the_new_one_is_valid() {
    let db = TestDb::seeded("replace_first", ORDERS);
    db.client()
        .batch_execute("CREATE UNIQUE INDEX idx_orders_order_no ON orders (order_no)")
        .unwrap();
    let file = sql_file("CREATE UNIQUE INDEX idx_orders_order_no ON orders (store_name, date);\n");
    let path = file.path().to_str().unwrap();

    let dry = db
        .cmd()
        .args([
            "create-indexes",
            "--replace-drifted",
            "--dry-run",
            "--indexes",
            path,
        ])
        .output()
        .unwrap();
    let text = support::stdout(&dry);
    let build = text
        .find("CREATE UNIQUE INDEX CONCURRENTLY \"idx_orders_order_no_o2o_new\"")
        .unwrap_or_else(|| panic!("no build of the replacement: {text}"));
    let drop = text
        .find("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"idx_orders_order_no\"")
        .unwrap_or_else(|| panic!("no drop of the old index: {text}"));
    let rename = text
        .find("RENAME TO \"idx_orders_order_no\"")
        .unwrap_or_else(|| panic!("no rename: {text}"));
    assert!(
        build < drop && drop < rename,
        "built first, swapped last: {text}"
    );

    let out = support::run(
        db.cmd().args([
            "--format",
            "json",
            "create-indexes",
            "--replace-drifted",
            "--indexes",
            path,
        ]),
        1,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["indexes"][0]["status"], "failed", "{v}");
    let def: String = db
        .client()
        .query_one(
            "SELECT pg_get_indexdef(indexrelid) || ' ' || indisvalid FROM pg_index \
             WHERE indexrelid = 'idx_orders_order_no'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(def.ends_with("USING btree (order_no) true"), "{def}");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname LIKE '%o2o_new'"),
        0,
        "the failed replacement was left behind"
    );
    let dup = db.client().batch_execute(
        "INSERT INTO orders (order_no, date, order_time, store_name, channel, product_name, category_l1, \
         category_l2, scene, time_period, quantity, unit_price, amount, cost, profit) \
         SELECT order_no, date, order_time, store_name, channel, product_name, category_l1, category_l2, \
         scene, time_period, quantity, unit_price, amount, cost, profit FROM orders LIMIT 1",
    );
    assert!(dup.is_err(), "uniqueness is no longer enforced");

    // A replacement that can be built is swapped in under the managed name.
    let good = sql_file("CREATE UNIQUE INDEX idx_orders_order_no ON orders (order_no, channel);\n");
    support::run(
        db.cmd()
            .args(["create-indexes", "--replace-drifted", "--indexes"])
            .arg(good.path()),
        0,
    );
    let def: String = db
        .client()
        .query_one(
            "SELECT pg_get_indexdef('idx_orders_order_no'::regclass)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(def.ends_with("(order_no, channel)"), "{def}");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_class WHERE relname LIKE '%o2o_new'"),
        0
    );
}

/// verify and --dry-run compare definitions without writing: they work where
/// nothing may be written (default_transaction_read_only, no TEMPORARY).
#[test]
fn verify_and_dry_run_work_where_nothing_may_be_written() {
    let db = TestDb::seeded("read_only_role", ORDERS);
    support::run(db.cmd().arg("create-indexes"), 0);
    let role = format!("reader_{}", std::process::id());
    db.client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT SELECT ON orders TO {role}; \
             REVOKE TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC; \
             ALTER ROLE {role} SET default_transaction_read_only = on",
            db = db.name
        ))
        .unwrap();
    let reader = db.url_as(&role);
    let out = support::run(
        support::bare_cmd().args([
            "--database-url",
            &reader,
            "verify",
            "--only",
            "schema,indexes",
        ]),
        0,
    );
    let text = support::stdout(&out);
    assert!(
        text.contains("all 11 managed indexes present, valid and as defined"),
        "{text}"
    );

    // The superuser's database turned read-only: the plan is still computed.
    db.client()
        .batch_execute(&format!(
            "DROP INDEX idx_orders_scene; ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
            db.name
        ))
        .unwrap();
    let out = support::run(db.cmd().args(["create-indexes", "--dry-run"]), 0);
    let text = support::stdout(&out);
    assert!(text.contains("would create"), "{text}");
    assert!(text.contains("created 1 / skipped 10"), "{text}");
    let mut admin = db.client();
    admin
        .batch_execute("SET default_transaction_read_only = off")
        .unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" RESET default_transaction_read_only; \
             DROP OWNED BY {role}; DROP ROLE {role}",
            db.name
        ))
        .unwrap();
}

/// An identical index under another name is not built twice, and verify says
/// which index serves the managed name.
#[test]
fn an_identical_index_under_another_name_is_recognised() {
    let db = TestDb::seeded("twin", ORDERS);
    db.client()
        .batch_execute(
            "CREATE INDEX orders_scene_by_hand ON orders USING btree (\"scene\" ASC NULLS LAST)",
        )
        .unwrap();
    let out = support::run(db.cmd().args(["--format", "json", "create-indexes"]), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scene = v["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "idx_orders_scene")
        .unwrap();
    assert_eq!(scene["status"], "skipped", "{scene}");
    assert!(
        scene["error"]
            .as_str()
            .unwrap()
            .contains("exists as orders_scene_by_hand"),
        "{scene}"
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM pg_indexes WHERE tablename = 'orders' AND indexdef LIKE '%(scene)'"),
        1,
        "a duplicate of the hand-made index was built"
    );
    // A WARN, not a FAIL.
    let out = support::run(db.cmd().args(["verify", "--only", "indexes"]), 0);
    let text = support::stdout(&out);
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("idx_orders_scene: served by orders_scene_by_hand"),
        "{text}"
    );
    assert!(
        text.contains("RENAME TO \"idx_orders_scene\""),
        "the fix renames it: {text}"
    );
}

/// An INVALID index outside the managed set is reported with its fix.
#[test]
fn an_invalid_index_outside_the_managed_set_fails_verify() {
    let db = TestDb::seeded("stray_invalid", ORDERS);
    support::run(db.cmd().arg("create-indexes"), 0);
    // A unique build over duplicates fails and leaves its INVALID entry behind.
    let failed = db
        .client()
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY orders_stray ON orders (store_name)");
    assert!(failed.is_err());
    let out = support::run(db.cmd().args(["verify", "--only", "indexes"]), 1);
    let text = support::stdout(&out);
    assert!(
        text.contains("orders_stray: INVALID and not in the managed set"),
        "{text}"
    );
    assert!(
        text.contains("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"orders_stray\""),
        "{text}"
    );
}

/// A login role with SELECT on orders and nothing else.
fn reader_role(db: &TestDb, label: &str) -> String {
    let role = format!("{label}_{}", std::process::id());
    db.client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT SELECT ON orders TO {role}"
        ))
        .unwrap();
    role
}

fn drop_role(db: &TestDb, role: &str) {
    db.client()
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .unwrap();
}

/// A role that may read but not build is told so before any plan is promised.
#[test]
fn missing_privileges_are_found_before_the_plan() {
    let db = TestDb::seeded("privileges", ORDERS);
    let role = reader_role(&db, "no_owner");
    let url = db.url_as(&role);
    for args in [
        vec!["create-indexes", "--dry-run"],
        vec!["create-indexes"],
        vec!["drop-indexes"],
    ] {
        let out = support::bare_cmd()
            .args(["--database-url", &url])
            .args(&args)
            .output()
            .unwrap();
        let err = support::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("role {role} may not run"))
                && err.contains("is owned by postgres")
                && err.contains(&format!("GRANT \"postgres\" TO \"{role}\"")),
            "{args:?}: {err}"
        );
        assert!(support::stdout(&out).is_empty(), "no plan was printed");
    }
    assert_eq!(managed_indexes(&db), 0);
    drop_role(&db, &role);
}

/// A role without pg_read_all_stats sees only its own sessions: verify's
/// sessions check warns instead of passing on what it could not see.
#[test]
fn a_restricted_view_of_sessions_is_a_warning_not_a_pass() {
    let db = TestDb::seeded("restricted_view", ORDERS);
    let role = reader_role(&db, "watcher");
    let url = db.url_as(&role);
    let mut other = db.client();
    other.batch_execute("BEGIN; SELECT 1").unwrap();
    let verify = |url: &str| {
        let out = support::bare_cmd()
            .args(["--database-url", url, "verify", "--only", "sessions"])
            .output()
            .unwrap();
        (out.status.code(), support::stdout(&out))
    };
    let (code, text) = verify(&url);
    assert_eq!(code, Some(0), "a warning: {text}");
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains(&format!("role {role} sees only its own sessions")),
        "{text}"
    );
    assert!(
        text.contains(&format!("GRANT pg_read_all_stats TO \"{role}\";")),
        "{text}"
    );
    let out = support::bare_cmd()
        .args(["--database-url", &url, "pool-status"])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert!(
        text.contains(&format!("role {role} sees only its own sessions' state"))
            && text.contains("GRANT pg_read_all_stats TO"),
        "pool-status says so too: {text}"
    );
    db.client()
        .batch_execute(&format!("GRANT pg_read_all_stats TO {role}"))
        .unwrap();
    let (code, text) = verify(&url);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("PASS") && !text.contains("sees only"),
        "{text}"
    );
    other.batch_execute("ROLLBACK").unwrap();
    drop(other);
    drop_role(&db, &role);
}

/// An ACCESS EXCLUSIVE holder (a migration) is named, whatever step it stops.
#[test]
fn an_access_exclusive_holder_is_named() {
    let db = TestDb::seeded("access_exclusive", ORDERS);
    support::run(db.cmd().args(["create-indexes", "--no-analyze"]), 0);
    db.client()
        .batch_execute("DROP INDEX idx_orders_scene")
        .unwrap();
    let mut holder = db.client();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    holder
        .batch_execute(
            "SET application_name = 'migration'; BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE",
        )
        .unwrap();
    let named = |text: &str| {
        text.contains(&format!("pid {pid} (migration"))
            && text.contains("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    };
    let out = db
        .cmd()
        .args([
            "create-indexes",
            "--lock-timeout",
            "1s",
            "--lock-retries",
            "0",
        ])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(named(&err) && err.contains("AccessExclusiveLock"), "{err}");

    let out = support::run(
        db.cmd().args([
            "drop-indexes",
            "idx_orders_channel",
            "--lock-timeout",
            "1s",
            "--lock-retries",
            "0",
        ]),
        1,
    );
    let text = support::stdout(&out);
    assert!(named(&text), "{text}");
    holder.batch_execute("ROLLBACK").unwrap();
}

/// Index file messages (item 17): a name PostgreSQL would truncate is refused
/// with the file and line before anything is built; a byte-order mark and
/// `orders` beside `public.orders` are accepted as the one table they are.
#[test]
fn index_file_names_are_checked_as_postgres_reads_them() {
    let db = TestDb::seeded("index_file_names", ORDERS);
    let long = format!("idx_orders_{}", "x".repeat(60));
    let file = sql_file(&format!(
        "CREATE INDEX idx_orders_a ON orders (store_name);\n\nCREATE INDEX {long} ON orders (date);\n"
    ));
    let path = file.path().to_str().unwrap();
    for command in ["create-indexes", "verify"] {
        let out = db
            .cmd()
            .args([command, "--indexes", path])
            .output()
            .unwrap();
        let err = support::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(&format!("{path}:3: index name `{long}` is 71 bytes")),
            "{command}: {err}"
        );
    }
    assert_eq!(managed_indexes(&db), 0, "built before refusing");

    let file = sql_file(
        "\u{feff}CREATE INDEX idx_orders_a ON orders (store_name);\nCREATE INDEX idx_orders_b ON public.orders (date);\n",
    );
    let out = support::run(
        db.cmd()
            .args(["--format", "json", "create-indexes", "--indexes"])
            .arg(file.path()),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = v["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["created", "created"], "{v}");
}

/// Item 16: with --format json, a command that cannot run still prints one
/// JSON document on stdout, the error with its exit code, redacted as stderr is.
#[test]
fn json_output_says_why_the_command_could_not_run() {
    let url = "postgres://dba:s3cr3t-pw@127.0.0.1:1/o2o";
    let cases: [&[&str]; 3] = [
        // The server is unreachable.
        &["--database-url", url, "--format", "json", "verify"],
        // The arguments are refused before anything runs.
        &[
            "--database-url",
            url,
            "benchmark",
            "--format=json",
            "--duration",
            "0s",
        ],
        // The format itself is not available for the command.
        &["--database-url", url, "--format", "json", "demo"],
    ];
    for args in cases {
        let out = support::bare_cmd().args(args).output().unwrap();
        let (stdout, stderr) = (support::stdout(&out), support::stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{args:?}: stdout is not one JSON document ({e}): {stdout:?}")
        });
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
        assert!(
            !message.is_empty() && stderr.contains(message),
            "{args:?}: {doc} vs {stderr}"
        );
        assert!(
            !stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"),
            "{stdout}{stderr}"
        );
    }
    // Other formats keep stdout for reports only.
    let out = support::run(
        support::bare_cmd().args(["--database-url", url, "verify"]),
        2,
    );
    assert!(out.stdout.is_empty(), "{}", support::stdout(&out));
}

/// Item 18: the statistics seed leaves are the ones verify reads: straight
/// after a seed (small and large, fresh table and --truncate), verify's
/// statistics check passes with nothing modified since ANALYZE.
#[test]
fn verify_straight_after_seed_accepts_its_statistics() {
    let db = TestDb::empty("seed_then_verify");
    for args in [
        &["seed", "--create-schema", "--orders", "500"][..],
        &["seed", "--truncate", "--orders", "20000"][..],
    ] {
        support::run(db.cmd().args(args), 0);
        let out = db
            .cmd()
            .args(["--format", "json", "verify", "--only", "statistics"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let check = &v["checks"][0];
        assert_eq!(out.status.code(), Some(0), "{args:?}: {v}");
        assert_eq!(check["status"], "pass", "{args:?}: {check}");
        assert!(
            check["detail"]
                .as_str()
                .unwrap()
                .contains(" 0 modified since"),
            "{args:?}: {check}"
        );
    }
}

/// Item 10a: a threshold gate over zero runs does not pass. `--duration 1ns`
/// ends before the first run: each query is reported not measured, exit 1.
#[test]
fn a_benchmark_that_measured_nothing_is_not_green() {
    let db = TestDb::seeded("bench_nothing", ORDERS);
    let base = [
        "benchmark",
        "--only",
        "by_store,latest_orders",
        "--duration",
        "1ns",
    ];
    for clients in ["1", "2"] {
        let out = support::run(
            db.cmd()
                .args(base)
                .args(["--clients", clients, "--format", "json"]),
            1,
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let queries = v["queries"].as_array().unwrap();
        assert_eq!(queries.len(), 2, "{v}");
        for q in queries {
            assert_eq!(
                (q["iterations"].as_u64(), q["errors"].as_u64()),
                (Some(0), Some(0)),
                "{q}"
            );
            assert_eq!(q["not_measured"], true, "{q}");
        }
    }
    let out = support::run(db.cmd().args(base), 1);
    let text = support::stdout(&out);
    assert!(
        text.contains(
            "not measured (no successful timed run, so nothing to judge): by_store, latest_orders"
        ),
        "{text}"
    );
    assert!(!text.contains("every query under it"), "{text}");
    // Measured queries are judged as before.
    let out = support::run(
        db.cmd()
            .args(["benchmark", "--only", "by_store", "--iterations", "2"]),
        0,
    );
    assert!(support::stdout(&out).contains("every query under it"));
}

/// Item 10b: one torn last line in the history (a crash or a full disk
/// mid-write) is skipped and reported with its file and line; the run is
/// compared with the last complete one and appended on a line of its own.
#[test]
fn a_torn_history_line_is_skipped_and_the_nightly_job_goes_on() {
    let db = TestDb::seeded("bench_torn_history", ORDERS);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("bench.jsonl");
    let h = history.to_str().unwrap();
    let night = || {
        db.cmd()
            .args(["--format", "json", "benchmark", "--only", "by_store"])
            .args(["--iterations", "3", "--history", h, "--baseline", h])
            // Only the file is on trial here, not the timings.
            .args(["--slower-percent", "100000"])
            .output()
            .unwrap()
    };
    let first = night();
    assert_eq!(first.status.code(), Some(0), "{}", support::stderr(&first));
    // The second night dies mid-write: half a record, no newline.
    let text = std::fs::read_to_string(&history).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&history)
        .unwrap();
    f.write_all(&text.as_bytes()[..text.len() / 2]).unwrap();
    drop(f);

    for (nth, want_lines) in [(3, 3), (4, 4)] {
        let out = night();
        let err = support::stderr(&out);
        assert_eq!(out.status.code(), Some(0), "night {nth}: {err}");
        assert!(
            err.contains(&format!("{h}:2: skipped a damaged history line")),
            "night {nth}: {err}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let damaged = v["meta"]["damaged_history_lines"].as_array().unwrap();
        assert_eq!(damaged.len(), 1, "{v}");
        assert_eq!(
            (damaged[0]["file"].as_str(), damaged[0]["line"].as_u64()),
            (Some(h), Some(2))
        );
        assert!(
            v["meta"]["baseline"]["started_at"].is_string(),
            "compared: {v}"
        );
        let lines: Vec<String> = std::fs::read_to_string(&history)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), want_lines, "{lines:?}");
        let last: serde_json::Value = serde_json::from_str(&lines[want_lines - 1])
            .unwrap_or_else(|e| panic!("night {nth} was not appended on a line of its own: {e}"));
        assert_eq!(last["queries"][0]["name"], "by_store");
    }
}

/// Item 10c: verify's speed check bounds each timed run. A query slower than
/// the statement timeout (default 10x the threshold, at least 1 s; flag and
/// [verify] statement_timeout) is cancelled once and FAILs as slow, naming
/// the timeout; it is not run five times, nor reported as an error.
#[test]
fn the_speed_check_cancels_a_run_at_its_statement_timeout() {
    let db = TestDb::seeded("speed_timeout", ORDERS);
    let suite = sql_file("-- name: quick\nSELECT 1;\n\n-- name: sleepy\nSELECT pg_sleep(2);\n");
    let path = suite.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("o2o-db.toml");
    std::fs::write(&cfg, "[verify]\nstatement_timeout = \"400ms\"\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let base = [
        "verify",
        "--only",
        "speed",
        "--max-ms",
        "20",
        "--queries",
        path,
    ];
    for (extra, timeout_ms) in [
        (&[][..], 1000),
        (&["--statement-timeout", "300ms"][..], 300),
        (&["--config", cfg][..], 400),
    ] {
        let started = std::time::Instant::now();
        let out = db
            .cmd()
            .args(["--format", "json"])
            .args(base)
            .args(extra)
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{extra:?}: {}",
            support::stderr(&out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let check = &v["checks"][0];
        assert_eq!(check["status"], "fail", "{check}");
        let detail = check["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!(
                "sleepy: exceeded the statement timeout of {timeout_ms} ms"
            )),
            "{extra:?}: {detail}"
        );
        assert!(!detail.contains("could not check"), "{detail}");
        assert!(detail.contains("1 of 2 queries"), "{detail}");
        // One cancelled run, not five 2-second ones.
        assert!(
            took < std::time::Duration::from_secs(6),
            "{extra:?} took {took:?}"
        );
    }
    // A bound the threshold could not pass under is refused before any run.
    let out = support::run(db.cmd().args(base).args(["--statement-timeout", "10ms"]), 2);
    assert!(
        support::stderr(&out)
            .contains("--statement-timeout 10ms must be longer than the speed threshold of 20 ms"),
        "{}",
        support::stderr(&out)
    );
}

/// One report judges one table: with the index set on `sales.orders` and an
/// old, empty `public.orders` on the search_path, benchmark and verify run
/// their queries against `sales.orders` and say so.
#[test]
fn every_timed_query_runs_against_the_table_of_the_index_set() {
    let db = TestDb::seeded("one_table", ORDERS);
    db.client()
        .batch_execute(
            "CREATE SCHEMA sales; CREATE TABLE sales.orders (LIKE public.orders INCLUDING ALL); \
             INSERT INTO sales.orders SELECT * FROM public.orders; ANALYZE sales.orders; \
             TRUNCATE public.orders",
        )
        .unwrap();
    let indexes =
        sql_file("CREATE INDEX idx_orders_store_date ON sales.orders (store_name, date);\n");
    let mut config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        config,
        "[indexes]\nfile = \"{}\"\n[alert]\nquery_ms = {:.1}",
        indexes.path().display(),
        support::GENEROUS_MS
    )
    .unwrap();
    let config = config.path().to_str().unwrap().to_string();
    let out = support::run(
        db.cmd().args([
            "--config",
            &config,
            "--format",
            "json",
            "benchmark",
            "--iterations",
            "2",
        ]),
        0,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["meta"]["table"], "sales.orders", "{}", v["meta"]);
    assert_eq!(v["meta"]["orders"], ORDERS, "{}", v["meta"]);

    let out = support::run(
        db.cmd()
            .args(["--config", &config, "verify", "--only", "speed"]),
        0,
    );
    let text = support::stdout(&out);
    assert!(text.contains("medians of 5 runs on sales.orders"), "{text}");
}
