// o2o-db.toml, the environment and the global flags, merged into one `Config`.
//
// Precedence lives in `resolve()` and nowhere else, so "why did it connect
// there?" has a single answer. Mistakes in the file are reported with the
// file, the line and the key, plus a hint, because a typo in a cron job's
// config should not silently fall back to a default.

use crate::conninfo::{redact_text, ConnInfo};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The defaults of the V8.5 report; also the commented sample at ./o2o-db.toml.
pub const DEFAULT_DATABASE: &str = "o2o_dashboard";
pub const DEFAULT_APPLICATION_NAME: &str = "o2o-db";

/// A positive duration written the human way: "30s", "1h", "500ms".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl HumanDuration {
    pub fn parse(s: &str) -> Result<HumanDuration> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            anyhow::anyhow!("invalid duration `{s}`: {e}; write it like \"30s\", \"5m\" or \"1h\"")
        })?;
        if d.is_zero() {
            bail!("duration `{s}` must be greater than zero");
        }
        Ok(HumanDuration(d))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        HumanDuration::parse(s)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A percentage in 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(v > 0.0 && v <= 100.0) {
            return Err(serde::de::Error::custom(format!(
                "percentage {v} is out of range: use a number above 0 and at most 100"
            )));
        }
        Ok(Percent(v))
    }
}

