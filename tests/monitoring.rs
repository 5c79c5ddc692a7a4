//! Monitoring output against real PostgreSQL: every command's `--format
//! prometheus` passes `promtool check metrics` and is parsed back with a real
//! parser to assert values; `--format nagios` lines and exit codes; `--output`
//! never leaves a partial file.

use crate::support::{self, TestDb};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Checks `text` with promtool (the Prometheus project's own linter).
pub fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused it:\n{}{}\n--- the text:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The samples of a document, by metric name.
pub fn samples(text: &str) -> HashMap<String, Vec<prometheus_parse::Sample>> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text");
    let mut by_name: HashMap<String, Vec<prometheus_parse::Sample>> = HashMap::new();
    for s in scrape.samples {
        by_name.entry(s.metric.clone()).or_default().push(s);
    }
    by_name
}

/// The value of the one sample of `name` whose labels include `labels`.
pub fn value(
    all: &HashMap<String, Vec<prometheus_parse::Sample>>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let found: Vec<f64> = all
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .iter()
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
    found[0]
}

/// Runs the binary and checks its prometheus output; returns it parsed.
fn scrape(out: &Output) -> HashMap<String, Vec<prometheus_parse::Sample>> {
    let text = support::stdout(out);
    promtool_accepts(&text);
    samples(&text)
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn connect_as(db: &TestDb, application: &str) -> postgres::Client {
    let mut conn = db.conn.clone();
    conn.application_name = Some(application.into());
    o2o_db::db::connect(&conn).unwrap()
}

#[test]
fn pool_status_metrics_and_nagios_follow_the_alert() {
    let db = TestDb::empty("mon_pool");
    let config = config_file(
        "[database]\napplication_name = \"o2o-dashboard\"\n\n[pool]\nsize = 2\nmax_overflow = 2\n\n[alert]\npool_usage_percent = 70\n",
    );
    let run = |args: &[&str]| {
        db.cmd()
            .arg("--config")
            .arg(config.path())
            .args(args)
            .output()
            .unwrap()
    };
    let calm = run(&["--format", "prometheus", "pool-status"]);
    assert_eq!(calm.status.code(), Some(0), "{}", support::stderr(&calm));
    let m = scrape(&calm);
    assert_eq!(value(&m, "o2o_db_pool_max_size", &[]), 4.0);
    assert_eq!(value(&m, "o2o_db_pool_alert", &[]), 0.0);
    let ok = run(&["--format", "nagios", "pool-status"]);
    let line = support::stdout(&ok);
    assert_eq!(ok.status.code(), Some(0), "{line}");
    assert!(
        line.starts_with("O2O_DB POOL_STATUS OK - o2o-dashboard at 0.0%"),
        "{line}"
    );
    assert!(line.contains("| app_usage=0.0%;70;70;0;100"), "{line}");

    let _dashboard: Vec<_> = (0..4).map(|_| connect_as(&db, "o2o-dashboard")).collect();
    let busy = run(&["--format", "prometheus", "pool-status"]);
    assert_eq!(busy.status.code(), Some(1), "the alert is a finding");
    let m = scrape(&busy);
    let usage = value(
        &m,
        "o2o_db_app_usage_ratio",
        &[("application", "o2o-dashboard")],
    );
    assert!(usage > 0.8, "4 of 4 connections: {usage}");
    assert_eq!(value(&m, "o2o_db_pool_alert", &[]), 1.0);
    assert_eq!(
        value(
            &m,
            "o2o_db_server_connections",
            &[("application", "o2o-dashboard"), ("state", "idle")]
        ),
        4.0
    );
    let critical = run(&["--format", "nagios", "pool-status"]);
    assert_eq!(critical.status.code(), Some(2), "CRITICAL");
    assert!(support::stdout(&critical).starts_with("O2O_DB POOL_STATUS CRITICAL - "));
}

#[test]
fn nagios_says_unknown_with_exit_3_when_the_check_cannot_run() {
    for args in [
        vec![
            "--database-url",
            "postgres://nobody@127.0.0.1:1/x?connect_timeout=2",
            "--format",
            "nagios",
            "pool-status",
        ],
        vec!["--format", "nagios", "pool-status", "--no-such-flag"],
    ] {
        let out = support::bare_cmd().args(&args).output().unwrap();
        let line = support::stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {line}{}",
            support::stderr(&out)
        );
        assert!(
            line.starts_with("O2O_DB ") && line.contains(" UNKNOWN - "),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1, "one status line: {line}");
    }
}

