// pool-status against real PostgreSQL: the figures match what a test holds
// open, a leaked transaction is listed, the usage alert drives the exit code,
// --load queues or counts timeouts as the pool settings say, and --watch
// streams JSON lines until Ctrl-C. Through a real pgbouncer: clients queued
// in it alert, its server connections are its pool and not the application's,
// its admin console is not a --database-url, and --load names its pool size.

use crate::support::{self, pgbouncer::Bouncer, TestDb};
use o2o_db::commands::pool_status::{self as ps, PoolStatus, PoolStatusArgs, StatusOptions};
use o2o_db::config::HumanDuration;
use o2o_db::db::{self, Pool, Warm};
use o2o_db::report::{Outcome, Report};
use serde_json::Value;
use std::io::BufRead;
use std::time::{Duration, Instant};

fn connect_as(db: &TestDb, application: &str) -> postgres::Client {
    let mut conn = db.conn.clone();
    conn.application_name = Some(application.into());
    db::connect(&conn).unwrap()
}

fn group(status: &PoolStatus, application: &str, state: &str) -> i64 {
    status
        .server
        .by_application
        .iter()
        .find(|g| g.application == application && g.state == state)
        .map_or(0, |g| g.connections)
}

/// A config file in a directory of its own (kept alive by the returned TempDir).
fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o2o-db.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn duration(s: &str) -> Option<HumanDuration> {
    Some(HumanDuration::parse(s).unwrap())
}

#[test]
fn held_sessions_show_in_the_pool_and_on_the_server() {
    let db = TestDb::empty("ps_held");
    let pool = Pool::open(&db.config(), Warm::Lazy).unwrap(); // size 2 + overflow 3
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    let checkouts = pool.checkout_stats().checkouts;

    let status = o2o_db::pool_status(&pool).unwrap();
    assert_eq!(status.pool.max_size, 5);
    assert_eq!(status.pool.checked_out, 3);
    assert_eq!(status.pool.connections, 3);
    assert_eq!(status.pool.idle, 0);
    assert_eq!(status.pool.usage_percent, 60.0);
    // No idle pooled connection: the query went around the pool, and is left out.
    assert_eq!(status.server.own_backend.via, "direct");
    assert!(!status.server.own_backend.counted);
    assert_eq!(group(&status, "o2o-db-test", "idle"), 3);
    assert_eq!(status.connections_of("o2o-db-test"), 3);
    assert!(status.server.backends >= 3);
    // The sandbox's max_connections, and the superuser_reserved_connections default.
    assert_eq!(
        (status.server.max_connections, status.server.reserved),
        (200, 3)
    );
    assert!(status.taken_at.ends_with('Z'), "{}", status.taken_at);

    drop(held);
    let status = o2o_db::pool_status(&pool).unwrap();
    assert_eq!(status.pool.checked_out, 0);
    assert_eq!(status.pool.idle, 3);
    // Now it borrows an idle pooled connection and counts it as the idle one it is.
    assert_eq!(status.server.own_backend.via, "pool");
    assert!(status.server.own_backend.counted);
    assert_eq!(group(&status, "o2o-db-test", "idle"), 3);
    assert_eq!(group(&status, "o2o-db-test", "active"), 0);
    // Looking neither grew the pool nor showed up in its checkout counters.
    assert_eq!(pool.state().connections, 3);
    assert_eq!(pool.checkout_stats().checkouts, checkouts);
}

#[test]
fn the_status_of_an_exhausted_pool_neither_waits_nor_times_out() {
    let db = TestDb::empty("ps_exhausted");
    let mut config = db.config();
    config.pool.size = 1;
    config.pool.max_overflow = 0;
    let pool = Pool::open(&config, Warm::Lazy).unwrap();
    let _held = pool.get().unwrap();
    let status = o2o_db::pool_status(&pool).unwrap();
    assert_eq!(status.pool.usage_percent, 100.0);
    assert_eq!(status.connections_of("o2o-db-test"), 1);
    assert_eq!(pool.checkout_stats().timeouts, 0);
    assert_eq!(pool.state().connections, 1);
}

