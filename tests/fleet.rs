//! Multi-host connection strings against a real primary and its streaming
//! replica: which node each target_session_attrs value reaches, in both
//! orders and both string forms; what a failure names; options, PGOPTIONS,
//! PGCONNECT_TIMEOUT=0 and services; index DDL refused on the standby.

use crate::support::fleet::{dead_port, fleet, key_value, landed, orders_indexes, url, DB};
use crate::support::{self, bare_cmd, env_of, run, stderr, stdout};
use o2o_db::config::{self, HumanDuration, Overrides, PoolSettings};
use o2o_db::conninfo::ConnInfo;
use o2o_db::db::{self, Pool, Warm};
use std::time::{Duration, Instant};

/// The session `s` opens, or the test fails with the error.
fn session(s: &str) -> postgres::Client {
    let conn = ConnInfo::parse(s).unwrap_or_else(|e| panic!("{s}: {e:#}"));
    db::connect(&conn).unwrap_or_else(|e| panic!("{s}: {e:#}"))
}

/// The one-line error `s` fails to connect with.
fn refusal(s: &str) -> String {
    let conn = ConnInfo::parse(s).unwrap_or_else(|e| panic!("{s}: {e:#}"));
    match db::connect(&conn) {
        Ok(mut client) => panic!("{s} connected to {:?}", landed(&mut client)),
        Err(e) => format!("{e:#}"),
    }
}

/// `ConnInfo` as the binary resolves it from a URL and this environment (no
/// config file, so no connect_timeout default hides what the environment says).
fn resolved(url: Option<&str>, env: &[(&str, &str)]) -> ConnInfo {
    let empty = tempfile::NamedTempFile::new().expect("an empty config file");
    let flags = Overrides {
        config: Some(empty.path().to_path_buf()),
        database_url: url.map(str::to_string),
    };
    config::resolve(&flags, &env_of(env))
        .unwrap_or_else(|e| panic!("{url:?}: {e:#}"))
        .conn
}

#[test]
fn each_target_session_attrs_reaches_the_node_libpq_would() {
    let f = fleet();
    let (p, r) = (f.primary.port(), f.replica.port());
    // (value, node reached with the replica listed first, with the primary first)
    let cases = [
        ("any", r, p),
        ("read-write", p, p),
        ("primary", p, p),
        ("read-only", r, r),
        ("standby", r, r),
        ("prefer-standby", r, r),
    ];
    for (attrs, replica_first, primary_first) in cases {
        for (order, want) in [([r, p], replica_first), ([p, r], primary_first)] {
            for s in [url(&order, attrs), key_value(&order, attrs)] {
                assert_eq!(landed(&mut session(&s)).0, want, "{s}");
            }
        }
    }
}

#[test]
fn prefer_standby_takes_the_primary_only_when_no_standby_is_up() {
    let f = fleet();
    let p = f.primary.port();
    let mut spare = f.primary.start_replica().expect("a second replica");
    let s = spare.port();
    // Up, a standby is preferred even when listed after the primary.
    assert_eq!(
        landed(&mut session(&url(&[p, s], "prefer-standby"))),
        (s, true)
    );
    spare.stop().expect("stop the second replica");
    for down in [
        url(&[s, p], "prefer-standby"),
        key_value(&[s, p], "prefer-standby"),
    ] {
        assert_eq!(landed(&mut session(&down)), (p, false), "{down}");
    }
    // standby has no fallback: both hosts are named with their reason.
    let err = refusal(&url(&[s, p], "standby"));
    assert!(err.contains("target_session_attrs=standby"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{s}: ")), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{p} is a primary (not in recovery)")),
        "{err}"
    );
}

