//! One connection outside any pool, as libpq makes it: the hosts of a
//! multi-host string tried in order, each with its own port; the role of each
//! checked after connecting when target_session_attrs asks for one (libpq
//! 14+: read-write, read-only, primary, standby, prefer-standby); TLS as
//! libpq spells it; and each host's whole handshake bounded by connect_timeout.

use super::error::describe_pg_error;
use crate::conninfo::{ConnInfo, RoleCheck, SessionAttrs, SslMode};
use anyhow::{Context, Result};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::{Client, SimpleQueryMessage};
use postgres_openssl::MakeTlsConnector;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// A session and the host that gave it.
pub struct Reached {
    pub client: Client,
    /// `host:port` of the host that answered: one of a multi-host list.
    pub endpoint: String,
}

/// Why no host gave a session: every host tried and why it was passed over.
#[derive(Debug)]
pub struct NoHost {
    target: String,
    attrs: SessionAttrs,
    /// One entry per host tried, in order.
    tried: Vec<String>,
}

impl NoHost {
    /// The reasons without the target: what the pool's messages append.
    pub fn detail(&self) -> String {
        let tried = self.tried.join("; ");
        match self.attrs {
            SessionAttrs::Any => tried,
            attrs => format!("target_session_attrs={attrs}: {tried}"),
        }
    }
}

impl std::fmt::Display for NoHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot connect to {}: {}", self.target, self.detail())
    }
}

impl std::error::Error for NoHost {}

/// Opens one connection outside any pool (index builds, long maintenance work).
pub fn connect(conn: &ConnInfo) -> Result<Client> {
    Ok(connect_reaching(conn)?.client)
}

/// `connect`, saying which host answered.
pub fn connect_reaching(conn: &ConnInfo) -> Result<Reached> {
    let hosts = conn.each_host()?;
    let tls = tls_connector(conn)?;
    connect_first_fitting(conn, &hosts, &tls).map_err(anyhow::Error::new)
}

/// libpq's walk through the hosts: the first that answers and passes the
/// role check wins; prefer-standby takes the first that answered when none
/// is a standby.
pub(super) fn connect_first_fitting(
    conn: &ConnInfo,
    hosts: &[ConnInfo],
    tls: &MakeTlsConnector,
) -> std::result::Result<Reached, NoHost> {
    let attrs = conn.target_session_attrs.unwrap_or_default();
    let mut fallback = None;
    let mut tried = Vec::new();
    for host in in_order(conn, hosts) {
        let endpoint = host.host_ports();
        match attempt(host, &endpoint, tls.clone(), attrs.check()) {
            Ok(Attempt::Fits(client)) => return Ok(Reached { client, endpoint }),
            Ok(Attempt::Rejected(client, why)) => {
                if attrs.falls_back() && fallback.is_none() {
                    fallback = Some(Reached { client, endpoint });
                }
                tried.push(why);
            }
            // A lone host's failure needs no name: the target is that host.
            Err(why) if hosts.len() == 1 => tried.push(why),
            Err(why) => tried.push(format!("{endpoint}: {why}")),
        }
    }
    fallback.ok_or_else(|| NoHost {
        target: conn.target(),
        attrs,
        tried,
    })
}

/// The hosts as written, or shuffled with load_balance_hosts=random (libpq
/// 16; the crate would shuffle them itself, but it is given one at a time).
fn in_order<'a>(conn: &ConnInfo, hosts: &'a [ConnInfo]) -> Vec<&'a ConnInfo> {
    let mut order: Vec<&ConnInfo> = hosts.iter().collect();
    if conn.pass_through.get("load_balance_hosts") == Some("random") {
        use std::hash::{BuildHasher, Hasher};
        // std's randomly keyed hasher: random enough to spread sessions.
        let random = std::collections::hash_map::RandomState::new();
        for i in (1..order.len()).rev() {
            let mut h = random.build_hasher();
            h.write_usize(i);
            order.swap(i, (h.finish() % (i as u64 + 1)) as usize);
        }
    }
    order
}

/// What one host gave: a session that fits, or one that answered but does not.
enum Attempt {
    Fits(Client),
    Rejected(Client, String),
}

