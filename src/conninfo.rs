// Where to connect, parsed the way libpq parses it.
//
// The postgres crate reads neither PG* variables nor ~/.pgpass and rejects
// libpq's sslrootcert/sslcert/sslkey and verify-* modes, so o2o-db parses
// connection URLs and key=value strings itself, fills gaps from the libpq
// environment like psql does, and only then builds a `postgres::Config`.
// Keeping the password in one place also makes redaction easy to get right.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
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

/// Everything needed to open a connection. `Debug` and `Display` never show the password.
#[derive(Clone, Default, PartialEq)]
pub struct ConnInfo {
    /// Host names, IP addresses or Unix socket directories (absolute paths).
    pub hosts: Vec<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub application_name: Option<String>,
    pub connect_timeout: Option<Duration>,
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
    /// `host:port/db`, the words an error message uses for "where".
    pub fn target(&self) -> String {
        let host = if self.hosts.is_empty() {
            "localhost".to_string()
        } else {
            self.hosts.join(",")
        };
        format!(
            "{host}:{}/{}",
            self.port.unwrap_or(5432),
            self.dbname.as_deref().unwrap_or("")
        )
    }

    /// Parses a `postgres://` URL or a libpq `key=value` string.
    pub fn parse(s: &str) -> Result<ConnInfo> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            parse_url(s)
        } else if s.contains('=') {
            parse_key_values(s)
        } else {
            bail!(
                "not a connection string: `{}`; expected postgres://user@host:port/dbname or host=... dbname=...",
                redact_text(s)
            )
        }
    }

    fn set(&mut self, key: &str, value: String) -> Result<()> {
        match key {
            "host" | "hostaddr" => {
                self.hosts = value
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "port" => {
                self.port = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .with_context(|| format!("invalid port `{value}`: expected 1-65535"))?,
                )
            }
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" => self.dbname = Some(value),
            "sslmode" => self.sslmode = Some(SslMode::parse(&value)?),
            "sslrootcert" => self.sslrootcert = Some(value.into()),
            "sslcert" => self.sslcert = Some(value.into()),
            "sslkey" => self.sslkey = Some(value.into()),
            "application_name" => self.application_name = Some(value),
            "connect_timeout" => {
                let secs: u64 = value.parse().with_context(|| {
                    format!("invalid connect_timeout `{value}`: expected whole seconds")
                })?;
                self.connect_timeout = Some(Duration::from_secs(secs));
            }
            other => bail!(
                "unknown connection parameter `{other}`; known: host, port, user, password, dbname, sslmode, sslrootcert, sslcert, sslkey, application_name, connect_timeout"
            ),
        }
        Ok(())
    }

    /// Fills what is still unset from libpq's environment variables, as psql does.
    pub fn fill_from_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        let vars = [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGPASSWORD", "password"),
            ("PGDATABASE", "dbname"),
            ("PGSSLMODE", "sslmode"),
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGSSLCERT", "sslcert"),
            ("PGSSLKEY", "sslkey"),
            ("PGAPPNAME", "application_name"),
            ("PGCONNECT_TIMEOUT", "connect_timeout"),
        ];
        for (var, key) in vars {
            if self.is_set(key) {
                continue;
            }
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                self.set(key, value)
                    .with_context(|| format!("in environment variable {var}"))?;
            }
        }
        Ok(())
    }

    fn is_set(&self, key: &str) -> bool {
        match key {
            "host" => !self.hosts.is_empty(),
            "port" => self.port.is_some(),
            "user" => self.user.is_some(),
            "password" => self.password.is_some(),
            "dbname" => self.dbname.is_some(),
            "sslmode" => self.sslmode.is_some(),
            "sslrootcert" => self.sslrootcert.is_some(),
            "sslcert" => self.sslcert.is_some(),
            "sslkey" => self.sslkey.is_some(),
            "application_name" => self.application_name.is_some(),
            "connect_timeout" => self.connect_timeout.is_some(),
            _ => false,
        }
    }

    /// Looks the password up in a .pgpass file when none is set yet.
    pub fn fill_from_pgpass(&mut self, file: &Path) -> Result<()> {
        if self.password.is_some() {
            return Ok(());
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            return Ok(()); // libpq silently ignores a missing or unreadable file
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(file) {
                if meta.permissions().mode() & 0o077 != 0 {
                    eprintln!(
                        "warning: password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                        file.display()
                    );
                    return Ok(());
                }
            }
        }
        let host = self
            .hosts
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into());
        // libpq matches socket connections against "localhost" too.
        let host = if host.starts_with('/') {
            "localhost".to_string()
        } else {
            host
        };
        let port = self.port.unwrap_or(5432).to_string();
        let user = self.user.clone().unwrap_or_default();
        let db = self.dbname.clone().unwrap_or_else(|| user.clone());
        for line in text.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields = split_pgpass_line(line);
            if fields.len() != 5 {
                continue;
            }
            let matches = |field: &str, value: &str| field == "*" || field == value;
            if matches(&fields[0], &host)
                && matches(&fields[1], &port)
                && matches(&fields[2], &db)
                && matches(&fields[3], &user)
            {
                self.password = Some(fields[4].clone());
                return Ok(());
            }
        }
        Ok(())
    }

    /// The `postgres::Config` for this connection (TLS is chosen separately, see db.rs).
    pub fn to_pg_config(&self) -> postgres::Config {
        let mut cfg = postgres::Config::new();
        if self.hosts.is_empty() {
            cfg.host("localhost");
        }
        for host in &self.hosts {
            if host.starts_with('/') {
                cfg.host_path(host);
            } else {
                cfg.host(host);
            }
        }
        cfg.port(self.port.unwrap_or(5432));
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
        if let Some(timeout) = self.connect_timeout {
            cfg.connect_timeout(timeout);
        }
        cfg.ssl_mode(match self.sslmode.unwrap_or_default() {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        cfg
    }
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn parse_url(s: &str) -> Result<ConnInfo> {
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let (rest, query) = match rest.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut info = ConnInfo::default();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            info.user = Some(percent_decode(user)?);
        }
        if let Some(p) = password {
            info.password = Some(percent_decode(p)?);
        }
    }
    let mut hosts = Vec::new();
    for hp in hostport.split(',').filter(|h| !h.is_empty()) {
        let (host, port) = if let Some(stripped) = hp.strip_prefix('[') {
            let (h, after) = stripped
                .split_once(']')
                .with_context(|| format!("invalid URL {}: unclosed `[`", redact_text(s)))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hp.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hp.to_string(), None),
            }
        };
        if let Some(port) = port {
            info.set("port", port.to_string())
                .with_context(|| format!("in URL {}", redact_text(s)))?;
        }
        if !host.is_empty() {
            hosts.push(percent_decode(&host)?);
        }
    }
    info.hosts = hosts;
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        info.dbname = Some(percent_decode(path)?);
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').with_context(|| {
            format!(
                "invalid URL {}: parameter `{pair}` has no `=`",
                redact_text(s)
            )
        })?;
        info.set(&percent_decode(k)?, percent_decode(v)?)
            .with_context(|| format!("in URL {}", redact_text(s)))?;
    }
    Ok(info)
}

fn parse_key_values(s: &str) -> Result<ConnInfo> {
    let mut info = ConnInfo::default();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                bail!("invalid connection string: unterminated quote in value of `{key}`");
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if key.is_empty() {
            bail!("invalid connection string: a value without a key");
        }
        info.set(&key, value)?;
    }
    Ok(info)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .context(
                    "invalid percent-encoding in URL: `%` must be followed by two hex digits",
                )?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("URL is not valid UTF-8 after percent-decoding")
}

/// Replaces anything that looks like a password in free text (a URL's
/// `user:secret@` or a `password=secret` pair) with `****`.
pub fn redact_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // URL userinfo: scheme://user:secret@
    let mut rest = s;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":****");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    // key=value form
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(pos) = rest.find("password=") {
        let (head, tail) = rest.split_at(pos + "password=".len());
        result.push_str(head);
        result.push_str("****");
        let end = if let Some(quoted) = tail.strip_prefix('\'') {
            quoted.find('\'').map(|e| e + 2).unwrap_or(tail.len())
        } else {
            tail.find(|c: char| c.is_whitespace() || c == '&')
                .unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    result.push_str(rest);
    result
}
