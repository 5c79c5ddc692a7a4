//! Parse-level tests of connection strings: what the postgres crate is left
//! to parse arrives intact, what o2o-db reads itself is taken out first.
//! (Declared as `#[cfg(test)] mod tests;` in conninfo/mod.rs: unit tests only.)

use super::*;
use postgres::config::{Host, TargetSessionAttrs};

fn parse(s: &str) -> ConnInfo {
    ConnInfo::parse(s).unwrap_or_else(|e| panic!("{s}: {e:#}"))
}

fn error(s: &str) -> String {
    format!("{:#}", ConnInfo::parse(s).unwrap_err())
}

#[test]
fn multi_host_urls_keep_each_hosts_port() {
    let c = parse("postgres://u@h1:5433,h2:5434,[::1]:5435/db");
    assert_eq!(c.hosts, ["h1", "h2", "::1"]);
    assert_eq!(c.ports, [5433, 5434, 5435]);
    assert_eq!(c.target(), "h1:5433,h2:5434,[::1]:5435/db");
    let cfg = c.to_pg_config();
    assert_eq!(cfg.get_ports(), [5433, 5434, 5435]);
    assert_eq!(cfg.get_hosts()[1], Host::Tcp("h2".into()));
    // A host without a port gets the default; no port at all leaves it to PGPORT.
    assert_eq!(parse("postgres://h1:5433,h2/db").ports, [5433, 5432]);
    assert!(parse("postgres://h1,h2/db").ports.is_empty());
    let c = parse("host=a,b port=1,2 dbname=d");
    assert_eq!((c.hosts.len(), c.ports.as_slice()), (2, &[1, 2][..]));
}

#[test]
fn the_crate_parses_what_it_understands() {
    for s in [
        "postgres://u@h/d?target_session_attrs=read-write&options=-c%20search_path%3Dsales&application_name=dash&connect_timeout=7&keepalives_idle=30",
        "host=h user=u dbname=d target_session_attrs=read-write options='-c search_path=sales' application_name=dash connect_timeout=7 keepalives_idle=30",
    ] {
        let c = parse(s);
        assert_eq!(c.application_name.as_deref(), Some("dash"), "{s}");
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(7)), "{s}");
        assert_eq!(c.target_session_attrs, Some(SessionAttrs::ReadWrite), "{s}");
        let cfg = c.to_pg_config();
        // o2o-db checks the role itself, host by host: the crate is told any.
        assert_eq!(cfg.get_target_session_attrs(), TargetSessionAttrs::Any, "{s}");
        assert_eq!(cfg.get_options(), Some("-c search_path=sales"), "{s}");
        assert_eq!(cfg.get_keepalives_idle(), Duration::from_secs(30), "{s}");
        assert_eq!(cfg.get_dbname(), Some("d"), "{s}");
    }
}

#[test]
fn tls_keywords_the_crate_refuses_are_ours() {
    let c = parse("postgres://u:p%40ss@h/d?sslmode=verify-full&sslrootcert=/r.crt&sslcert=/c.crt&sslkey=/c.key");
    assert_eq!(c.sslmode, Some(SslMode::VerifyFull));
    assert_eq!(c.sslrootcert, Some(PathBuf::from("/r.crt")));
    assert_eq!(c.sslcert, Some(PathBuf::from("/c.crt")));
    assert_eq!(c.sslkey, Some(PathBuf::from("/c.key")));
    assert_eq!(c.password.as_deref(), Some("p@ss"));
    assert_eq!(
        c.to_pg_config().get_ssl_mode(),
        postgres::config::SslMode::Require
    );
    assert_eq!(parse("service=shop").service.as_deref(), Some("shop"));
    assert_eq!(parse("sslmode=allow").sslmode, Some(SslMode::Prefer));
}

#[test]
fn query_parameters_win_over_the_host_list() {
    let c = parse("postgres://u@localhost:5444/db?host=/tmp/sock&user=v");
    assert_eq!(c.hosts, ["/tmp/sock"]);
    assert_eq!(c.ports, [5444]);
    assert_eq!(c.user.as_deref(), Some("v"));
    assert_eq!(
        c.to_pg_config().get_hosts(),
        [Host::Unix("/tmp/sock".into())]
    );
    let c = parse("postgres://%2Ftmp%2Fsock:6/db");
    assert_eq!((c.hosts[0].as_str(), c.ports[0]), ("/tmp/sock", 6));
    // A keyword given twice takes its last value, as in libpq.
    assert_eq!(parse("host=a host=b").hosts, ["b"]);
}