#[test]
fn output_is_written_whole_or_not_at_all() {
    let db = TestDb::empty("mon_output");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o2o_db.prom");
    let out = db
        .cmd()
        .args(["--format", "prometheus", "--output"])
        .arg(&path)
        .arg("pool-status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    assert!(
        support::stdout(&out).is_empty(),
        "the report went to the file"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    promtool_accepts(&text);

    // A run that cannot finish leaves the last complete file and no temporary one.
    let failed = support::bare_cmd()
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/x?connect_timeout=2",
        ])
        .args(["--format", "prometheus", "--output"])
        .arg(&path)
        .arg("pool-status")
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("o2o_db.prom")]);
    // An unwritable place fails before any work.
    let out = db
        .cmd()
        .args([
            "--format",
            "prometheus",
            "--output",
            "/nonexistent/dir/x.prom",
            "pool-status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("--output /nonexistent/dir/x.prom"));
}

#[test]
fn the_sample_alerting_rules_are_valid() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/prometheus/o2o-db.rules.yml"
    );
    let out = Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .expect("promtool");
    let text = format!("{}{}", support::stdout(&out), support::stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
}

#[test]
fn create_indexes_metrics_count_what_the_run_did() {
    let db = TestDb::seeded("mon_create", 2000);
    let out = db
        .cmd()
        .args(["--format", "prometheus", "create-indexes", "--no-analyze"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let m = scrape(&out);
    assert_eq!(
        value(
            &m,
            "o2o_db_create_indexes_indexes",
            &[("status", "created")]
        ),
        11.0
    );
    assert_eq!(
        value(&m, "o2o_db_create_indexes_indexes", &[("status", "failed")]),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "o2o_db_create_indexes_index_status",
            &[
                ("index", "idx_orders_scene"),
                ("status", "created"),
                ("table", "public.orders")
            ]
        ),
        1.0
    );
    assert!(
        value(
            &m,
            "o2o_db_create_indexes_index_size_bytes",
            &[("index", "idx_orders_scene")]
        ) > 0.0
    );
    let again = db
        .cmd()
        .args(["--format", "prometheus", "create-indexes", "--no-analyze"])
        .output()
        .unwrap();
    let m = scrape(&again);
    assert_eq!(
        value(
            &m,
            "o2o_db_create_indexes_indexes",
            &[("status", "skipped")]
        ),
        11.0
    );
}

#[test]
fn verify_metrics_show_an_invalid_index_and_nagios_follows_the_checks() {
    let db = TestDb::seeded("mon_verify", 2000);
    support::run(db.cmd().args(["create-indexes"]), 0);
    let config = config_file(&format!(
        "[alert]\nquery_ms = {:.1}\n",
        support::GENEROUS_MS
    ));
    let verify = |args: &[&str]| {
        db.cmd()
            .arg("--config")
            .arg(config.path())
            .args(args)
            .output()
            .unwrap()
    };
    let checks = ["verify", "--only", "indexes,statistics,sessions"];
    let out = verify(&[&["--format", "nagios"][..], &checks].concat());
    let line = support::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{line}");
    assert!(
        line.starts_with("O2O_DB VERIFY OK - 3 passed, 0 warned, 0 failed | checks=3"),
        "{line}"
    );

    // A failed concurrent rebuild leaves idx_orders_scene INVALID.
    db.client()
        .batch_execute(
            "DROP INDEX idx_orders_scene; \
             UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_orders_channel'::regclass",
        )
        .unwrap();
    let out = verify(&[&["--format", "prometheus"][..], &checks].concat());
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let m = scrape(&out);
    assert_eq!(
        value(&m, "o2o_db_verify_check_status", &[("check", "indexes")]),
        2.0
    );
    assert_eq!(
        value(&m, "o2o_db_verify_check_status", &[("check", "statistics")]),
        0.0
    );
    assert_eq!(
        value(&m, "o2o_db_index_valid", &[("index", "idx_orders_channel")]),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "o2o_db_index_exists",
            &[("index", "idx_orders_channel")]
        ),
        1.0
    );
    assert_eq!(
        value(&m, "o2o_db_index_exists", &[("index", "idx_orders_scene")]),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "o2o_db_index_valid",
            &[("index", "idx_orders_store_date")]
        ),
        1.0
    );
    assert!(
        value(
            &m,
            "o2o_db_index_size_bytes",
            &[("index", "idx_orders_store_date")]
        ) > 0.0
    );
    assert!(
        value(
            &m,
            "o2o_db_table_last_analyze_age_seconds",
            &[("table", "public.orders")]
        ) >= 0.0
    );
    let out = verify(&[&["--format", "nagios"][..], &checks].concat());
    assert_eq!(
        out.status.code(),
        Some(2),
        "CRITICAL: {}",
        support::stdout(&out)
    );
    assert!(support::stdout(&out)
        .starts_with("O2O_DB VERIFY CRITICAL - 2 passed, 0 warned, 1 failed (indexes FAIL)"));
    db.client()
        .batch_execute("UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'idx_orders_channel'::regclass")
        .unwrap();
    // A warning alone (a hand-made copy serving the managed name) is WARNING.
    db.client()
        .batch_execute("CREATE INDEX scene_by_hand ON orders (scene)")
        .unwrap();
    let out = verify(&[&["--format", "nagios"][..], &checks].concat());
    assert_eq!(
        out.status.code(),
        Some(1),
        "WARNING: {}",
        support::stdout(&out)
    );
    assert!(support::stdout(&out).starts_with("O2O_DB VERIFY WARNING - "));
}

