// Faults the tool must survive against real PostgreSQL (issue 8): the server
// restarted under benchmark and pool-status --load, a concurrent index build
// cancelled from another session, and an unreachable server. The restart
// tests start a server of their own, so the shared one stays up for the rest.

use crate::support::{self, TestDb};
use o2o_db::commands::seed::{self, SeedArgs};
use o2o_db::config::Config;
use o2o_db::pg_sandbox::Sandbox;
use std::io::Read;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// A private server with a small seeded database, for tests that restart it.
fn own_server(orders: u64) -> (Sandbox, Config) {
    let sandbox = Sandbox::start().expect("start a private PostgreSQL");
    let mut config = Config::defaults();
    config.conn = sandbox.conn_info("o2o_faults");
    let args = SeedArgs {
        orders,
        create_schema: true,
        ..SeedArgs::default()
    };
    seed::run(&config, &args).expect("seed the private server");
    (sandbox, config)
}

/// The binary against `url`, with a clean environment, output captured.
fn spawn(url: &str, args: &[&str]) -> Child {
    support::bare_std_cmd()
        .arg("--database-url")
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run o2o-db")
}

/// Waits for `child` until `deadline` after it started; a child still running
/// then is killed and the test fails: a hang is the fault being tested.
fn wait_bounded(mut child: Child, started: Instant, deadline: Duration, what: &str) -> Output {
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for o2o-db") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {deadline:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

fn assert_no_panic(out: &Output, what: &str) {
    let err = support::stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what} panicked: {err}"
    );
}

fn json(out: &Output, what: &str) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}); status {:?}\nstdout: {}\nstderr: {}",
            out.status,
            support::stdout(out),
            support::stderr(out)
        )
    })
}

/// Runs `args` in a child against a private server, restarts the server a
/// second in, and returns the child's output once it has finished (bounded),
/// with the server back up.
fn restart_during(args: &[&str], deadline: Duration) -> (Sandbox, Output) {
    let (mut sandbox, _config) = own_server(3000);
    let url = sandbox.url("o2o_faults");
    let started = Instant::now();
    let child = spawn(&url, args);
    std::thread::sleep(Duration::from_millis(1500));
    sandbox.restart().expect("restart the server");
    let out = wait_bounded(child, started, deadline, &args.join(" "));
    assert_no_panic(&out, &args.join(" "));
    (sandbox, out)
}

/// Runs `args` against the restarted server: it must finish cleanly (exit 0)
/// within a minute; returns its JSON report.
fn clean_run_after_restart(sandbox: &Sandbox, args: &[&str]) -> serde_json::Value {
    let what = format!("{} after the restart", args.join(" "));
    let started = Instant::now();
    let child = spawn(&sandbox.url("o2o_faults"), args);
    let out = wait_bounded(child, started, Duration::from_secs(60), &what);
    assert_no_panic(&out, &what);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}",
        support::stderr(&out)
    );
    json(&out, &what)
}

#[test]
fn the_server_restarted_during_benchmark_is_counted_and_the_pool_reconnects() {
    for clients in ["1", "4"] {
        let args = [
            "--format",
            "json",
            "benchmark",
            "--only",
            "latest_orders",
            "--warmup",
            "1",
            "--duration",
            "6s",
            "--clients",
            clients,
        ];
        let (sandbox, out) = restart_during(&args, Duration::from_secs(60));
        let report = json(&out, "benchmark across a restart");
        let q = &report["queries"][0];
        let errors = q["errors"].as_u64().expect("errors counted");
        let iterations = q["iterations"].as_u64().expect("iterations");
        assert!(
            errors >= 1,
            "clients {clients}: the restart cost no run: {q}"
        );
        assert!(
            q["last_error"].is_string(),
            "clients {clients}: the error is shown: {q}"
        );
        // The runs went on once the server was back: the connection was replaced.
        assert!(
            iterations > errors,
            "clients {clients}: nothing ran after the restart: {q}"
        );
        // Errors are findings, not a failure to run.
        assert_eq!(out.status.code(), Some(1), "clients {clients}: {q}");

        // A later run against the restarted server is clean.
        let report = clean_run_after_restart(
            &sandbox,
            &[
                "--format",
                "json",
                "benchmark",
                "--only",
                "latest_orders",
                "--iterations",
                "5",
                "--clients",
                clients,
            ],
        );
        assert_eq!(report["queries"][0]["errors"], 0, "{report}");
    }
}

