// Connection strings end to end: libpq services between the string and the
// environment, and multi-host URLs against the test server.

use crate::support::{self, env_of};
use o2o_db::config::{self, Overrides};

#[test]
fn a_service_fills_between_the_string_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("services.conf");
    std::fs::write(
        &file,
        "[shop]\nhost=svc-host\nport=7001\ndbname=svc_db\nuser=svc_user\n",
    )
    .unwrap();
    let services = file.to_str().unwrap();
    // PGSERVICE names it; the URL's own values win, the service beats PG*.
    let env = env_of(&[
        ("PGSERVICE", "shop"),
        ("PGSERVICEFILE", services),
        ("PGPORT", "7999"),
        ("PGUSER", "env_user"),
    ]);
    let flags = Overrides {
        config: None,
        database_url: Some("postgres://url_user@/".into()),
    };
    let c = config::resolve(&flags, &env).unwrap();
    assert_eq!(c.conn.hosts, ["svc-host"]);
    assert_eq!(c.conn.ports, [7001]);
    assert_eq!(c.conn.user.as_deref(), Some("url_user"));
    assert_eq!(c.conn.dbname.as_deref(), Some("svc_db"));
    // service= in a key=value string, with ~/.pg_service.conf found through HOME.
    std::fs::copy(services, dir.path().join(".pg_service.conf")).unwrap();
    let flags = Overrides {
        config: None,
        database_url: Some("service=shop dbname=mine".into()),
    };
    let home = dir.path().to_str().unwrap();
    let c = config::resolve(&flags, &env_of(&[("HOME", home)])).unwrap();
    assert_eq!(
        (c.conn.target(), c.conn.user.as_deref()),
        ("svc-host:7001/mine".to_string(), Some("svc_user"))
    );
    // A named service that is not defined stops the run.
    let out = support::run(
        support::bare_cmd().env("PGSERVICEFILE", services).args([
            "--database-url",
            "service=nope",
            "seed",
        ]),
        2,
    );
    assert!(support::stderr(&out).contains("definition of service `nope` not found"));
}

/// libpq's multi-host URL: a host that refuses is skipped for the next, each
/// with its own port, and the crate's own parameters reach the server.
#[test]
fn multi_host_urls_try_each_host_with_its_own_port() {
    let db = support::TestDb::empty("multi_host");
    let port = support::sandbox().port();
    let url = format!(
        "postgres://postgres@127.0.0.1:1,127.0.0.1:{port}/{}?target_session_attrs=read-write&options=-c%20work_mem%3D7MB&connect_timeout=5",
        db.name
    );
    let conn = o2o_db::conninfo::ConnInfo::parse(&url).unwrap();
    assert_eq!(conn.ports, [1, port]);
    let mut client = o2o_db::db::connect(&conn).unwrap();
    let row = client
        .query_one(
            "SELECT inet_server_port(), current_database(), current_setting('work_mem')",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), Some(i32::from(port)));
    assert_eq!(row.get::<_, String>(1), db.name);
    assert_eq!(row.get::<_, String>(2), "7MB");
    // The binary takes the same URL.
    support::run(
        support::bare_cmd().args(["--database-url", &url, "verify", "--only", "connectivity"]),
        0,
    );
}