/// Connects to one host and runs its role check, on a thread of its own:
/// tokio-postgres's connect_timeout bounds only the socket connect, libpq's
/// the whole handshake, so a port that accepts and never answers would hang
/// here forever. Past the limit the attempt is abandoned (its thread blocked
/// until the process exits) and the next host is tried.
fn attempt(
    host: &ConnInfo,
    endpoint: &str,
    tls: MakeTlsConnector,
    check: Option<RoleCheck>,
) -> std::result::Result<Attempt, String> {
    let config = host.to_pg_config();
    let shown = endpoint.to_string();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("o2o-db-connect".into())
        .spawn(move || {
            let result = config
                .connect(tls)
                .map_err(|e| format!("{}{}", describe_pg_error(&e), connect_hint(&e)))
                .and_then(|client| checked(client, &shown, check));
            let _ = sender.send(result);
        })
        .map_err(|e| format!("cannot start a thread to connect: {e}"))?;
    match host.connect_limit() {
        Some(limit) => receiver.recv_timeout(limit).map_err(|_| {
            format!(
                "no answer within the connect timeout ({}); check that host and port are PostgreSQL's",
                humantime::format_duration(limit)
            )
        })?,
        None => receiver
            .recv()
            .map_err(|_| "the connection attempt ended without an answer".to_string())?,
    }
}

/// The session, judged by `check`'s query.
fn checked(
    mut client: Client,
    endpoint: &str,
    check: Option<RoleCheck>,
) -> std::result::Result<Attempt, String> {
    let Some(check) = check else {
        return Ok(Attempt::Fits(client));
    };
    let answer = client
        .simple_query(check.query())
        .map_err(|e| {
            format!(
                "cannot check its role ({}): {}",
                check.query(),
                describe_pg_error(&e)
            )
        })?
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    Ok(match check.rejects(endpoint, &answer) {
        None => Attempt::Fits(client),
        Some(why) => Attempt::Rejected(client, why),
    })
}

/// What to check, for the connection failures that are not the server's own words.
fn connect_hint(e: &postgres::Error) -> &'static str {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    " (is PostgreSQL running and listening on that host and port?)"
                }
                std::io::ErrorKind::NotFound => {
                    " (no server socket there: is PostgreSQL running, with that socket directory and port?)"
                }
                _ => "",
            };
        }
        source = cause.source();
    }
    ""
}

/// The TLS connector for `conn`'s settings, built once per process for each
/// set of them: building one loads OpenSSL's default certificate store, which
/// costs about 20 ms, and every connection (the pool's, each build session's)
/// asks for one.
pub fn tls_connector(conn: &ConnInfo) -> Result<MakeTlsConnector> {
    type Key = (
        Option<SslMode>,
        Option<PathBuf>,
        Option<PathBuf>,
        Option<PathBuf>,
    );
    static BUILT: OnceLock<Mutex<HashMap<Key, MakeTlsConnector>>> = OnceLock::new();
    let key: Key = (
        conn.sslmode,
        conn.sslrootcert.clone(),
        conn.sslcert.clone(),
        conn.sslkey.clone(),
    );
    let built = BUILT.get_or_init(Default::default);
    if let Some(found) = built.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(found);
    }
    let made = build_tls_connector(conn)?;
    if let Ok(mut m) = built.lock() {
        m.insert(key, made.clone());
    }
    Ok(made)
}

/// The TLS connector for libpq's sslmode: require checks nothing (unless a root
/// certificate is given, as libpq does), verify-ca checks the chain, verify-full
/// also the host name.
fn build_tls_connector(conn: &ConnInfo) -> Result<MakeTlsConnector> {
    let mode = conn.sslmode.unwrap_or_default();
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .context("cannot initialise OpenSSL for TLS connections")?;
    let verify = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => conn.sslrootcert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    if let Some(root) = &conn.sslrootcert {
        builder.set_ca_file(root).with_context(|| {
            format!(
                "cannot load sslrootcert {}: is it a PEM file?",
                root.display()
            )
        })?;
    } else if verify {
        let default = std::env::var("HOME")
            .map(|h| std::path::Path::new(&h).join(".postgresql/root.crt"))
            .ok()
            .filter(|p| p.exists());
        match default {
            Some(p) => builder.set_ca_file(&p).with_context(|| {
                format!("cannot load root certificate {}", p.display())
            })?,
            None => anyhow::bail!(
                "sslmode={} needs a root certificate: set sslrootcert=/path/to/root.crt in the URL or PGSSLROOTCERT",
                mode.as_str()
            ),
        }
    }
    if let Some(cert) = &conn.sslcert {
        builder
            .set_certificate_chain_file(cert)
            .with_context(|| format!("cannot load sslcert {}", cert.display()))?;
    }
    if let Some(key) = &conn.sslkey {
        builder
            .set_private_key_file(key, SslFiletype::PEM)
            .with_context(|| format!("cannot load sslkey {}", key.display()))?;
    }
    builder.set_verify(if verify {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    let mut connector = MakeTlsConnector::new(builder.build());
    let check_host = mode == SslMode::VerifyFull;
    connector.set_callback(move |cfg, _domain| {
        cfg.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}