#[test]
fn the_server_restarted_during_pool_status_load_is_counted_and_the_pool_reconnects() {
    let load_for = |duration| {
        [
            "--format",
            "json",
            "pool-status",
            "--load",
            "4",
            "--duration",
            duration,
        ]
    };
    let (sandbox, out) = restart_during(&load_for("6s"), Duration::from_secs(60));
    let report = json(&out, "pool-status --load across a restart");
    let load = &report["load"];
    let failures = ["connection_errors", "query_errors", "timeouts"]
        .iter()
        .map(|k| {
            load[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{k} counted: {load}"))
        })
        .sum::<u64>();
    assert!(failures >= 1, "the restart cost no session: {load}");
    let completed = load["completed"].as_u64().expect("completed");
    assert!(completed >= 1, "nothing ran: {load}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed sessions are findings: {load}"
    );

    let report = clean_run_after_restart(&sandbox, &load_for("1s"));
    let load = &report["load"];
    for k in ["connection_errors", "query_errors", "timeouts"] {
        assert_eq!(load[k], 0, "{k}: {load}");
    }
}

/// Waits for a concurrent build run by create-indexes and cancels it from
/// another session; returns the cancelled backend's query, or None if none
/// showed up. (Not any CREATE INDEX: the plan compares definitions by
/// creating indexes on a temporary copy of the table first.)
fn cancel_first_build(db: &TestDb, within: Duration) -> Option<String> {
    let mut canceller = db.client();
    let started = Instant::now();
    while started.elapsed() < within {
        let row = canceller
            .query_opt(
                "SELECT pid, query FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name LIKE '%create-indexes%' \
                   AND state = 'active' AND query ILIKE 'CREATE INDEX CONCURRENTLY%' LIMIT 1",
                &[],
            )
            .expect("read pg_stat_activity");
        if let Some(row) = row {
            let pid: i32 = row.get(0);
            let cancelled: bool = canceller
                .query_one("SELECT pg_cancel_backend($1)", &[&pid])
                .expect("pg_cancel_backend")
                .get(0);
            if cancelled {
                return Some(row.get(1));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn a_concurrent_build_cancelled_from_another_session_fails_cleanly_and_the_next_run_builds_it() {
    let db = TestDb::seeded("faults_cancel_build", 300_000);
    let started = Instant::now();
    let child = spawn(&db.url(), &["--format", "json", "create-indexes"]);
    let cancelled = cancel_first_build(&db, Duration::from_secs(60));
    let out = wait_bounded(child, started, Duration::from_secs(300), "create-indexes");
    assert_no_panic(&out, "create-indexes");
    let cancelled = cancelled.expect("no CREATE INDEX seen to cancel");
    let report = json(&out, "create-indexes with a cancelled build");
    let summary = &report["summary"];
    assert_eq!(summary["failed"], 1, "{report}");
    let total = summary["total"].as_u64().expect("total");
    assert_eq!(summary["created"].as_u64(), Some(total - 1), "{report}");
    let failed: Vec<_> = report["indexes"]
        .as_array()
        .expect("indexes")
        .iter()
        .filter(|i| i["status"] == "failed")
        .collect();
    let name = failed[0]["name"].as_str().expect("name");
    assert!(
        cancelled.contains(name),
        "{name} is not the one cancelled: {cancelled}"
    );
    let error = failed[0]["error"].as_str().expect("the reason is shown");
    assert!(error.contains("cancel"), "{error}");
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    // The code promises the INVALID leftover is dropped at once.
    let invalid = db.scalar_i64(
        "SELECT count(*) FROM pg_index WHERE indrelid = 'orders'::regclass AND NOT (indisvalid AND indisready)",
    );
    assert_eq!(invalid, 0, "an INVALID index is left: {report}");

    // The next run builds the one that was cancelled and nothing else.
    let next = db
        .cmd()
        .args(["--format", "json", "create-indexes"])
        .output()
        .expect("run");
    let report: serde_json::Value = serde_json::from_slice(&next.stdout).expect("json");
    assert_eq!(report["summary"]["created"], 1, "{report}");
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    assert_eq!(next.status.code(), Some(0), "{}", support::stderr(&next));
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    o2o_db::pg_sandbox::free_port().expect("a free port")
}

#[test]
fn an_unreachable_server_is_one_clear_line_and_exit_2_within_the_connect_timeout() {
    const CONNECT_TIMEOUT_S: u64 = 3;
    let port = closed_port();
    let missing_dir = support::scratch_dir().join("no-such-socket-dir");
    // A port that accepts the TCP connection (the kernel's backlog) and never
    // answers: only the connect timeout ends the wait.
    let silent_port = o2o_db::pg_sandbox::free_port().expect("a free port");
    let _silent =
        std::net::TcpListener::bind(("127.0.0.1", silent_port)).expect("bind a silent port");
    let targets = [
        (
            format!("postgresql://postgres@127.0.0.1:{port}/o2o?connect_timeout={CONNECT_TIMEOUT_S}"),
            format!("127.0.0.1:{port}"),
        ),
        (
            format!(
                "postgresql://postgres@/o2o?host={}&port=5432&connect_timeout={CONNECT_TIMEOUT_S}",
                missing_dir.display()
            ),
            missing_dir.display().to_string(),
        ),
        (
            format!("postgresql://postgres@127.0.0.1:{silent_port}/o2o?connect_timeout={CONNECT_TIMEOUT_S}"),
            format!("127.0.0.1:{silent_port}"),
        ),
    ];
    for (url, target) in &targets {
        for command in ["verify", "benchmark", "pool-status", "create-indexes"] {
            let started = Instant::now();
            let bound = Duration::from_secs(CONNECT_TIMEOUT_S + 5);
            let out = wait_bounded(spawn(url, &[command]), started, bound, command);
            let elapsed = started.elapsed();
            let err = support::stderr(&out);
            assert_no_panic(&out, command);
            assert_eq!(out.status.code(), Some(2), "{command} {target}: {err}");
            assert!(elapsed < bound, "{command} {target}: took {elapsed:?}");
            assert!(
                out.stdout.is_empty(),
                "{command}: {}",
                support::stdout(&out)
            );
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{command} {target}: one line: {err}");
            assert!(
                lines[0].contains(target.as_str()) && lines[0].contains("cannot connect"),
                "{command}: the line names {target}: {err}"
            );
        }
    }
}

/// The server restarted while a concurrent build waits: the run reconnects,
/// reads the catalog again (the interrupted build's INVALID entry is dropped
/// and built again), finishes the rest, and reports what is really there.
#[test]
fn the_server_restarted_during_create_indexes_is_resumed_and_reported_truly() {
    let (mut sandbox, config) = own_server(3000);
    let url = sandbox.url("o2o_faults");
    let mut holder = o2o_db::db::connect(&config.conn).expect("holder");
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .expect("old snapshot");
    let started = Instant::now();
    let child = spawn(&url, &["--format", "json", "create-indexes"]);
    let mut probe = o2o_db::db::connect(&config.conn).expect("probe");
    while !probe
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE phase = 'waiting for old snapshots')",
            &[],
        )
        .expect("progress")
        .get::<_, bool>(0)
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no build waited");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((holder, probe));
    sandbox.restart().expect("restart the server");
    let out = wait_bounded(
        child,
        started,
        Duration::from_secs(120),
        "create-indexes across a restart",
    );
    assert_no_panic(&out, "create-indexes");
    let report = json(&out, "create-indexes across a restart");
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{report}\n{err}");
    assert_eq!(report["summary"]["created"], 11, "{report}");
    assert!(
        err.contains("reconnected, reading the catalog again and resuming"),
        "{err}"
    );
    let mut after = o2o_db::db::connect(&config.conn).expect("after");
    let (valid, invalid): (i64, i64) = {
        let row = after
            .query_one(
                "SELECT count(*) FILTER (WHERE indisvalid), count(*) FILTER (WHERE NOT indisvalid) \
                 FROM pg_index WHERE indrelid = 'orders'::regclass",
                &[],
            )
            .expect("indexes");
        (row.get(0), row.get(1))
    };
    assert_eq!(
        (valid, invalid),
        (12, 0),
        "11 managed + the primary key, none INVALID"
    );
}

/// A hot standby made as production makes one (pg_basebackup -R): verify,
/// benchmark and --dry-run work there, read-only; index DDL is refused, with
/// the primary to use instead, and changes nothing.
#[test]
fn a_hot_standby_is_verified_read_only_and_refuses_index_ddl() {
    let (sandbox, config) = own_server(3000);
    let primary = sandbox.url("o2o_faults");
    let run = |url: &str, args: &[&str], code: i32| {
        support::run(
            support::bare_cmd().args(["--database-url", url]).args(args),
            code,
        )
    };
    run(&primary, &["create-indexes"], 0);
    let replica = sandbox.start_replica().expect("a streaming replica");
    let standby = replica.url("o2o_faults");
    let mut on_replica = o2o_db::db::connect(&replica.conn_info("o2o_faults")).expect("replica");
    let indexes_on_replica = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let wait_for = |c: &mut postgres::Client, n: i64| {
        let started = Instant::now();
        while indexes_on_replica(c) != n {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "replay stalled"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&mut on_replica, 12);
    let in_recovery: bool = on_replica
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(in_recovery);

    let out = run(
        &standby,
        &["verify", "--only", "schema,indexes,statistics"],
        0,
    );
    let text = support::stdout(&out);
    assert!(
        text.contains("all 11 managed indexes present, valid and as defined"),
        "{text}"
    );
    // The suite only reads: it runs on the standby.
    run(
        &standby,
        &["benchmark", "--iterations", "2", "--max-p95-ms", "60000"],
        0,
    );

    let mut on_primary = o2o_db::db::connect(&config.conn).expect("primary");
    on_primary
        .batch_execute("DROP INDEX idx_orders_scene")
        .unwrap();
    wait_for(&mut on_replica, 11);
    let out = run(&standby, &["create-indexes", "--dry-run"], 0);
    let text = support::stdout(&out);
    assert!(text.contains("created 1 / skipped 10"), "{text}");
    for args in [
        vec!["create-indexes"],
        vec!["drop-indexes", "idx_orders_channel"],
    ] {
        let err = support::stderr(&run(&standby, &args, 2));
        assert!(
            err.contains(&format!(
                "is a standby (pg_is_in_recovery); run {} against the primary",
                args[0]
            )),
            "{err}"
        );
    }
    assert_eq!(indexes_on_replica(&mut on_replica), 11, "nothing changed");
}
