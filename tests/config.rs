// Configuration: precedence, libpq environment, .pgpass, bad input, redaction.

use crate::support::{self, env_of};
use o2o_db::config::{self, Overrides};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn url_precedence_flag_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        "[database]\nurl = \"postgres://file@h-file/dbfile\"\n",
    );
    let cfg_flag = Overrides {
        config: Some(file.clone()),
        database_url: Some("postgres://flag@h-flag/dbflag".into()),
    };
    let cfg_env = Overrides {
        config: Some(file.clone()),
        database_url: None,
    };
    let all_env = env_of(&[
        ("O2O_DB_URL", "postgres://o2o@h-o2o/dbo2o"),
        ("DATABASE_URL", "postgres://du@h-du/dbdu"),
    ]);
    let c = config::resolve(&cfg_flag, &all_env).unwrap();
    assert_eq!(c.conn.hosts, ["h-flag"]);
    let c = config::resolve(&cfg_env, &all_env).unwrap();
    assert_eq!(c.conn.hosts, ["h-o2o"]);
    let c = config::resolve(
        &cfg_env,
        &env_of(&[("DATABASE_URL", "postgres://du@h-du/dbdu")]),
    )
    .unwrap();
    assert_eq!(c.conn.hosts, ["h-du"]);
    let c = config::resolve(&cfg_env, &env_of(&[])).unwrap();
    assert_eq!(
        (c.conn.hosts[0].as_str(), c.conn.dbname.as_deref()),
        ("h-file", Some("dbfile"))
    );
}

#[test]
fn libpq_variables_fill_what_the_url_leaves_out() {
    let none = Overrides::default();
    let env = env_of(&[
        ("PGHOST", "pg.example"),
        ("PGPORT", "6543"),
        ("PGUSER", "dash"),
        ("PGDATABASE", "shopdb"),
        ("PGSSLMODE", "require"),
        ("PGPASSWORD", "pw1"),
    ]);
    let c = config::resolve(&none, &env).unwrap();
    assert_eq!(c.conn.hosts, ["pg.example"]);
    assert_eq!(c.conn.ports, [6543]);
    assert_eq!(c.conn.user.as_deref(), Some("dash"));
    assert_eq!(c.conn.dbname.as_deref(), Some("shopdb"));
    assert_eq!(c.conn.sslmode, Some(o2o_db::conninfo::SslMode::Require));
    assert_eq!(c.conn.password.as_deref(), Some("pw1"));
    // The URL's own values win over the environment.
    let flags = Overrides {
        config: None,
        database_url: Some("postgres://u@h:1/d".into()),
    };
    let c = config::resolve(&flags, &env).unwrap();
    assert_eq!(
        (
            c.conn.hosts[0].as_str(),
            c.conn.ports.as_slice(),
            c.conn.dbname.as_deref()
        ),
        ("h", &[1][..], Some("d"))
    );
    assert_eq!(c.conn.password.as_deref(), Some("pw1"));
    // Nothing anywhere: the report's database name and the pool defaults.
    let c = config::resolve(&none, &env_of(&[])).unwrap();
    assert_eq!(c.conn.dbname.as_deref(), Some("o2o_dashboard"));
    assert_eq!(
        (c.pool.size, c.pool.max_overflow, c.pool.max_size()),
        (20, 40, 60)
    );
    assert!(c.pool.pre_ping);
    assert_eq!(c.pool.recycle.0.as_secs(), 3600);
    assert_eq!(c.pool.timeout.0.as_secs(), 30);
    assert_eq!(
        (c.alert.pool_usage_percent, c.alert.query_ms),
        (80.0, 100.0)
    );
}

