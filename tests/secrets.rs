// The password never appears in anything o2o-db prints: every subcommand, in
// table and JSON, succeeding and failing, with the password given in the URL,
// in PGPASSWORD and in ~/.pgpass (against a scram-sha-256 server).

use crate::support;
use crate::tls::{server, PASSWORD};
use o2o_db::commands::seed::{self, SeedArgs};
use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;

/// A seeded database on the password-protected server.
fn seeded_db() -> &'static str {
    static DB: OnceLock<&'static str> = OnceLock::new();
    DB.get_or_init(|| {
        let s = &server().sandbox;
        let name = "secrets_orders";
        s.create_database(name).unwrap();
        let mut config = o2o_db::config::Config::defaults();
        config.conn = s.conn_info(name);
        let mut client = o2o_db::db::connect(&config.conn).unwrap();
        client.batch_execute(seed::SCHEMA_SQL).unwrap();
        seed::load(
            &mut client,
            &config,
            &SeedArgs {
                orders: 3000,
                ..SeedArgs::default()
            },
        )
        .unwrap();
        name
    })
}

/// The subcommands, each run once against a good database (it may still find
/// problems: exit 0 or 1; seed finds the table full and refuses, exit 2) and
/// once against a missing one (exit 2).
const RUNS: &[&[&str]] = &[
    &["verify"],
    &["verify", "--only", "indexes,connectivity"],
    &["pool-status"],
    &["seed", "--orders", "10"],
];

#[test]
fn no_subcommand_prints_the_password() {
    let db = seeded_db();
    let port = server().sandbox.port();
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(&pgpass, format!("*:*:*:postgres:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A small pool: every connection pays a scram handshake.
    let config = home.path().join("small.toml");
    std::fs::write(
        &config,
        "[pool]\nsize = 2\nmax_overflow = 2\n[verify]\nsize = 2\nmax_overflow = 2\nruns = 1\n",
    )
    .unwrap();
    let mut checked = 0;
    for target in [db, "no_such_db"] {
        for how in ["url", "PGPASSWORD", "pgpass"] {
            for format in ["table", "json"] {
                for args in RUNS {
                    let mut cmd = support::bare_cmd();
                    let url = match how {
                        "url" => format!("postgres://postgres:{PASSWORD}@localhost:{port}/{target}?sslmode=require"),
                        _ => format!("postgres://postgres@localhost:{port}/{target}?sslmode=require"),
                    };
                    match how {
                        "PGPASSWORD" => {
                            cmd.env("PGPASSWORD", PASSWORD);
                        }
                        "pgpass" => {
                            cmd.env("HOME", home.path());
                        }
                        _ => {}
                    }
                    let out = cmd
                        .arg("--config")
                        .arg(&config)
                        .args(["--database-url", &url, "--format", format])
                        .args(*args)
                        .output()
                        .unwrap();
                    let text = format!("{}{}", support::stdout(&out), support::stderr(&out));
                    let code = out.status.code();
                    // It really ran: authenticated on the good database, refused on the missing one.
                    if target == db && args[0] == "seed" {
                        // It connected and read the table before refusing to add to it.
                        assert_eq!(code, Some(2), "{args:?}: {text}");
                        assert!(text.contains("already has rows"), "{args:?}: {text}");
                    } else if target == db {
                        assert!(matches!(code, Some(0) | Some(1)), "{args:?}: {text}");
                        assert!(
                            !text.contains("password authentication failed"),
                            "{how} {args:?}: {text}"
                        );
                    } else {
                        assert_eq!(code, Some(2), "{args:?}: {text}");
                        assert!(text.contains("no_such_db"), "{args:?}: {text}");
                    }
                    assert!(
                        !text.contains(PASSWORD),
                        "{how} {format} {args:?} printed the password:\n{text}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 3 * 2 * RUNS.len());
}

/// A password with an unencoded `/`, `?`, `:`, `#` or `@` is masked whole,
/// whether the connection string parses, fails to parse or fails to connect
/// (issue 12, item 15). Nothing listens on 127.0.0.1:1.
#[test]
fn passwords_with_unencoded_separators_never_leak() {
    let cases: &[(&str, &[&str])] = &[
        ("postgres://app:pa/ss?w@db/o2o", &["pa/ss", "ss?w"]),
        ("postgres://app:pa/ss?w@127.0.0.1:1/o2o", &["pa/ss", "ss?w"]),
        ("postgres://app:pa?ss@db:notaport/o2o", &["pa?ss"]),
        ("postgres://app:p@ss@127.0.0.1:1/o2o", &["p@ss", "ss@127"]),
        ("postgres://app:pa:ss#x@db:notaport/o2o", &["pa:ss", "ss#x"]),
        ("postgres://app:pa:ss#x@127.0.0.1:1/o2o", &["pa:ss", "ss#x"]),
        ("postgres://app:pa ss@db:notaport/o2o", &["pa ss", "ss@db"]),
        (
            "host=127.0.0.1 port=1 user=app password=pa/ss?w",
            &["pa/ss", "ss?w"],
        ),
        ("host=db port=x password='pa ss#w'", &["pa ss", "ss#w"]),
        ("host=db password=pa ss#w", &["ss#w"]),
    ];
    for (url, secrets) in cases {
        for format in ["table", "json"] {
            let out = support::bare_cmd()
                .args(["--database-url", url, "--format", format, "verify"])
                .output()
                .unwrap();
            let text = format!("{}{}", support::stdout(&out), support::stderr(&out));
            assert_eq!(out.status.code(), Some(2), "{url}: {text}");
            for secret in *secrets {
                assert!(!text.contains(secret), "{url} printed `{secret}`:\n{text}");
            }
        }
    }
}