// ---------------------------------------------------------------- the file

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub pool: PoolSection,
    #[serde(default)]
    pub alert: AlertSection,
    #[serde(default)]
    pub indexes: IndexesSection,
    #[serde(default)]
    pub benchmark: BenchmarkSection,
    #[serde(default)]
    pub verify: VerifySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
    pub name: Option<String>,
    pub application_name: Option<String>,
    pub connect_timeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    pub size: Option<NonZeroU32>,
    pub max_overflow: Option<u32>,
    pub pre_ping: Option<bool>,
    pub recycle: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSection {
    pub pool_usage_percent: Option<Percent>,
    pub query_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexesSection {
    pub file: Option<PathBuf>,
    pub lock_timeout: Option<HumanDuration>,
    pub statement_timeout: Option<HumanDuration>,
    pub lock_retries: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkSection {
    pub file: Option<PathBuf>,
    pub warmup: Option<u32>,
    pub iterations: Option<NonZeroU32>,
    pub seed: Option<u64>,
    pub baseline_slower_percent: Option<Percent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    pub size: Option<NonZeroU32>,
    pub max_overflow: Option<u32>,
    pub pre_ping: Option<bool>,
    pub recycle: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub session_age: Option<HumanDuration>,
    pub modified_percent: Option<Percent>,
    pub runs: Option<NonZeroU32>,
    pub statement_timeout: Option<HumanDuration>,
}

// ---------------------------------------------------------- the resolved config

/// Pool settings, named after the report's SQLAlchemy options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSettings {
    /// Connections kept open (r2d2 `min_idle`).
    pub size: u32,
    /// Extra connections allowed under load (`max_size = size + max_overflow`).
    pub max_overflow: u32,
    /// Test each connection on checkout.
    pub pre_ping: bool,
    /// Replace connections older than this.
    pub recycle: HumanDuration,
    /// How long a checkout may wait for a free connection.
    pub timeout: HumanDuration,
}

impl PoolSettings {
    pub fn max_size(&self) -> u32 {
        self.size.saturating_add(self.max_overflow)
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            size: 20,
            max_overflow: 40,
            pre_ping: true,
            recycle: HumanDuration(Duration::from_secs(3600)),
            timeout: HumanDuration(Duration::from_secs(30)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSettings {
    pub pool_usage_percent: f64,
    pub query_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexSettings {
    /// None: the compiled-in V8.5 set.
    pub file: Option<PathBuf>,
    /// None: chosen by build mode (short for plain builds, longer for concurrent).
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Duration,
    pub lock_retries: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkSettings {
    /// None: the compiled-in dashboard suite.
    pub file: Option<PathBuf>,
    pub warmup: u32,
    pub iterations: u32,
    pub seed: u64,
    pub baseline_slower_percent: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerifySettings {
    /// The pool the deploy should have.
    pub target: PoolSettings,
    /// Sessions idle in transaction or running longer than this are reported.
    pub session_age: Duration,
    /// Rows modified since the last ANALYZE, as a share of the table, before WARN.
    pub modified_percent: f64,
    /// Runs per query for the speed check's median.
    pub runs: u32,
    /// The bound on each of the speed check's timed runs; None: a multiple of
    /// its threshold (commands::verify::speed_timeout).
    pub statement_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub conn: ConnInfo,
    pub pool: PoolSettings,
    pub alert: AlertSettings,
    pub indexes: IndexSettings,
    pub benchmark: BenchmarkSettings,
    pub verify: VerifySettings,
    /// The config file that was read, if any.
    pub source: Option<PathBuf>,
}

impl Config {
    /// The resolved config with no file, no environment and no flags.
    pub fn defaults() -> Config {
        build(FileConfig::default(), None, ConnInfo::default())
    }

    pub fn application_name(&self) -> &str {
        self.conn
            .application_name
            .as_deref()
            .unwrap_or(DEFAULT_APPLICATION_NAME)
    }
}

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
    let named = flags.config.clone().or_else(|| {
        env("O2O_DB_CONFIG")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    });
    let path = match named {
        Some(p) => {
            if !p.exists() {
                bail!(
                    "config file {} not found; check the path given with --config or O2O_DB_CONFIG",
                    p.display()
                );
            }
            Some(p)
        }
        None => Some(PathBuf::from("o2o-db.toml")).filter(|p| p.is_file()),
    };
    let file = match &path {
        Some(p) => load_file(p)?,
        None => FileConfig::default(),
    };

    // 2. The URL: --database-url, else $O2O_DB_URL, else $DATABASE_URL, else [database] url.
    let url = flags
        .database_url
        .clone()
        .map(|u| (u, "--database-url".to_string()))
        .or_else(|| non_empty(env("O2O_DB_URL")).map(|u| (u, "O2O_DB_URL".into())))
        .or_else(|| non_empty(env("DATABASE_URL")).map(|u| (u, "DATABASE_URL".into())))
        .or_else(|| {
            file.database.url.clone().map(|u| {
                let where_ = path
                    .as_ref()
                    .map(|p| {
                        let line = locate_key(p, "database", "url").unwrap_or(0);
                        format!("{}:{line} [database] url", p.display())
                    })
                    .unwrap_or_default();
                (u, where_)
            })
        });
    let mut conn = match &url {
        Some((u, origin)) => ConnInfo::parse(u).with_context(|| format!("in {origin}"))?,
        None => ConnInfo::default(),
    };

    // 3. What the URL leaves out comes from libpq's PG* variables, as psql does it.
    conn.fill_from_env(env)?;

    // 4. Still no database name: [database] name, else the report's o2o_dashboard.
    //    application_name and connect_timeout likewise fall back to the file, then defaults.
    if conn.dbname.is_none() {
        conn.dbname = Some(
            file.database
                .name
                .clone()
                .unwrap_or_else(|| DEFAULT_DATABASE.into()),
        );
    }
    if conn.application_name.is_none() {
        conn.application_name = Some(
            file.database
                .application_name
                .clone()
                .unwrap_or_else(|| DEFAULT_APPLICATION_NAME.into()),
        );
    }
    if conn.connect_timeout.is_none() {
        conn.connect_timeout = Some(
            file.database
                .connect_timeout
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(10)),
        );
    }
    if conn.hosts.is_empty() {
        // libpq's default: the local Unix socket directory when it exists.
        if Path::new("/var/run/postgresql").is_dir() {
            conn.hosts = vec!["/var/run/postgresql".into()];
        }
    }
    if conn.user.is_none() {
        conn.user = env("USER").or_else(|| env("LOGNAME"));
    }

    // 5. The password, when still missing: $PGPASSFILE, else ~/.pgpass.
    let pgpass = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
    if let Some(pgpass) = pgpass {
        conn.fill_from_pgpass(&pgpass)?;
    }

    // 6. Everything else: the file, else the built-in defaults (the V8.5 report's).
    //    Subcommand flags (--lock-timeout, --iterations, ...) override these in the subcommands.
    Ok(build(file, path, conn))
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn build(file: FileConfig, source: Option<PathBuf>, conn: ConnInfo) -> Config {
    let d = PoolSettings::default();
    let pool = PoolSettings {
        size: file.pool.size.map(NonZeroU32::get).unwrap_or(d.size),
        max_overflow: file.pool.max_overflow.unwrap_or(d.max_overflow),
        pre_ping: file.pool.pre_ping.unwrap_or(d.pre_ping),
        recycle: file.pool.recycle.unwrap_or(d.recycle),
        timeout: file.pool.timeout.unwrap_or(d.timeout),
    };
    let target = PoolSettings {
        size: file.verify.size.map(NonZeroU32::get).unwrap_or(d.size),
        max_overflow: file.verify.max_overflow.unwrap_or(d.max_overflow),
        pre_ping: file.verify.pre_ping.unwrap_or(d.pre_ping),
        recycle: file.verify.recycle.unwrap_or(d.recycle),
        timeout: file.verify.timeout.unwrap_or(d.timeout),
    };
    let base = source
        .as_ref()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf);
    // Paths in the file are relative to the file, not to wherever cron started us.
    let relative = |p: PathBuf| match &base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    };
    Config {
        conn,
        pool,
        alert: AlertSettings {
            pool_usage_percent: file.alert.pool_usage_percent.map(|p| p.0).unwrap_or(80.0),
            query_ms: file.alert.query_ms.unwrap_or(100.0),
        },
        indexes: IndexSettings {
            file: file.indexes.file.map(relative),
            lock_timeout: file.indexes.lock_timeout.map(|d| d.0),
            statement_timeout: file
                .indexes
                .statement_timeout
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(2 * 3600)),
            lock_retries: file.indexes.lock_retries.unwrap_or(3),
        },
        benchmark: BenchmarkSettings {
            file: file.benchmark.file.map(relative),
            warmup: file.benchmark.warmup.unwrap_or(3),
            iterations: file.benchmark.iterations.map(NonZeroU32::get).unwrap_or(20),
            seed: file.benchmark.seed.unwrap_or(42),
            baseline_slower_percent: file
                .benchmark
                .baseline_slower_percent
                .map(|p| p.0)
                .unwrap_or(20.0),
        },
        verify: VerifySettings {
            target,
            session_age: file
                .verify
                .session_age
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(300)),
            modified_percent: file.verify.modified_percent.map(|p| p.0).unwrap_or(10.0),
            runs: file.verify.runs.map(NonZeroU32::get).unwrap_or(5),
            statement_timeout: file.verify.statement_timeout.map(|d| d.0),
        },
        source,
    }
}

/// Reads and checks one config file; errors name the file, line and key.
pub fn load_file(path: &Path) -> Result<FileConfig> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        anyhow::anyhow!(
            "{}:{line}: the config file is not valid UTF-8; save it as UTF-8",
            path.display()
        )
    })?;
    parse_str(&text, path)
}