#[test]
fn pgpass_supplies_the_password_and_open_permissions_are_ignored() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pass = write(
        dir.path(),
        ".pgpass",
        "# comment\nother:5432:*:*:nope\ndb1:5433:shop:dash:pa\\:ss\n*:*:*:*:fallback\n",
    );
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let flags = Overrides {
        config: None,
        database_url: Some("postgres://dash@db1:5433/shop".into()),
    };
    let home = dir.path().to_str().unwrap();
    let c = config::resolve(&flags, &env_of(&[("HOME", home)])).unwrap();
    assert_eq!(c.conn.password.as_deref(), Some("pa:ss"));
    let flags2 = Overrides {
        config: None,
        database_url: Some("postgres://x@elsewhere/y".into()),
    };
    let c = config::resolve(&flags2, &env_of(&[("HOME", home)])).unwrap();
    assert_eq!(c.conn.password.as_deref(), Some("fallback"));
    // PGPASSFILE points elsewhere.
    let other = write(dir.path(), "pw", "*:*:*:*:frompassfile\n");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = config::resolve(
        &flags,
        &env_of(&[("HOME", home), ("PGPASSFILE", other.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(c.conn.password.as_deref(), Some("frompassfile"));
    // World-readable: ignored, as libpq does.
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = config::resolve(&flags, &env_of(&[("HOME", home)])).unwrap();
    assert_eq!(c.conn.password, None);
}

#[test]
fn file_values_are_read_and_relative_paths_follow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "o.toml",
        "[pool]\nsize = 5\nmax_overflow = 10\npre_ping = false\nrecycle = \"30m\"\ntimeout = \"2s\"\n[alert]\npool_usage_percent = 90\n[indexes]\nfile = \"my.sql\"\nlock_timeout = \"3s\"\n",
    );
    let c = config::resolve(
        &Overrides {
            config: Some(file),
            database_url: None,
        },
        &env_of(&[]),
    )
    .unwrap();
    assert_eq!(
        (c.pool.size, c.pool.max_size(), c.pool.pre_ping),
        (5, 15, false)
    );
    assert_eq!(c.pool.recycle.0.as_secs(), 1800);
    assert_eq!(c.pool.timeout.0.as_secs(), 2);
    assert_eq!(c.alert.pool_usage_percent, 90.0);
    assert_eq!(
        c.indexes.file.as_deref(),
        Some(dir.path().join("my.sql").as_path())
    );
    assert_eq!(c.indexes.lock_timeout.map(|d| d.as_secs()), Some(3));
    // O2O_DB_CONFIG names the file when no flag does.
    let f2 = write(dir.path(), "p.toml", "[pool]\nsize = 7\n");
    let c = config::resolve(
        &Overrides::default(),
        &env_of(&[("O2O_DB_CONFIG", f2.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(c.pool.size, 7);
}

#[test]
fn the_sample_config_is_valid_and_holds_the_defaults() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("o2o-db.toml");
    let c = config::resolve(
        &Overrides {
            config: Some(sample),
            database_url: None,
        },
        &env_of(&[]),
    )
    .unwrap();
    let d = config::Config::defaults();
    assert_eq!(c.pool, d.pool);
    assert_eq!(c.alert, d.alert);
    assert_eq!(c.verify, d.verify);
    assert_eq!(c.benchmark, d.benchmark);
    assert_eq!(c.indexes, d.indexes);
}

/// Each bad config: exit 2, the file and line, the key, a hint; never a panic.
#[test]
fn bad_config_files_exit_2_with_file_line_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "typo.toml",
            b"[pool]\nsize = 20\npool_sise = 20\n",
            "typo.toml:3: unknown key `pool_sise`; did you mean `size`?",
        ),
        (
            "section.toml",
            b"[pol]\nsize = 1\n",
            "section.toml:1: unknown key `pol`; did you mean `pool`?",
        ),
        ("type.toml", b"[pool]\nsize = \"twenty\"\n", "type.toml:2"),
        ("zero.toml", b"[pool]\nsize = 0\n", "zero.toml:2"),
        ("neg.toml", b"[pool]\nmax_overflow = -1\n", "neg.toml:2"),
        (
            "zerotime.toml",
            b"[pool]\ntimeout = \"0s\"\n",
            "must be greater than zero",
        ),
        (
            "dur.toml",
            b"\n[pool]\nrecycle = \"an hour\"\n",
            "dur.toml:3",
        ),
        ("huge.toml", b"[pool]\nsize = 99999999999\n", "huge.toml:2"),
        (
            "pct.toml",
            b"[alert]\npool_usage_percent = 180\n",
            "out of range",
        ),
        ("broken.toml", b"[pool\nsize = 1\n", "broken.toml:1"),
        (
            "bytes.toml",
            b"[pool]\n# caf\xe9\nsize = 1\n",
            "bytes.toml:2: the config file is not valid UTF-8",
        ),
        (
            "url.toml",
            b"# where\n\n[database]\nurl = \"mysql://u:hunter2@h/d\"\n",
            "url.toml:4 [database] url: not a connection string",
        ),
        (
            "ssl.toml",
            b"[database]\nurl = \"postgres://u@h/d?sslmode=sometimes\"\n",
            "unknown sslmode `sometimes`",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = support::bare_cmd()
            .arg("--config")
            .arg(&path)
            .args(["seed"])
            .output()
            .unwrap();
        let err = support::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected `{want}` in: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!err.contains("hunter2"), "{name}: password leaked: {err}");
    }
    let out = support::run(
        support::bare_cmd().args(["--config", "/nonexistent/o2o-db.toml", "seed"]),
        2,
    );
    assert!(support::stderr(&out).contains("config file /nonexistent/o2o-db.toml not found"));
}

#[test]
fn empty_config_file_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "empty.toml", "");
    let c = config::resolve(
        &Overrides {
            config: Some(f.clone()),
            database_url: None,
        },
        &env_of(&[]),
    )
    .unwrap();
    // Every section, not only one: an empty file changes nothing but the source.
    let d = config::Config::defaults();
    assert_eq!(
        (&c.pool, &c.alert, &c.indexes, &c.benchmark, &c.verify),
        (&d.pool, &d.alert, &d.indexes, &d.benchmark, &d.verify)
    );
    assert_eq!(c.source, Some(f));
}

