//! Where to connect, read the way libpq reads it.
//!
//! The postgres crate parses connection URLs and `key=value` strings (multi-host
//! lists with per-host ports, options, keepalives, ...). It does not read the
//! PG* variables, pg_service.conf or ~/.pgpass; it refuses sslmode
//! verify-ca/verify-full, sslrootcert/sslcert/sslkey and libpq 14's
//! target_session_attrs primary, standby and prefer-standby (`session_attrs`),
//! and takes connect_timeout=0 for unset; o2o-db takes those out before
//! handing the rest over (`split`), fills gaps from the libpq environment like
//! psql does (`environment`), and only then builds a `postgres::Config`, one
//! per host when `db::connect` walks a multi-host list (`each_host`). Keeping the password in one place makes redaction
//! (`redact`) easy to get right.

mod environment;
mod postgres_config;
mod redact;
mod session_attrs;
mod split;

pub use postgres_config::PassThrough;
pub use redact::redact_text;
pub use session_attrs::{RoleCheck, SessionAttrs};

use anyhow::{bail, Context, Result};
use postgres_config::{describe, parse_pairs, HELD};
use redact::redact_connection_string;
use serde::Serialize;
use split::Pair;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "unknown sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Keywords o2o-db reads itself: the crate refuses them (or some of their
/// values: target_session_attrs=primary, standby, prefer-standby), or reads
/// them differently from libpq (connect_timeout=0 is no limit, not unset).
const OWN_KEYWORDS: [&str; 7] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "service",
    "target_session_attrs",
    "connect_timeout",
];

/// Everything needed to open a connection. `Debug` and `Display` never show the password.
#[derive(Clone, Default, PartialEq)]
pub struct ConnInfo {
    /// Host names, IP addresses or Unix socket directories (absolute paths), tried in order.
    pub hosts: Vec<String>,
    /// One port for every host, or one per host. Empty: 5432.
    pub ports: Vec<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub application_name: Option<String>,
    /// Per host tried, the whole handshake. `Some(ZERO)` (libpq's 0 or a
    /// negative value): wait forever; None: not set yet (config fills it).
    pub connect_timeout: Option<Duration>,
    /// Which host of several to settle on (libpq 14+); None: any.
    pub target_session_attrs: Option<SessionAttrs>,
    /// The pg_service.conf service to fill unset settings from.
    pub service: Option<String>,
    /// What the postgres crate understands and o2o-db only passes on.
    pub pass_through: PassThrough,
    /// A schema put first on every session's search_path: the managed
    /// table's, so the suite's unqualified `orders` is the table the index
    /// set is on (set by benchmark, never parsed from a URL).
    pub schema_first: Option<String>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

/// A URL-like rendering with the password replaced by `****`.
impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}")?;
            if self.password.is_some() {
                write!(f, ":****")?;
            }
            write!(f, "@")?;
        }
        write!(f, "{}", self.target())?;
        if let Some(mode) = self.sslmode {
            write!(f, "?sslmode={}", mode.as_str())?;
        }
        Ok(())
    }
}

impl ConnInfo {
    /// `host:port,host:port/db`, the words an error message uses for "where".
    pub fn target(&self) -> String {
        format!(
            "{}/{}",
            self.host_ports(),
            self.dbname.as_deref().unwrap_or("")
        )
    }