#[test]
fn a_session_left_idle_in_transaction_is_listed() {
    let db = TestDb::empty("ps_leak");
    let mut leak = connect_as(&db, "leaky-service");
    let leak_pid: i32 = leak
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    leak.batch_execute("BEGIN").unwrap();
    leak.execute(
        "SELECT count(*) FROM pg_class WHERE relname = $1",
        &[&"orders"],
    )
    .unwrap();
    // Idle but not in a transaction: not a leak.
    let _idle = connect_as(&db, "leaky-service");
    std::thread::sleep(Duration::from_millis(400));

    let pool = Pool::open(&db.config(), Warm::Lazy).unwrap();
    let options = StatusOptions {
        session_age: Duration::from_millis(100),
        exclude_own_connection: false,
        pooler_pids: Vec::new(),
        left_out_pids: Vec::new(),
    };
    let status = ps::pool_status_with(&pool, &options).unwrap();
    let leaks = &status.server.idle_in_transaction;
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    let l = &leaks[0];
    assert_eq!(l.pid, leak_pid);
    assert_eq!(l.application, "leaky-service");
    assert_eq!(l.user, "postgres");
    assert_eq!(l.client_addr, "local");
    assert_eq!(l.state, "idle in transaction");
    assert_eq!(l.query, "SELECT count(*) FROM pg_class WHERE relname = $1");
    assert!(l.idle_seconds >= 0.1, "{l:?}");
    assert!(l.transaction_seconds.unwrap() >= l.idle_seconds, "{l:?}");
    assert_eq!(group(&status, "leaky-service", "idle in transaction"), 1);
    assert_eq!(group(&status, "leaky-service", "idle"), 1);

    // Younger than the threshold: not listed.
    let patient = StatusOptions {
        session_age: Duration::from_secs(3600),
        ..options
    };
    let status = ps::pool_status_with(&pool, &patient).unwrap();
    assert!(status.server.idle_in_transaction.is_empty());

    // The binary lists it too; a leak alone is not the usage alert.
    let out = support::run(
        db.cmd()
            .args(["--format", "json", "pool-status", "--session-age", "100ms"]),
        0,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["idle_in_transaction"][0]["pid"], leak_pid);
    let out = db
        .cmd()
        .args(["pool-status", "--session-age", "100ms"])
        .output()
        .unwrap();
    let table = support::stdout(&out);
    assert!(
        table.contains(&format!("│ {leak_pid} ┆ leaky-service")),
        "{table}"
    );
    drop(leak);
}