#[test]
fn when_no_host_fits_the_error_names_every_host_tried_and_why() {
    let f = fleet();
    let (p, r, dead) = (f.primary.port(), f.replica.port(), dead_port());
    let primary_wanted = url(&[r, dead], "primary");
    let err = refusal(&primary_wanted);
    for part in [
        format!("cannot connect to 127.0.0.1:{r},127.0.0.1:{dead}/{DB}"),
        "target_session_attrs=primary".to_string(),
        format!("127.0.0.1:{r} is a standby (pg_is_in_recovery)"),
        format!("127.0.0.1:{dead}: "),
    ] {
        assert!(err.contains(&part), "expected `{part}` in {err}");
    }
    let err = refusal(&key_value(&[p], "read-only"));
    assert!(
        err.contains(&format!(
            "127.0.0.1:{p} accepts writes (transaction_read_only = off)"
        )),
        "{err}"
    );
    let err = refusal(&url(&[r], "read-write"));
    assert!(
        err.contains(&format!(
            "127.0.0.1:{r} is read-only (transaction_read_only = on)"
        )),
        "{err}"
    );
    // The binary: exit 2, the same words on one line, no panic.
    let out = run(
        bare_cmd().args(["--database-url", &primary_wanted, "verify"]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("127.0.0.1:{r} is a standby (pg_is_in_recovery)")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_pool_opens_every_connection_on_the_node_that_fits() {
    let f = fleet();
    let (p, r) = (f.primary.port(), f.replica.port());
    let settings = PoolSettings {
        size: 3,
        max_overflow: 0,
        pre_ping: true,
        recycle: HumanDuration(Duration::from_secs(3600)),
        timeout: HumanDuration(Duration::from_secs(10)),
    };
    for (attrs, want) in [("primary", p), ("standby", r), ("read-only", r)] {
        let conn = ConnInfo::parse(&url(&[r, p], attrs)).unwrap();
        let pool = Pool::with_settings(&conn, &settings, Warm::Full)
            .unwrap_or_else(|e| panic!("{attrs}: {e:#}"));
        assert_eq!(pool.reached(), format!("127.0.0.1:{want}"), "{attrs}");
        let mut held: Vec<_> = (0..3).map(|_| pool.get().expect("checkout")).collect();
        for client in &mut held {
            assert_eq!(landed(client).0, want, "{attrs}");
        }
    }
    let conn = ConnInfo::parse(&url(&[r], "primary")).unwrap();
    let err = format!(
        "{:#}",
        Pool::with_settings(&conn, &settings, Warm::Lazy).unwrap_err()
    );
    assert!(
        err.contains(&format!("127.0.0.1:{r} is a standby (pg_is_in_recovery)")),
        "{err}"
    );
}

#[test]
fn reports_name_the_host_that_answered() {
    let f = fleet();
    let (p, r) = (f.primary.port(), f.replica.port());
    let primary_second = url(&[r, p], "primary");
    let answered = format!("(answered by 127.0.0.1:{p})");
    let json = |args: &[&str]| -> serde_json::Value {
        let out = run(
            bare_cmd()
                .args(["--database-url", &primary_second, "--format", "json"])
                .args(args),
            0,
        );
        serde_json::from_str(&stdout(&out)).expect("JSON")
    };
    let verify = json(&["verify", "--only", "connectivity"]);
    assert_eq!(verify["server"], format!("127.0.0.1:{p}"));
    let detail = verify["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&answered), "{detail}");
    let status = json(&["pool-status"]);
    assert_eq!(status["reached"], format!("127.0.0.1:{p}"));
    let out = run(
        bare_cmd().args(["--database-url", &primary_second, "pool-status"]),
        0,
    );
    let header = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert!(header.contains(&answered), "{header}");
    // One host: nothing to tell apart, the header is as before.
    let out = run(
        bare_cmd().args(["--database-url", &url(&[p], "any"), "pool-status"]),
        0,
    );
    assert!(!stdout(&out).contains("answered by"), "{}", stdout(&out));
}

#[test]
fn options_and_pgoptions_reach_the_session() {
    let f = fleet();
    let (p, r) = (f.primary.port(), f.replica.port());
    let setting = |client: &mut postgres::Client, name: &str| -> String {
        client
            .query_one("SELECT current_setting($1)", &[&name])
            .unwrap()
            .get(0)
    };
    let with_options = format!(
        "{}&options=-c%20search_path%3Dfleet_a%20-c%20work_mem%3D7MB",
        url(&[r, p], "primary")
    );
    let mut client = db::connect(&resolved(Some(&with_options), &[])).unwrap();
    assert_eq!(landed(&mut client).0, p);
    assert_eq!(setting(&mut client, "search_path"), "fleet_a");
    assert_eq!(setting(&mut client, "work_mem"), "7MB");
    let kv = format!(
        "{} options='-c work_mem=5MB'",
        key_value(&[r, p], "read-write")
    );
    assert_eq!(setting(&mut session(&kv), "work_mem"), "5MB");
    // PGOPTIONS and PGTARGETSESSIONATTRS fill what the URL leaves out.
    let bare = format!("postgres://postgres@127.0.0.1:{p},127.0.0.1:{r}/{DB}");
    let env = [
        ("PGOPTIONS", "-c search_path=fleet_b -c work_mem=9MB"),
        ("PGTARGETSESSIONATTRS", "standby"),
    ];
    let mut client = db::connect(&resolved(Some(&bare), &env)).unwrap();
    assert_eq!(landed(&mut client), (r, true));
    assert_eq!(setting(&mut client, "search_path"), "fleet_b");
    assert_eq!(setting(&mut client, "work_mem"), "9MB");
}

#[test]
fn pgconnect_timeout_zero_waits_instead_of_failing() {
    let f = fleet();
    let p = f.primary.port();
    let env = [("PGCONNECT_TIMEOUT", "0")];
    let conn = resolved(Some(&f.primary.tcp_url(DB)), &env);
    assert_eq!(conn.connect_limit(), None, "0 is no limit, not the default");
    assert_eq!(landed(&mut db::connect(&conn).unwrap()).0, p);

    // A port that accepts and never answers: the file's 1 s gives up soon,
    // PGCONNECT_TIMEOUT=0 over it keeps waiting, as libpq does.
    let port = o2o_db::pg_sandbox::free_port().unwrap();
    let _silent = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, b"[database]\nconnect_timeout = \"1s\"\n").unwrap();
    let spawn = |zero: bool| {
        let mut c = support::bare_std_cmd();
        c.arg("--config")
            .arg(file.path())
            .args([
                "--database-url",
                &format!("postgres://postgres@127.0.0.1:{port}/x"),
            ])
            .args(["verify", "--only", "connectivity"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if zero {
            c.env("PGCONNECT_TIMEOUT", "0");
        }
        c.spawn().expect("run o2o-db")
    };
    let mut bounded = spawn(false);
    let mut waiting = spawn(true);
    let started = Instant::now();
    let code = loop {
        if let Some(status) = bounded.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the 1 s timeout did not end it"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(2));
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    let still = waiting.try_wait().unwrap();
    let _ = waiting.kill();
    let _ = waiting.wait();
    assert!(still.is_none(), "PGCONNECT_TIMEOUT=0 gave up: {still:?}");
}

#[test]
fn a_service_with_several_hosts_picks_the_node_it_asks_for() {
    let f = fleet();
    let (p, r) = (f.primary.port(), f.replica.port());
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("pg_service.conf");
    let section = |name: &str, attrs: &str| {
        format!(
            "[{name}]\nhost=127.0.0.1,127.0.0.1\nport={r},{p}\nuser=postgres\ndbname={DB}\ntarget_session_attrs={attrs}\n"
        )
    };
    std::fs::write(
        &services,
        section("fleet_rw", "read-write") + &section("fleet_ro", "standby"),
    )
    .unwrap();
    let server = |cmd: &mut assert_cmd::Command| -> String {
        let out = run(
            cmd.env("PGSERVICEFILE", &services).args([
                "--format",
                "json",
                "verify",
                "--only",
                "connectivity",
            ]),
            0,
        );
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
        report["server"].as_str().unwrap_or_default().to_string()
    };
    let named =
        |service: &str| server(bare_cmd().args(["--database-url", &format!("service={service}")]));
    assert_eq!(named("fleet_rw"), format!("127.0.0.1:{p}"));
    assert_eq!(named("fleet_ro"), format!("127.0.0.1:{r}"));
    assert_eq!(
        server(bare_cmd().env("PGSERVICE", "fleet_ro")),
        format!("127.0.0.1:{r}")
    );
}

#[test]
fn index_ddl_on_the_replica_is_refused_first_and_changes_nothing() {
    let f = fleet();
    let (p, r) = (f.primary.port(), f.replica.port());
    let mut on_primary = session(&f.primary.tcp_url(DB));
    let mut on_replica = session(&f.replica.tcp_url(DB));
    let before = (
        orders_indexes(&mut on_primary),
        orders_indexes(&mut on_replica),
    );
    // Straight to the replica, and a multi-host URL whose first host is it;
    // a bad --maintenance-work-mem would fail too, but later.
    let urls = [f.replica.tcp_url(DB), url(&[r, p], "any")];
    let runs: [&[&str]; 3] = [
        &["create-indexes"],
        &["create-indexes", "--maintenance-work-mem", "12XB"],
        &["drop-indexes", "idx_orders_channel"],
    ];
    for target in &urls {
        for args in runs {
            let out = run(bare_cmd().args(["--database-url", target]).args(args), 2);
            let want = format!(
                "127.0.0.1:{r} is a standby (pg_is_in_recovery); run {} against the primary",
                args[0]
            );
            let err = stderr(&out);
            assert!(err.contains(&want), "{target} {args:?}: {err}");
            assert!(!err.contains("maintenance_work_mem"), "{err}");
        }
    }
    // JSON: the error document on stdout says it too.
    let out = run(
        bare_cmd().args([
            "--database-url",
            &urls[0],
            "--format",
            "json",
            "create-indexes",
        ]),
        2,
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is a standby (pg_is_in_recovery)"),
        "{message}"
    );
    // A dry run plans (read-only) and its report says the same as a note.
    let out = run(
        bare_cmd().args(["--database-url", &urls[0], "create-indexes", "--dry-run"]),
        0,
    );
    let report = stdout(&out);
    assert!(
        report.contains(&format!(
            "note: 127.0.0.1:{r} is a standby (pg_is_in_recovery); run create-indexes against the primary"
        )),
        "{report}"
    );
    assert!(report.contains("would create"), "{report}");
    assert_eq!(
        (
            orders_indexes(&mut on_primary),
            orders_indexes(&mut on_replica)
        ),
        before,
        "nothing changed on either node"
    );
}
