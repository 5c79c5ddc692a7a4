//! Regression tests for the data-integrity cases of the safety issue: no
//! command damages data, whatever format, suite or index file it is given.

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
    let out = db.cmd().arg("create-indexes").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    assert_eq!(managed_indexes(&db), 11);

    let out = db
        .cmd()
        .args(["--format", "csv", "drop-indexes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
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
    let out = fresh
        .cmd()
        .args(["create-indexes", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        managed_indexes(&fresh),
        0,
        "create-indexes built before refusing"
    );

    let empty = TestDb::empty("fmt_first_seed");
    let out = empty
        .cmd()
        .args([
            "--format",
            "csv",
            "seed",
            "--create-schema",
            "--orders",
            "10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        empty.scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'orders'"),
        0,
        "seed created the table before refusing"
    );
    // What a command can render is still rendered.
    let out = db
        .cmd()
        .args([
            "--format",
            "csv",
            "benchmark",
            "--iterations",
            "1",
            "--warmup",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
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

    let out = db
        .cmd()
        .args([
            "--format",
            "json",
            "create-indexes",
            "--replace-drifted",
            "--indexes",
            path,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
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
    let out = db
        .cmd()
        .args(["create-indexes", "--replace-drifted", "--indexes"])
        .arg(good.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
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

/// A URL for `db` as another role (the sandbox trusts local connections).
fn url_as(db: &TestDb, role: &str) -> String {
    db.url().replacen("postgres@", &format!("{role}@"), 1)
}

/// verify and --dry-run compare definitions without writing: they work where
/// nothing may be written (default_transaction_read_only, no TEMPORARY).
#[test]
fn verify_and_dry_run_work_where_nothing_may_be_written() {
    let db = TestDb::seeded("read_only_role", ORDERS);
    let out = db.cmd().arg("create-indexes").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let role = format!("reader_{}", std::process::id());
    db.client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT SELECT ON orders TO {role}; \
             REVOKE TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC; \
             ALTER ROLE {role} SET default_transaction_read_only = on",
            db = db.name
        ))
        .unwrap();
    let reader = url_as(&db, &role);
    let out = support::bare_cmd()
        .args([
            "--database-url",
            &reader,
            "verify",
            "--only",
            "schema,indexes",
        ])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        support::stderr(&out)
    );
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
    let out = db
        .cmd()
        .args(["create-indexes", "--dry-run"])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        support::stderr(&out)
    );
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
    let out = db
        .cmd()
        .args(["--format", "json", "create-indexes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
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
    let out = db
        .cmd()
        .args(["verify", "--only", "indexes"])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "a WARN, not a FAIL: {text}");
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
    let out = db.cmd().arg("create-indexes").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    // A unique build over duplicates fails and leaves its INVALID entry behind.
    let failed = db
        .client()
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY orders_stray ON orders (store_name)");
    assert!(failed.is_err());
    let out = db
        .cmd()
        .args(["verify", "--only", "indexes"])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
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
    let url = url_as(&db, &role);
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
    let url = url_as(&db, &role);
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
    let out = db
        .cmd()
        .args(["create-indexes", "--no-analyze"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
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

    let out = db
        .cmd()
        .args([
            "drop-indexes",
            "idx_orders_channel",
            "--lock-timeout",
            "1s",
            "--lock-retries",
            "0",
        ])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        support::stderr(&out)
    );
    assert!(named(&text), "{text}");
    holder.batch_execute("ROLLBACK").unwrap();
}