#[test]
fn usage_above_the_alert_exits_1() {
    let db = TestDb::empty("ps_alert");
    let (_dir, config) = config_file(
        "[database]\napplication_name = \"o2o-dashboard\"\n\n[pool]\nsize = 2\nmax_overflow = 2\n\n[alert]\npool_usage_percent = 70\n",
    );
    let _dashboard: Vec<_> = (0..3).map(|_| connect_as(&db, "o2o-dashboard")).collect();
    let _reporting = connect_as(&db, "reporting");
    let pool_status = |args: &[&str]| {
        db.cmd()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };

    // 3 of max_size 4 = 75%, above the file's 70. o2o-db's own connection
    // carries the same application_name and must not count (it would make 4).
    let out = pool_status(&["pool-status"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let table = support::stdout(&out);
    assert!(
        table.lines().last().unwrap().starts_with(
            "ALERT: o2o-dashboard holds 3 connections = 75% of its pool's max_size 4 (alert above 70%)"
        ),
        "{table}"
    );

    let out = pool_status(&["--format", "json", "pool-status", "--alert-percent", "80"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alert"], false);
    assert_eq!(v["app"]["name"], "o2o-dashboard");
    assert_eq!(v["app"]["connections"], 3);
    assert_eq!(v["app"]["max_size"], 4);
    assert_eq!(v["app"]["usage_percent"], 75.0);
    assert_eq!(v["app"]["alert_percent"], 80.0);
    // The JSON shape.
    for key in [
        "size",
        "max_overflow",
        "max_size",
        "connections",
        "idle",
        "checked_out",
        "usage_percent",
        "waits",
        "timeouts",
    ] {
        assert!(v["pool"].get(key).is_some(), "pool.{key} missing: {v}");
    }
    for key in [
        "max_connections",
        "reserved",
        "backends",
        "usage_percent",
        "by_application",
        "idle_in_transaction",
    ] {
        assert!(v["server"].get(key).is_some(), "server.{key} missing: {v}");
    }
    assert_eq!(v["pool"]["max_size"], 4);
    assert!(v["server"]["by_application"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| {
            g["application"] == "o2o-dashboard" && g["state"] == "idle" && g["connections"] == 3
        }));

    // --app picks another application: 1 of 4 = 25%.
    let out = pool_status(&[
        "--format",
        "json",
        "pool-status",
        "--app",
        "reporting",
        "--alert-percent",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alert"], true);
    assert_eq!(v["app"]["connections"], 1);

    let out = pool_status(&["pool-status", "--alert-percent", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("is not a percentage"));
}

#[test]
fn load_beyond_max_size_queues_without_errors_when_the_timeout_is_generous() {
    let db = TestDb::empty("ps_load_queue");
    let mut config = db.config();
    config.pool.size = 1;
    config.pool.max_overflow = 1;
    config.pool.timeout = HumanDuration(Duration::from_secs(30));
    let args = PoolStatusArgs {
        load: Some(6),
        duration: duration("1s"),
        hold: duration("20ms"),
        ..PoolStatusArgs::default()
    };
    let report = ps::run(&config, &args).unwrap();
    let load = report.load.as_ref().unwrap();
    assert!(load.completed > 0, "{load:?}");
    assert_eq!(load.checkouts, load.completed, "{load:?}");
    assert!(
        load.waits > 0,
        "six sessions on two connections must queue: {load:?}"
    );
    assert!(load.peak_checked_out <= 2, "{load:?}");
    assert_eq!(load.timeouts, 0, "{load:?}");
    assert_eq!(load.connection_errors, 0, "{load:?}");
    assert_eq!(load.query_errors, 0, "{load:?}");
    assert_eq!(load.first_error, None);
    assert_eq!(report.pool.max_size, 2);
    assert_eq!(report.pool.checkout.checkouts, load.checkouts);
    assert_eq!(report.outcome(), Outcome::Clean);
    // The load's connections were closed and are not the application's.
    assert_eq!(report.app.connections, 0);
    assert!(!report
        .server
        .by_application
        .iter()
        .any(|g| g.application == load.application));
}

#[test]
fn load_with_a_tiny_timeout_counts_timeouts_and_exits_1() {
    let db = TestDb::empty("ps_load_timeout");
    let (_dir, config) = config_file("[pool]\nsize = 1\nmax_overflow = 0\ntimeout = \"200ms\"\n");
    let out = support::run(
        db.cmd().arg("--config").arg(&config).args([
            "--format",
            "json",
            "pool-status",
            "--load",
            "3",
            "--duration",
            "1500ms",
            "--hold",
            "1s",
        ]),
        1,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let load = &v["load"];
    assert!(load["timeouts"].as_u64().unwrap() > 0, "{load}");
    assert!(load["completed"].as_u64().unwrap() > 0, "{load}");
    assert_eq!(load["query_errors"], 0, "{load}");
    assert_eq!(load["timeout_ms"], 200.0);
    assert_eq!(v["pool"]["timeout"], "200ms");
    assert_eq!(v["pool"]["max_size"], 1);
}

#[test]
fn watch_streams_json_lines_until_ctrl_c() {
    let db = TestDb::empty("ps_watch");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_o2o-db"))
        .env_clear()
        .env("HOME", support::scratch_dir())
        .current_dir(support::scratch_dir())
        .args(["--database-url", &db.url(), "--format", "json"])
        .args(["pool-status", "--watch", "100ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut taken = Vec::new();
    for _ in 0..2 {
        let line = lines.next().expect("a snapshot line").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["server"]["max_connections"], 200, "{v}");
        assert_eq!(v["alert"], false);
        taken.push(v["taken_at"].as_str().unwrap().to_string());
    }
    // Each line is a fresh snapshot, taken on the server's clock, in order.
    assert!(taken.iter().all(|t| t.ends_with('Z')), "{taken:?}");
    assert!(taken[0] <= taken[1], "{taken:?}");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    for line in lines {
        let _ = line;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pool-status --watch did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
}

/// A client through pgbouncer (or anywhere `url` points) as `application`.
fn connect_url_as(url: &str, application: &str) -> postgres::Client {
    let mut conn = o2o_db::conninfo::ConnInfo::parse(url).unwrap();
    conn.application_name = Some(application.into());
    db::connect(&conn).unwrap()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", support::stdout(out), support::stderr(out)))
}

/// SHOW STATS avg_wait_time of `database`, in microseconds, straight from the console.
fn bouncer_avg_wait_us(admin: &str, database: &str) -> i64 {
    let mut console = connect_url_as(admin, "test");
    for message in console.simple_query("SHOW STATS").unwrap() {
        if let postgres::SimpleQueryMessage::Row(row) = message {
            if row.get("database") == Some(database) {
                return row.get("avg_wait_time").unwrap().parse().unwrap();
            }
        }
    }
    0
}

/// One server connection held in a transaction, a second client queued
/// behind it: pool-status alerts with its wait; once it is served, the
/// average wait of the last stats period still alerts.
#[test]
fn clients_waiting_in_pgbouncer_alert_with_their_wait_and_the_average() {
    let db = TestDb::empty("ps_bouncer_wait");
    let bouncer = Bouncer::start_with(&db.name, "transaction", 1, &[("stats_period", "3")]);
    let admin = bouncer.url("pgbouncer");
    let mut holder = connect_url_as(&bouncer.url(&db.name), "dashboard");
    holder.batch_execute("BEGIN; SELECT 1").unwrap();
    let mut waiter = connect_url_as(&bouncer.url(&db.name), "dashboard");
    let queued = std::thread::spawn(move || waiter.batch_execute("SELECT 1").map(|_| ()));
    std::thread::sleep(Duration::from_millis(1200));
    let pool_status = |format: &str| {
        db.cmd()
            .args(["--format", format, "pool-status", "--app", "dashboard"])
            .args(["--pgbouncer", &admin])
            .output()
            .unwrap()
    };

    let out = pool_status("json");
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let v = json_of(&out);
    let b = &v["pgbouncer"];
    assert_eq!(b["alert"], true, "{b}");
    // The application's usage is fine: 2 clients of 60.
    assert_eq!(v["alert"], false, "{v}");
    assert_eq!(v["app"]["through_pgbouncer"], 2, "{v}");
    let pool = &b["pools"][0];
    assert_eq!(pool["database"], db.name.as_str());
    assert_eq!(pool["clients_waiting"], 1, "{pool}");
    assert_eq!(pool["servers_active"], 1, "{pool}");
    assert_eq!(pool["pool_size"], 1, "{pool}");
    assert_eq!(b["settings"]["default_pool_size"], 1, "{b}");
    let waited = pool["max_wait_seconds"].as_f64().unwrap();
    assert!(
        (1.0..60.0).contains(&waited),
        "it waited about 1.2 s: {waited}"
    );
    let table = support::stdout(&pool_status("table"));
    assert!(
        table.contains(&format!(
            "ALERT: pgbouncer pool {}/postgres: 1 client waiting for a server connection (the longest 1.",
            db.name
        )) && table.contains("all 1 of its pool_size server connections are busy: raise pgbouncer's default_pool_size"),
        "{table}"
    );

    holder.batch_execute("COMMIT").unwrap();
    queued.join().unwrap().unwrap();
    // Nobody waits now; the stats period that saw the wait ends within 3 s.
    let until = Instant::now() + Duration::from_secs(10);
    while bouncer_avg_wait_us(&admin, &db.name) == 0 {
        assert!(Instant::now() < until, "SHOW STATS never showed the wait");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = pool_status("json");
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    let b = &json_of(&out)["pgbouncer"];
    assert_eq!(b["pools"][0]["clients_waiting"], 0, "{b}");
    let avg = b["stats"][0]["avg_wait_seconds"].as_f64().unwrap();
    assert!(
        avg > 0.05,
        "the 1.2 s wait over the period's transactions: {avg}"
    );
    assert_eq!(b["alert"], true, "{b}");
}

/// default_pool_size 50 with 50 server connections open and idle, behind an
/// application whose pool is 60 (alert at 80%: 48): they are pgbouncer's
/// pool, and the application's usage is its 10 clients in pgbouncer.
#[test]
fn pgbouncers_idle_server_connections_are_its_pool_not_the_applications_usage() {
    let db = TestDb::empty("ps_bouncer_idle");
    let bouncer = Bouncer::start(&db.name, "transaction", 50);
    // The clients waited while pgbouncer opened its 50 servers: SHOW STATS'
    // average wait, a pgbouncer alert of its own, is not what this is about.
    let (_dir, config) = config_file("[alert]\npgbouncer_avg_wait = \"1h\"\n");
    let url = bouncer.url(&db.name);
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = connect_url_as(&url, "dashboard");
                c.batch_execute("SELECT pg_sleep(1.5)").unwrap();
                c
            })
        })
        .collect();
    let mut clients: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    clients.truncate(10);
    std::thread::sleep(Duration::from_millis(200));
    let admin = bouncer.url("pgbouncer");
    let pool_status = |format: &str| {
        db.cmd()
            .arg("--config")
            .arg(&config)
            .args(["--format", format, "pool-status", "--app", "dashboard"])
            .args(["--pgbouncer", &admin])
            .output()
            .unwrap()
    };

    let out = pool_status("json");
    assert_eq!(out.status.code(), Some(0), "{}", support::stdout(&out));
    let v = json_of(&out);
    assert_eq!(v["alert"], false, "{v}");
    assert_eq!(v["app"]["connections"], 10, "{v}");
    assert_eq!(v["app"]["through_pgbouncer"], 10, "{v}");
    assert_eq!(v["app"]["direct"], 0, "{v}");
    assert_eq!(v["app"]["max_size"], 60, "{v}");
    // Idle, and named after their last client: still not the application's.
    let by_app = v["server"]["by_application"].as_array().unwrap();
    assert!(
        by_app.iter().all(|g| g["application"] != "dashboard"),
        "{by_app:?}"
    );
    let pooler = v["server"]["pooler_servers"].as_array().unwrap();
    assert_eq!(pooler.len(), 1, "{pooler:?}");
    assert_eq!(pooler[0]["state"], "idle");
    assert_eq!(pooler[0]["connections"], 50, "{pooler:?}");
    assert_eq!(v["pgbouncer"]["pools"][0]["servers_idle"], 50);
    assert_eq!(v["pgbouncer"]["alert"], false);
    let table = support::stdout(&pool_status("table"));
    assert!(
        table.contains(&format!(
            "pgbouncer's server connections in {}: 50 idle",
            db.name
        )) && table.lines().last().unwrap().starts_with(
            "OK: dashboard holds 10 connections (10 clients in pgbouncer, 0 direct) = 16.7% of its pool's max_size 60"
        ),
        "{table}"
    );

    // Without --pgbouncer, through it: the URL pools per transaction, so its
    // console (same host, port and role) is read and the figures are the same.
    let out = support::run(
        support::bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["--database-url", &url, "--format", "json"])
            .args(["pool-status", "--app", "dashboard"]),
        0,
    );
    let v = json_of(&out);
    assert_eq!(v["app"]["connections"], 10, "{v}");
    assert_eq!(v["app"]["through_pgbouncer"], 10, "{v}");
    // The 50th server carries o2o-db's own query, left out as always.
    assert_eq!(v["server"]["pooler_servers"][0]["connections"], 49, "{v}");
    drop(clients);
}

/// Through transaction pooling whose console this role may not read, the
/// backends cannot be told apart: the usage is not judged (no false alert),
/// and the report says to pass --pgbouncer.
#[test]
fn through_transaction_pooling_without_its_console_the_usage_is_not_judged() {
    let db = TestDb::empty("ps_bouncer_no_console");
    let bouncer = Bouncer::start_with(&db.name, "transaction", 4, &[("admin_users", "nobody")]);
    let url = bouncer.url(&db.name);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                connect_url_as(&url, "dashboard")
                    .batch_execute("SELECT pg_sleep(0.5)")
                    .unwrap()
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // 4 idle servers named dashboard, against a pool of 5 alerting at 60%.
    let (_dir, config) =
        config_file("[pool]\nsize = 2\nmax_overflow = 3\n\n[alert]\npool_usage_percent = 60\n");
    let pool_status = |format: &str| {
        support::bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["--database-url", &url, "--format", format])
            .args(["pool-status", "--app", "dashboard"])
            .output()
            .unwrap()
    };
    let out = pool_status("json");
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["alert"], false, "{v}");
    assert!(v["pgbouncer"].is_null(), "{v}");
    let why = v["app"]["not_judged"].as_str().unwrap();
    assert!(
        why.contains("pools server connections per transaction")
            && why.contains("not allowed")
            && why.contains("pass --pgbouncer URL"),
        "{why}"
    );
    let out = pool_status("nagios");
    assert_eq!(out.status.code(), Some(3), "{}", support::stdout(&out));
    assert!(
        support::stdout(&out)
            .starts_with("O2O_DB POOL_STATUS UNKNOWN - dashboard's usage not judged"),
        "{}",
        support::stdout(&out)
    );
}

/// pool-status pointed at the admin console itself says what to do instead,
/// never the console's "invalid command".
#[test]
fn the_admin_console_as_database_url_is_refused_with_what_to_do() {
    let db = TestDb::empty("ps_bouncer_console");
    let bouncer = Bouncer::start(&db.name, "transaction", 2);
    let admin = bouncer.url("pgbouncer");
    for format in ["table", "json"] {
        let out = support::run(
            support::bare_cmd().args(["--database-url", &admin, "--format", format, "pool-status"]),
            2,
        );
        let err = support::stderr(&out);
        assert!(
            err.contains("is pgbouncer's admin console (PgBouncer ")
                && err.contains(&format!("(it pools {})", db.name))
                && err.contains("pass the console as --pgbouncer postgres://postgres@127.0.0.1:")
                && !err.contains("invalid command"),
            "{err}"
        );
    }
    // verify, benchmark and index DDL say the same, before any protocol error.
    for command in [
        &["verify"][..],
        &["benchmark", "--iterations", "1"],
        &["create-indexes"],
    ] {
        let out = support::run(
            support::bare_cmd()
                .args(["--database-url", &admin])
                .args(command),
            2,
        );
        let err = support::stderr(&out);
        assert!(
            err.contains("is pgbouncer's admin console")
                && err.contains("pass the console as pool-status --pgbouncer")
                && !err.contains("bad packet")
                && !err.contains("invalid command"),
            "{command:?}: {err}"
        );
    }
}

/// --load through a pgbouncer pool of 2: the sessions queue in pgbouncer, and
/// the advice is its default_pool_size, not [pool] max_overflow.
#[test]
fn load_through_pgbouncer_names_default_pool_size_when_it_is_the_limit() {
    let db = TestDb::empty("ps_bouncer_load");
    let bouncer = Bouncer::start(&db.name, "transaction", 2);
    let admin = bouncer.url("pgbouncer");
    // The load's queueing shows in SHOW STATS' average wait too, which alerts
    // once its stats period ends; the advice is what this is about.
    let (_dir, config) = config_file("[alert]\npgbouncer_avg_wait = \"1h\"\n");
    let out = support::run(
        support::bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["--database-url", &bouncer.url(&db.name), "--format", "json"])
            .args(["pool-status", "--pgbouncer", &admin])
            .args(["--load", "8", "--duration", "2s", "--hold", "100ms"]),
        0,
    );
    let load = &json_of(&out)["load"];
    // Held with the unnamed statement: nothing fails on another client's server.
    assert_eq!(load["query_errors"], 0, "{load}");
    assert!(load["completed"].as_u64().unwrap() > 0, "{load}");
    let b = &load["pgbouncer"];
    assert_eq!(b["pool_size"], 2, "{b}");
    assert_eq!(b["peak_servers_active"], 2, "{b}");
    assert!(b["peak_clients_waiting"].as_i64().unwrap() > 0, "{b}");

    let out = support::run(
        support::bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["--database-url", &bouncer.url(&db.name)])
            .args(["pool-status", "--pgbouncer", &admin])
            .args(["--load", "8", "--duration", "1s", "--hold", "100ms"]),
        0,
    );
    let table = support::stdout(&out);
    assert!(
        table.contains("the limit was pgbouncer's")
            && table.contains("default_pool_size")
            && !table.contains("raise [pool] max_overflow"),
        "{table}"
    );
}