#[test]
fn nothing_given_means_nothing_set() {
    assert_eq!(parse("postgres://"), ConnInfo::default());
    assert_eq!(parse("postgresql:///d").dbname.as_deref(), Some("d"));
    let c = parse("postgres://@h/d");
    assert_eq!(c.user, None);
}

#[test]
fn bad_strings_are_refused_with_the_reason() {
    for (s, want) in [
        (
            "postgres://u:pw@h:notaport/d",
            "invalid port in `h:notaport`",
        ),
        ("host=h port=x", "invalid port `x`"),
        (
            "postgres://h/d?colour=blue",
            "unknown connection parameter `colour`",
        ),
        (
            "postgres://h/d?sslmode=sometimes",
            "unknown sslmode `sometimes`",
        ),
        (
            "postgres://h/d?target_session_attrs=master",
            "invalid target_session_attrs `master`",
        ),
        (
            "postgres://h/d?connect_timeout=soon",
            "invalid connect_timeout `soon`",
        ),
        ("postgres://u:50%@h/d", "percent-encoding"),
        ("host=a,b port=1,2,3", "3 ports for 2 hosts"),
        ("mysql://u@h/d", "not a connection string"),
        ("postgres://app:pa/ss?w@db/o2o", "percent-encode `@` as %40"),
    ] {
        let err = error(s);
        assert!(err.contains(want), "{s}: expected `{want}` in {err}");
    }
}

#[test]
fn passwords_never_appear_in_errors_or_renderings() {
    for s in [
        "postgres://u:hunter2@h:notaport/d",
        "postgres://u:hunter2@h/d?colour=1",
        "postgres://u:hun/ter2@h/d",
        "postgres://u:hunter2@h@x/d",
        "host=h password=hunter2 port=x",
        "host=h password='hunter2' colour=1",
        "password=hunter2",
        "hunter2",
    ] {
        if let Err(e) = ConnInfo::parse(s) {
            let err = format!("{e:#}");
            assert!(
                !err.contains("hunter2") && !err.contains("ter2"),
                "{s}: {err}"
            );
        }
    }
    let c = parse("postgres://u:pw@h:5/d?options=-cx%3Dy");
    assert_eq!(c.to_string(), "postgres://u:****@h:5/d");
    assert!(!format!("{c:?}").contains("pw"));
}

#[test]
fn merging_fills_only_what_is_unset() {
    let mut c = parse("host=h options=-cx=1");
    c.fill_unset_from(parse("host=other port=7 options=-cx=2 keepalives=0"))
        .unwrap();
    assert_eq!(
        (c.hosts.as_slice(), c.ports.as_slice()),
        (&["h".to_string()][..], &[7][..])
    );
    assert_eq!(c.pass_through.get("options"), Some("-cx=1"));
    assert!(!c.to_pg_config().get_keepalives());
}

#[test]
fn hostaddr_is_passed_on_and_named() {
    let c = parse("hostaddr=127.0.0.1 port=5 dbname=d");
    assert!(c.hosts.is_empty() && c.has_hostaddr());
    assert_eq!(c.target(), "127.0.0.1:5/d");
    assert_eq!(c.to_pg_config().get_hosts(), []);
}