#[test]
fn benchmark_metrics_are_a_latency_summary_per_query() {
    let db = TestDb::seeded("mon_bench", 2000);
    let out = db
        .cmd()
        .args([
            "--format",
            "prometheus",
            "benchmark",
            "--iterations",
            "5",
            "--max-p95-ms",
        ])
        .arg(format!("{}", support::GENEROUS_MS))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let text = support::stdout(&out);
    promtool_accepts(&text);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let store_date = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "o2o_db_benchmark_query_duration_seconds"
                && s.labels.get("query") == Some("store_date")
        })
        .expect("a summary for store_date");
    let prometheus_parse::Value::Summary(quantiles) = &store_date.value else {
        panic!("not a summary: {:?}", store_date.value)
    };
    let q: Vec<f64> = quantiles.iter().map(|c| c.count).collect();
    assert_eq!(quantiles.len(), 3);
    assert!(
        q[0] > 0.0 && q[0] <= q[1] && q[1] <= q[2],
        "p50 <= p95 <= p99 in seconds: {q:?}"
    );
    assert!(q[2] < 60.0, "seconds, not milliseconds: {q:?}");
    let m = samples(&text);
    assert_eq!(
        value(
            &m,
            "o2o_db_benchmark_query_duration_seconds_count",
            &[("query", "store_date")]
        ),
        5.0
    );
    assert_eq!(
        value(
            &m,
            "o2o_db_benchmark_query_errors",
            &[("query", "store_date")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "o2o_db_benchmark_query_measured",
            &[("query", "store_date")]
        ),
        1.0
    );
    let out = db
        .cmd()
        .args([
            "--format",
            "nagios",
            "benchmark",
            "--iterations",
            "3",
            "--max-p95-ms",
            "0.000001",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "every query over the limit: {}",
        support::stdout(&out)
    );
    assert!(support::stdout(&out)
        .starts_with("O2O_DB BENCHMARK CRITICAL - 9 queries: 9 over the p95 limit"));
}

/// Through a real pgbouncer in transaction mode with one server connection:
/// a client queued behind a held transaction shows as waiting, with its wait.
#[test]
fn pool_status_reads_pgbouncer_pools_and_exports_their_waiting_clients() {
    let db = TestDb::seeded("mon_bouncer", 500);
    let bouncer = support::pgbouncer::Bouncer::start(&db.name, "transaction", 1);
    let through =
        |url: &str| o2o_db::db::connect(&o2o_db::conninfo::ConnInfo::parse(url).unwrap()).unwrap();
    let mut holder = through(&bouncer.url(&db.name));
    holder.batch_execute("BEGIN; SELECT 1").unwrap();
    let mut waiter = through(&bouncer.url(&db.name));
    let queued = std::thread::spawn(move || waiter.batch_execute("SELECT 1").map(|_| ()));
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let admin = bouncer.url("pgbouncer");
    let out = db
        .cmd()
        .args([
            "--format",
            "prometheus",
            "pool-status",
            "--pgbouncer",
            &admin,
        ])
        .output()
        .unwrap();
    // A client queued in pgbouncer is an alert.
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let m = scrape(&out);
    let pool = [("database", db.name.as_str()), ("user", "postgres")];
    assert_eq!(value(&m, "o2o_db_pgbouncer_clients_waiting", &pool), 1.0);
    assert_eq!(value(&m, "o2o_db_pgbouncer_clients_active", &pool), 1.0);
    let waited = value(&m, "o2o_db_pgbouncer_max_wait_seconds", &pool);
    assert!(
        (1.0..60.0).contains(&waited),
        "it waited about 1.2 s: {waited}"
    );
    let table = support::stdout(
        &db.cmd()
            .args(["pool-status", "--pgbouncer", &admin])
            .output()
            .unwrap(),
    );
    assert!(table.contains("(PgBouncer "), "{table}");
    assert!(
        table.contains(&format!(
            "ALERT: pgbouncer pool {}/postgres: 1 client waiting",
            db.name
        )),
        "{table}"
    );
    holder.batch_execute("COMMIT").unwrap();
    queued.join().unwrap().unwrap();
}

/// An interrupted run writes its complete report (what it measured) or
/// nothing: never half a file.
#[test]
fn an_interrupted_run_leaves_a_whole_file() {
    let db = TestDb::empty("mon_output_signal");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o2o_db_pool.prom");
    let child = support::bare_std_cmd()
        .args([
            "--database-url",
            &db.url(),
            "--format",
            "prometheus",
            "--output",
        ])
        .arg(&path)
        .args(["pool-status", "--load", "2", "--duration", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", support::stderr(&out));
    let text = std::fs::read_to_string(&path).expect("the report was written");
    promtool_accepts(&text);
    assert!(text.contains("o2o_db_pool_max_size"), "{text}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}
