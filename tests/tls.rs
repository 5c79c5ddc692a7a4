// TLS and password authentication against a second throwaway server that has
// a certificate made here by the test itself and scram-sha-256 on TCP.

use crate::support;
use o2o_db::conninfo::ConnInfo;
use o2o_db::pg_sandbox::{Sandbox, SandboxOptions};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use std::path::PathBuf;
use std::sync::OnceLock;

pub const PASSWORD: &str = "s3cret-Tls-pw";

pub struct TlsServer {
    pub sandbox: Sandbox,
    ca: PathBuf,
    wrong_ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ca: bool) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

pub fn server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: Vec<u8>| {
            let p = dir.path().join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        let ca_key = key();
        let ca = cert("o2o-db test CA", &ca_key, None, true);
        let server_key = key();
        let server_cert = cert("localhost", &server_key, Some((&ca, &ca_key)), false);
        let other_key = key();
        let other_ca = cert("someone else's CA", &other_key, None, true);
        let ca_path = write("root.crt", ca.to_pem().unwrap());
        let wrong_ca = write("wrong.crt", other_ca.to_pem().unwrap());
        let crt = write("server.crt", server_cert.to_pem().unwrap());
        let key_path = write("server.key", server_key.private_key_to_pem_pkcs8().unwrap());
        let sandbox = Sandbox::start_with(&SandboxOptions {
            password: Some(PASSWORD.into()),
            tls: Some((crt, key_path)),
            ..SandboxOptions::default()
        })
        .expect("TLS sandbox");
        TlsServer {
            sandbox,
            ca: ca_path,
            wrong_ca,
            _dir: dir,
        }
    })
}

fn tcp(host: &str, sslmode: &str, root: Option<&PathBuf>, password: &str) -> ConnInfo {
    let s = server();
    let mut url = format!(
        "postgres://postgres:{password}@{host}:{}/postgres?sslmode={sslmode}&connect_timeout=5",
        s.sandbox.port()
    );
    if let Some(root) = root {
        url.push_str(&format!("&sslrootcert={}", root.display()));
    }
    ConnInfo::parse(&url).unwrap()
}

fn uses_tls(conn: &ConnInfo) -> Result<bool, String> {
    let mut c = o2o_db::db::connect(conn).map_err(|e| format!("{e:#}"))?;
    Ok(c.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .unwrap()
    .get(0))
}

#[test]
fn sslmodes_behave_as_libpq_documents() {
    let s = server();
    assert_eq!(
        uses_tls(&tcp("localhost", "disable", None, PASSWORD)),
        Ok(false)
    );
    assert_eq!(
        uses_tls(&tcp("localhost", "prefer", None, PASSWORD)),
        Ok(true)
    );
    assert_eq!(
        uses_tls(&tcp("localhost", "require", None, PASSWORD)),
        Ok(true)
    );
    assert_eq!(
        uses_tls(&tcp("localhost", "verify-ca", Some(&s.ca), PASSWORD)),
        Ok(true)
    );
    assert_eq!(
        uses_tls(&tcp("localhost", "verify-full", Some(&s.ca), PASSWORD)),
        Ok(true)
    );
    // verify-ca checks the chain only; verify-full also the host name (the cert names localhost).
    assert_eq!(
        uses_tls(&tcp("127.0.0.1", "verify-ca", Some(&s.ca), PASSWORD)),
        Ok(true)
    );
    let err = uses_tls(&tcp("127.0.0.1", "verify-full", Some(&s.ca), PASSWORD)).unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(err.starts_with("cannot connect to 127.0.0.1:"), "{err}");
    // A CA that did not sign the server's certificate is refused.
    let err = uses_tls(&tcp(
        "localhost",
        "verify-full",
        Some(&s.wrong_ca),
        PASSWORD,
    ))
    .unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn verify_modes_without_a_root_certificate_say_what_to_set() {
    let err = uses_tls(&tcp("localhost", "verify-full", None, PASSWORD)).unwrap_err();
    assert!(
        err.contains("needs a root certificate: set sslrootcert="),
        "{err}"
    );
}

#[test]
fn wrong_password_is_a_clear_exit_2_without_the_password() {
    let s = server();
    let url = format!(
        "postgres://postgres:not-{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
        s.sandbox.port()
    );
    let out = support::bare_cmd()
        .args(["--database-url", &url, "seed", "--orders", "1"])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("password authentication failed for user \"postgres\""),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn password_from_pgpassword_and_pgpass() {
    let s = server();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=require",
        s.sandbox.port()
    );
    // No password anywhere: the server asks for one.
    let out = support::bare_cmd()
        .args(["--database-url", &url, "seed", "--orders", "1"])
        .output()
        .unwrap();
    assert!(
        support::stderr(&out).contains("password"),
        "{}",
        support::stderr(&out)
    );
    // PGPASSWORD: authentication passes (seed then fails for want of a table, exit 2, naming it).
    let out = support::bare_cmd()
        .env("PGPASSWORD", PASSWORD)
        .args(["--database-url", &url, "seed", "--orders", "1"])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert!(err.contains("table orders does not exist"), "{err}");
    assert!(!err.contains(PASSWORD));
    // ~/.pgpass with 0600.
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("localhost:{}:*:postgres:{PASSWORD}\n", s.sandbox.port()),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = support::bare_cmd()
        .env("HOME", home.path())
        .args(["--database-url", &url, "seed", "--orders", "1"])
        .output()
        .unwrap();
    assert!(
        support::stderr(&out).contains("table orders does not exist"),
        "{}",
        support::stderr(&out)
    );
}