#[test]
fn each_host_is_tried_with_its_own_port_and_address() {
    let c = parse("postgres://u@h1:5433,h2,[::1]:5435/db?target_session_attrs=standby");
    let each: Vec<String> = c
        .each_host()
        .unwrap()
        .iter()
        .map(ConnInfo::target)
        .collect();
    assert_eq!(each, ["h1:5433/db", "h2:5432/db", "[::1]:5435/db"]);
    // One port for all hosts, as libpq has it.
    let c = parse("host=a,b port=7 dbname=d");
    let each = c.each_host().unwrap();
    assert_eq!(
        (each[1].hosts.as_slice(), each[1].ports.as_slice()),
        (&["b".to_string()][..], &[7][..])
    );
    assert_eq!(each[1].target_session_attrs, None);
    // hostaddr: one address per host, handed to the crate one at a time.
    let c = parse("host=a,b hostaddr=127.0.0.1,127.0.0.2 port=1,2");
    let each = c.each_host().unwrap();
    let second = each[1].to_pg_config();
    assert_eq!(
        second.get_hostaddrs(),
        ["127.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(second.get_ports(), [2]);
    assert_eq!(second.get_hosts(), [Host::Tcp("b".into())]);
    // No host at all: libpq's localhost.
    assert_eq!(
        parse("dbname=d").each_host().unwrap()[0].target(),
        "localhost:5432/d"
    );
}

#[test]
fn the_host_that_answered_is_named_only_when_there_were_several() {
    assert_eq!(answered_by("h1:5432/db", "h1:5432"), "h1:5432/db");
    assert_eq!(
        answered_by("/tmp/s:5432/db", "/tmp/s:5432"),
        "/tmp/s:5432/db"
    );
    assert_eq!(
        answered_by("h1:5432,h2:5433/db", "h1:5432"),
        "h1:5432,h2:5433/db (answered by h1:5432)"
    );
    assert_eq!(
        answered_by("h1:5432,h2:5433/db", "h2:5433"),
        "h1:5432,h2:5433/db (answered by h2:5433)"
    );
}

#[test]
fn every_target_session_attrs_of_libpq_14_is_accepted() {
    for value in [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
    ] {
        let c = parse(&format!("host=h target_session_attrs={value}"));
        assert_eq!(
            c.target_session_attrs.map(SessionAttrs::as_str),
            Some(value)
        );
    }
}

#[test]
fn connect_timeout_zero_means_no_limit() {
    assert_eq!(
        parse("host=h connect_timeout=0").connect_timeout,
        Some(Duration::ZERO)
    );
    assert_eq!(parse("host=h connect_timeout=-5").connect_limit(), None);
    assert_eq!(
        parse("postgres://h/d?connect_timeout=3").connect_limit(),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        parse("host=h connect_timeout=0")
            .to_pg_config()
            .get_connect_timeout(),
        None
    );
}

#[test]
fn every_own_keyword_is_taken_out_before_the_crate() {
    for key in OWN_KEYWORDS {
        let value = match key {
            "sslmode" => "verify-ca",
            "target_session_attrs" => "prefer-standby",
            "connect_timeout" => "0",
            _ => "x",
        };
        assert!(ConnInfo::parse(&format!("{key}={value}")).is_ok(), "{key}");
    }
}

#[test]
fn hosts_of_a_primary_conninfo_names_where_and_never_the_password() {
    let conninfo = "user=replicator password='s3cr;t' passfile='/var/lib/postgresql/.pgpass' \
                    host=10.0.0.5 port=5433 sslsni=1 gssencmode=prefer target_session_attrs=any";
    assert_eq!(hosts_of(conninfo).unwrap(), "10.0.0.5:5433");
    assert_eq!(
        hosts_of("hostaddr=10.0.0.6 user=r").unwrap(),
        "10.0.0.6:5432"
    );
    assert_eq!(hosts_of("host=a,b port=1,2").unwrap(), "a:1,b:2");
    assert_eq!(hosts_of("user=r").unwrap(), "localhost:5432");
    let url = hosts_of("postgres://replicator:s3cret@db1:5433,db2/postgres").unwrap();
    assert_eq!(url, "db1:5433,db2");
}

#[test]
fn a_run_pins_its_later_sessions_to_the_host_that_answered() {
    let c = parse("host=db1,db2 port=5432,6432 dbname=d target_session_attrs=read-write");
    let pinned = c.pinned_to("db2:6432");
    assert_eq!(
        (pinned.hosts.as_slice(), pinned.ports.as_slice()),
        (&["db2".to_string()][..], &[6432][..])
    );
    assert_eq!(pinned.dbname.as_deref(), Some("d"));
    // One host, or an endpoint none of them is: the string as it was.
    assert_eq!(c.pinned_to("db3:5432"), c);
    let one = parse("host=db1 port=5432");
    assert_eq!(one.pinned_to("db1:5432"), one);
}