    /// `host:port,host:port`: every host to try, each with its port.
    pub fn host_ports(&self) -> String {
        let hostaddrs = self.pass_through.config().get_hostaddrs();
        let hosts: Vec<String> = match (self.hosts.is_empty(), hostaddrs.is_empty()) {
            (false, _) => self.hosts.clone(),
            (true, false) => hostaddrs.iter().map(|a| a.to_string()).collect(),
            (true, true) => vec!["localhost".into()],
        };
        let each: Vec<String> = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = self.ports.get(i).or(self.ports.first()).unwrap_or(&5432);
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            })
            .collect();
        each.join(",")
    }

    /// One `ConnInfo` per host to try, in order, each with its own port (and
    /// hostaddr): what libpq walks through with a multi-host string.
    pub fn each_host(&self) -> Result<Vec<ConnInfo>> {
        let addrs = self.pass_through.config().get_hostaddrs();
        let count = self.hosts.len().max(addrs.len()).max(1);
        (0..count)
            .map(|i| {
                let mut one = self.clone();
                one.hosts = self.hosts.get(i).cloned().into_iter().collect();
                one.ports = self
                    .ports
                    .get(i)
                    .or(self.ports.first())
                    .copied()
                    .into_iter()
                    .collect();
                if let Some(addr) = addrs.get(i) {
                    one.pass_through.set("hostaddr", addr.to_string())?;
                }
                Ok(one)
            })
            .collect()
    }

    /// This string narrowed to the host that answered at `endpoint` (as
    /// `host_ports` shows it), so later sessions of one run reach the same
    /// node; unchanged when it names one host, or none of them matches.
    pub fn pinned_to(&self, endpoint: &str) -> ConnInfo {
        self.each_host()
            .ok()
            .filter(|hosts| hosts.len() > 1)
            .and_then(|hosts| hosts.into_iter().find(|h| h.host_ports() == endpoint))
            .unwrap_or_else(|| self.clone())
    }

    /// How long one host may take to connect; None: no limit (unset, or
    /// libpq's `connect_timeout=0`).
    pub fn connect_limit(&self) -> Option<Duration> {
        self.connect_timeout.filter(|t| !t.is_zero())
    }

    /// Parses a `postgres://` URL or a libpq `key=value` string.
    pub fn parse(s: &str) -> Result<ConnInfo> {
        let s = s.trim();
        let info = if split::is_url(s) {
            ConnInfo::parse_url(s)
                .with_context(|| format!("in URL {}", redact_connection_string(s)))?
        } else if s.contains('=') {
            ConnInfo::from_pairs(split::key_value_pairs(s)?)?
        } else {
            // Not echoed: a password pasted in the wrong place would be printed.
            let scheme = s
                .split_once("://")
                .map(|(scheme, _)| scheme)
                .filter(|scheme| scheme.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(|scheme| format!(" (not {scheme}://)"))
                .unwrap_or_default();
            bail!(
                "not a connection string: expected postgres://user@host:port/dbname{scheme} or host=... dbname=..."
            )
        };
        info.check_ports()?;
        Ok(info)
    }

    fn parse_url(s: &str) -> Result<ConnInfo> {
        let url = split::cut_url(s)?;
        let base: postgres::Config = url
            .base
            .parse()
            .map_err(|e| describe(&e, &|_| Some(format!(" in `{}`", url.hosts))))?;
        let mut info = ConnInfo::from_pairs(split::query_pairs(url.query.unwrap_or(""))?)?;
        // As in libpq, a query parameter wins over the host list, user and path.
        info.fill_unset_from(ConnInfo::held_from(&base, url.names_a_port())?)?;
        Ok(info)
    }

    /// libpq keyword pairs: o2o-db's own keywords here, the rest parsed by the crate.
    fn from_pairs(pairs: Vec<Pair>) -> Result<ConnInfo> {
        let (mut own, mut theirs) = (Vec::<Pair>::new(), Vec::<Pair>::new());
        for (key, value) in pairs {
            let list = if OWN_KEYWORDS.contains(&key.as_str()) {
                &mut own
            } else {
                &mut theirs
            };
            // As in libpq, a keyword given twice takes its last value.
            list.retain(|(k, _)| *k != key);
            list.push((key, value));
        }
        let parsed = parse_pairs(&theirs)?;
        let mut info = ConnInfo::held_from(&parsed, theirs.iter().any(|(k, _)| k == "port"))?;
        for (key, value) in own {
            match key.as_str() {
                "sslmode" => info.sslmode = Some(SslMode::parse(&value)?),
                "sslrootcert" => info.sslrootcert = Some(value.into()),
                "sslcert" => info.sslcert = Some(value.into()),
                "sslkey" => info.sslkey = Some(value.into()),
                "target_session_attrs" => {
                    info.target_session_attrs = Some(SessionAttrs::parse(&value)?)
                }
                "connect_timeout" => info.connect_timeout = Some(parse_connect_timeout(&value)?),
                _ => info.service = Some(value),
            }
        }
        theirs.retain(|(k, _)| !HELD.contains(&k.as_str()));
        info.pass_through = PassThrough::new(theirs)?;
        Ok(info)
    }

    /// The `HELD` settings the crate parsed. Without `ports_given` its default
    /// 5432 is dropped, so PGPORT and services can still fill the port.
    fn held_from(cfg: &postgres::Config, ports_given: bool) -> Result<ConnInfo> {
        let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
        let password = cfg
            .get_password()
            .map(|p| String::from_utf8(p.to_vec()))
            .transpose()
            .context("the password is not valid UTF-8")?;
        let hosts = cfg.get_hosts().iter().map(|host| match host {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(dir) => dir.display().to_string(),
        });
        Ok(ConnInfo {
            hosts: hosts.filter(|h| !h.is_empty()).collect(),
            ports: if ports_given {
                cfg.get_ports().to_vec()
            } else {
                Vec::new()
            },
            user: text(cfg.get_user()),
            password,
            dbname: text(cfg.get_dbname()),
            application_name: text(cfg.get_application_name()),
            ..ConnInfo::default()
        })
    }

    /// Takes from `other` every setting that is unset here.
    pub fn fill_unset_from(&mut self, other: ConnInfo) -> Result<()> {
        fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
            if slot.is_none() {
                *slot = value;
            }
        }
        let ConnInfo {
            hosts,
            ports,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
            application_name,
            connect_timeout,
            target_session_attrs,
            service,
            pass_through,
            schema_first,
        } = other;
        if self.hosts.is_empty() {
            self.hosts = hosts;
        }
        if self.ports.is_empty() {
            self.ports = ports;
        }
        fill(&mut self.user, user);
        fill(&mut self.password, password);
        fill(&mut self.dbname, dbname);
        fill(&mut self.sslmode, sslmode);
        fill(&mut self.sslrootcert, sslrootcert);
        fill(&mut self.sslcert, sslcert);
        fill(&mut self.sslkey, sslkey);
        fill(&mut self.application_name, application_name);
        fill(&mut self.connect_timeout, connect_timeout);
        fill(&mut self.target_session_attrs, target_session_attrs);
        fill(&mut self.service, service);
        fill(&mut self.schema_first, schema_first);
        self.pass_through.fill_unset_from(pass_through)
    }

    /// Whether hostaddr= gives the addresses to connect to.
    pub fn has_hostaddr(&self) -> bool {
        !self.pass_through.config().get_hostaddrs().is_empty()
    }

    /// The host .pgpass and messages speak of: the first one tried.
    fn first_host(&self) -> String {
        match (
            self.hosts.first(),
            self.pass_through.config().get_hostaddrs().first(),
        ) {
            (Some(host), _) => host.clone(),
            (None, Some(addr)) => addr.to_string(),
            (None, None) => "localhost".into(),
        }
    }

    /// libpq's rule: one port for all hosts, or one per host.
    pub fn check_ports(&self) -> Result<()> {
        let hosts = self
            .hosts
            .len()
            .max(self.pass_through.config().get_hostaddrs().len());
        if self.ports.len() > 1 && self.ports.len() != hosts.max(1) {
            bail!(
                "{} ports for {} hosts: give one port for every host, or one per host",
                self.ports.len(),
                hosts
            );
        }
        Ok(())
    }

    /// The `postgres::Config` for this connection (TLS is chosen separately, see db.rs).
    pub fn to_pg_config(&self) -> postgres::Config {
        let mut cfg = self.pass_through.config().clone();
        if self.hosts.is_empty() && !self.has_hostaddr() {
            cfg.host("localhost");
        }
        for host in &self.hosts {
            cfg.host(host); // a leading `/` makes it a socket directory
        }
        for port in &self.ports {
            cfg.port(*port);
        }
        cfg.user(self.user.as_deref().unwrap_or("postgres"));
        if let Some(password) = &self.password {
            cfg.password(password);
        }
        if let Some(db) = &self.dbname {
            cfg.dbname(db);
        }
        if let Some(app) = &self.application_name {
            cfg.application_name(app);
        }
        if let Some(timeout) = self.connect_limit() {
            cfg.connect_timeout(timeout);
        }
        if let Some(schema) = &self.schema_first {
            // Startup options are split at spaces; a backslash escapes one.
            let quoted = crate::ident::quote_ident(schema)
                .replace('\\', "\\\\")
                .replace(' ', "\\ ");
            let ours = format!("-c search_path={quoted},\"$user\",public");
            let options = match cfg.get_options() {
                Some(theirs) if !theirs.is_empty() => format!("{theirs} {ours}"),
                _ => ours,
            };
            cfg.options(&options);
        }
        cfg.ssl_mode(match self.sslmode.unwrap_or_default() {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        cfg
    }
}

/// `target` (`host:port,host:port/db`) naming the host that answered when
/// there were several to try: "h1:5432,h2:5433/db (answered by h2:5433)".
pub fn answered_by(target: &str, endpoint: &str) -> String {
    let one_host = target
        .strip_prefix(endpoint)
        .is_some_and(|rest| rest.starts_with('/'));
    if one_host {
        target.to_string()
    } else {
        format!("{target} (answered by {endpoint})")
    }
}

/// Where a connection string points, and nothing else (never its password):
/// `host:port,...` as written, hostaddr when there is no host, libpq's
/// defaults (the local socket, 5432) when it names neither. For a
/// standby's primary_conninfo, which can hold libpq keywords this crate does
/// not parse (passfile, sslsni, gssencmode, ...).
pub fn hosts_of(s: &str) -> Result<String> {
    let s = s.trim();
    if split::is_url(s) {
        let hosts = split::cut_url(s)?.hosts;
        return Ok(if hosts.is_empty() {
            "localhost".into()
        } else {
            hosts.into()
        });
    }
    let pairs = split::key_value_pairs(s)?;
    let value = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let hosts: Vec<&str> = value("host")
        .or(value("hostaddr"))
        .unwrap_or("localhost")
        .split(',')
        .collect();
    let ports: Vec<&str> = value("port").unwrap_or("5432").split(',').collect();
    let each: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).unwrap_or(&"5432");
            format!("{host}:{port}")
        })
        .collect();
    Ok(each.join(","))
}

/// libpq's connect_timeout: whole seconds; zero or less waits forever.
fn parse_connect_timeout(value: &str) -> Result<Duration> {
    let seconds: i64 = value.trim().parse().map_err(|_| {
        anyhow::anyhow!("invalid connect_timeout `{value}`: expected whole seconds (0: no limit)")
    })?;
    Ok(Duration::from_secs(seconds.max(0).unsigned_abs()))
}

#[cfg(test)]
mod tests;