#[test]
fn bad_urls_are_refused_without_echoing_the_password() {
    for (url, want) in [
        ("postgres://u:hunter2@h:notaport/d", "invalid port"),
        ("postgres://u:hunter2@h/d?sslmode=bogus", "unknown sslmode"),
        (
            "postgres://u:hunter2@h/d?colour=blue",
            "unknown connection parameter `colour`",
        ),
        ("postgres://u:hun%zzter2@h/d", "percent-encoding"),
        ("host=h password=hunter2 port=x", "invalid port `x`"),
        (
            "postgres://u:hunter2@h/d?target_session_attrs=master",
            "use any, read-write, read-only, primary, standby or prefer-standby",
        ),
        (
            "postgres://u:hunter2@a,b,c/d?port=1,2",
            "2 ports for 3 hosts",
        ),
        ("just-a-word", "not a connection string"),
    ] {
        let out = support::bare_cmd()
            .args(["--database-url", url, "seed"])
            .output()
            .unwrap();
        let err = support::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains(want), "{url}: expected {want} in {err}");
        assert!(
            !err.contains("hunter2") && !err.contains("hun%zzter2"),
            "{url}: leaked in {err}"
        );
    }
}

#[test]
fn connection_errors_name_the_target_and_hide_the_password() {
    // Nothing listens on port 1.
    let out = support::bare_cmd()
        .args([
            "--database-url",
            "postgres://dash:hunter2@127.0.0.1:1/o2o_dashboard?connect_timeout=3",
            "seed",
        ])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("cannot connect to 127.0.0.1:1/o2o_dashboard"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn redaction_covers_urls_and_key_values() {
    use o2o_db::conninfo::{redact_text, ConnInfo};
    assert_eq!(
        redact_text("see postgres://u:pw@h/d now"),
        "see postgres://u:****@h/d now"
    );
    assert_eq!(
        redact_text("host=h password=pw user=u"),
        "host=h password=**** user=u"
    );
    assert_eq!(redact_text("password='p w' x"), "password=**** x");
    let c = ConnInfo::parse("postgres://u:pw@h:5/d").unwrap();
    assert_eq!(c.to_string(), "postgres://u:****@h:5/d");
    assert!(!format!("{c:?}").contains("pw"));
}
