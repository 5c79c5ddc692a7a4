//! `resolve()`: where each setting comes from. Precedence lives here and
//! nowhere else, so "why did it connect there?" has a single answer:
//! flag > environment (O2O_DB_*, DATABASE_URL, then libpq's service and PG*
//! variables, then .pgpass) > config file > built-in default.

use super::diagnostics::{line_of, parse_str, read_text};
use super::schema::{DatabaseSection, FileConfig};
use super::{Config, FleetTarget};
use crate::conninfo::ConnInfo;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What the global command-line flags said (None: not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// Reads the process environment; tests pass their own closure instead.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Merges flags, environment, config file and defaults. The rules, in order:
pub fn resolve(flags: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    // 1. The config file: --config, else $O2O_DB_CONFIG, else ./o2o-db.toml if present.
    //    A file that was named (flag or env) must exist; the implicit one is optional.
    let named = flags
        .config
        .clone()
        .or_else(|| non_empty(env("O2O_DB_CONFIG")).map(PathBuf::from));
    let path = match named {
        Some(p) if !p.exists() => bail!(
            "config file {} not found; check the path given with --config or O2O_DB_CONFIG",
            p.display()
        ),
        Some(p) => Some(p),
        None => Some(PathBuf::from("o2o-db.toml")).filter(|p| p.is_file()),
    };
    let (file, text) = match &path {
        Some(p) => {
            let text = read_text(p)?;
            (parse_str(&text, p)?, text)
        }
        None => (FileConfig::default(), String::new()),
    };

    // 2. The connection string: --database-url, else $O2O_DB_URL, else
    //    $DATABASE_URL, else [database] url. Errors name where it came from.
    let from_file = file.database.url.as_ref().map(|url| {
        let line = line_of(&text, url.span().start);
        let file = path.as_deref().unwrap_or(Path::new("o2o-db.toml"));
        (
            url.get_ref().clone(),
            format!("{}:{line} [database] url", file.display()),
        )
    });
    let url = flags
        .database_url
        .clone()
        .map(|u| (u, "--database-url".to_string()))
        .or_else(|| non_empty(env("O2O_DB_URL")).map(|u| (u, "O2O_DB_URL".into())))
        .or_else(|| non_empty(env("DATABASE_URL")).map(|u| (u, "DATABASE_URL".into())))
        .or(from_file);
    let conn = match &url {
        Some((u, origin)) => ConnInfo::parse(u).with_context(|| format!("in {origin}"))?,
        None => ConnInfo::default(),
    };
    let conn = complete(conn, &file.database, env)?;
    let targets = fleet_targets(&file, &text, path.as_deref(), env)?;

    // 6. Everything else: the file, whose missing keys take the schema's defaults.
    //    Subcommand flags (--lock-timeout, --iterations, ...) override these in the subcommands.
    Ok(Config {
        targets,
        ..build(file, path, conn)
    })
}

/// Steps 3 to 5 for one connection string (the main one, or a target's): what
/// it leaves out comes from its service, the PG* variables, [database]'s
/// defaults and the password file.
fn complete(
    mut conn: ConnInfo,
    db: &DatabaseSection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ConnInfo> {
    // 3. What the string leaves out comes from its service (service=, else
    //    $PGSERVICE) in pg_service.conf, then from libpq's PG* variables, as psql does it.
    conn.fill_from_service(env)?;
    conn.fill_from_env(env)?;

    // 4. Still unset: the file's [database] name, application_name and
    //    connect_timeout (which default in the schema); libpq's local socket
    //    directory when it exists; the OS user.
    conn.dbname.get_or_insert_with(|| db.name.clone());
    conn.application_name
        .get_or_insert_with(|| db.application_name.clone());
    conn.connect_timeout.get_or_insert(db.connect_timeout.0);
    if conn.hosts.is_empty() && !conn.has_hostaddr() && Path::new("/var/run/postgresql").is_dir() {
        conn.hosts = vec!["/var/run/postgresql".into()];
    }
    if conn.user.is_none() {
        conn.user = env("USER").or_else(|| env("LOGNAME"));
    }
    conn.check_ports()?;

    // 5. The password, when still missing: $PGPASSFILE, else ~/.pgpass.
    let pgpass = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
    if let Some(pgpass) = pgpass {
        conn.fill_from_pgpass(&pgpass)?;
    }

    Ok(conn)
}

/// `[[targets]]`, each connection completed like the main one; names must be
/// given and unique.
fn fleet_targets(
    file: &FileConfig,
    text: &str,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<FleetTarget>> {
    let shown = path
        .unwrap_or(Path::new("o2o-db.toml"))
        .display()
        .to_string();
    let mut targets: Vec<FleetTarget> = Vec::new();
    for t in &file.targets {
        let at = |span: std::ops::Range<usize>| format!("{shown}:{}", line_of(text, span.start));
        let name = t.name.get_ref().trim().to_string();
        if name.is_empty() {
            bail!(
                "{}: [[targets]] name is empty; give each target a name",
                at(t.name.span())
            );
        }
        if targets.iter().any(|other| other.name == name) {
            bail!(
                "{}: a second [[targets]] named `{name}`; names must be unique",
                at(t.name.span())
            );
        }
        let origin = format!("{} [[targets]] `{name}` url", at(t.url.span()));
        let conn = ConnInfo::parse(t.url.get_ref()).with_context(|| format!("in {origin}"))?;
        let admin = match &t.admin_url {
            Some(u) => Some(
                ConnInfo::parse(u)
                    .with_context(|| format!("in {shown} [[targets]] `{name}` admin_url"))?,
            ),
            None => None,
        };
        targets.push(FleetTarget {
            conn: complete(conn, &file.database, env).with_context(|| format!("in {origin}"))?,
            admin,
            name,
            role: t.role,
            pooling: t.pooling,
        });
    }
    Ok(targets)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// The resolved config from a checked file; paths in the file are relative to
/// the file, not to wherever cron started us.
pub(super) fn build(file: FileConfig, source: Option<PathBuf>, conn: ConnInfo) -> Config {
    let base = source.as_deref().and_then(Path::parent);
    let relative = |p: PathBuf| match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    };
    let FileConfig {
        database,
        pool,
        alert,
        mut indexes,
        mut benchmark,
        verify,
        targets: _,
    } = file;
    indexes.file = indexes.file.map(relative);
    benchmark.file = benchmark.file.map(relative);
    Config {
        conn,
        pooling: database.pooling,
        pool,
        alert,
        indexes,
        benchmark,
        verify,
        source,
        targets: Vec::new(),
        pgbouncer_admin: None,
    }
}
