//! One connection outside any pool, with TLS as libpq spells it and the whole
//! handshake bounded by connect_timeout.

use super::error::describe_pg_error;
use crate::conninfo::{ConnInfo, SslMode};
use anyhow::{anyhow, Context, Result};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::Client;
use postgres_openssl::MakeTlsConnector;

/// Opens one connection outside any pool (index builds, long maintenance work).
pub fn connect(conn: &ConnInfo) -> Result<Client> {
    let config = conn.to_pg_config();
    let tls = tls_connector(conn)?;
    let described = |e: postgres::Error| {
        anyhow!(
            "cannot connect to {}: {}{}",
            conn.target(),
            describe_pg_error(&e),
            connect_hint(&e)
        )
    };
    let Some(per_host) = conn.connect_timeout else {
        return config.connect(tls).map_err(described);
    };
    // Like libpq, the timeout is per host tried.
    let limit = per_host * (conn.hosts.len().max(1) as u32);
    // tokio-postgres's connect_timeout bounds only the socket connect, libpq's
    // the whole handshake: a port that accepts and never answers would hang
    // here forever. The attempt runs on a thread of its own and is abandoned
    // (blocked until the process exits) once the limit has passed.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("o2o-db-connect".into())
        .spawn(move || {
            let _ = sender.send(config.connect(tls));
        })
        .context("cannot start a thread to connect")?;
    match receiver.recv_timeout(limit) {
        Ok(result) => result.map_err(described),
        Err(_) => Err(anyhow!(
            "cannot connect to {}: no answer within the connect timeout ({}); check that host and port are PostgreSQL's",
            conn.target(),
            humantime::format_duration(limit)
        )),
    }
}

/// What to check, for the connection failures that are not the server's own words.
fn connect_hint(e: &postgres::Error) -> &'static str {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "; is PostgreSQL running and listening on that host and port?"
                }
                std::io::ErrorKind::NotFound => {
                    "; no server socket there: is PostgreSQL running, with that socket directory and port?"
                }
                _ => "",
            };
        }
        source = cause.source();
    }
    ""
}

/// The TLS connector for libpq's sslmode: require checks nothing (unless a root
/// certificate is given, as libpq does), verify-ca checks the chain, verify-full
/// also the host name.
pub fn tls_connector(conn: &ConnInfo) -> Result<MakeTlsConnector> {
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