/// Parses config text; `path` is only used in messages.
pub fn parse_str(text: &str, path: &Path) -> Result<FileConfig> {
    toml::from_str::<FileConfig>(text).map_err(|e| describe_toml_error(&e, text, path))
}

fn describe_toml_error(e: &toml::de::Error, text: &str, path: &Path) -> anyhow::Error {
    let line = e
        .span()
        .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
    let key = e.span().map(|s| {
        text.get(s.clone())
            .unwrap_or("")
            .trim()
            .trim_matches('"')
            .to_string()
    });
    let message = redact_text(&e.message().trim().replace('\n', "; "));
    let mut hint = String::new();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        let best = candidates
            .iter()
            .map(|c| {
                // `pool_sise` in [pool] means `size`: also try without a section-like prefix.
                let bare = field.split_once('_').map_or(field, |(_, rest)| rest);
                (edit_distance(field, c).min(edit_distance(bare, c)), *c)
            })
            .min()
            .filter(|(d, _)| *d <= 3);
        hint = match best {
            Some((_, c)) => format!("; did you mean `{c}`?"),
            None if !candidates.is_empty() => format!("; known keys: {}", candidates.join(", ")),
            None => String::new(),
        };
        return anyhow::anyhow!(
            "{}:{}: unknown key `{field}`{hint}",
            path.display(),
            line.unwrap_or(0)
        );
    }
    // Name the key as `section.key`, read from the line the error points at.
    let key_part = line
        .and_then(|l| key_at_line(text, l))
        .or(key.filter(|k| !k.is_empty() && k.len() < 60 && !k.contains('\n')))
        .map(|k| format!(" `{k}`:"))
        .unwrap_or_default();
    if message.starts_with("invalid value") && message.contains("nonzero") {
        hint = "; it must be 1 or more".into();
    } else if message.contains("invalid value: integer `-") {
        hint = "; it cannot be negative".into();
    } else if message.starts_with("invalid type") {
        hint = "; see o2o-db.toml in the repository for each key's type".into();
    }
    anyhow::anyhow!(
        "{}:{}:{key_part} {message}{hint}",
        path.display(),
        line.unwrap_or(0)
    )
}

/// `section.key` for the `key = value` on 1-based `line`, if that line holds one.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let mut section = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        if i + 1 == line {
            let (k, _) = t.split_once('=')?;
            let k = k.trim().trim_matches('"');
            return Some(if section.is_empty() {
                k.to_string()
            } else {
                format!("{section}.{k}")
            });
        }
    }
    None
}

/// The 1-based line of `key` in `[section]` of a config file, for messages about values.
pub fn locate_key(path: &Path, section: &str, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == section
            && t.split('=').next().map(str::trim) == Some(key)
            && t.contains('=')
        {
            return Some(i + 1);
        }
    }
    None
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
