//! libpq's environment, which the postgres crate does not read: the PG*
//! variables, pg_service.conf services and the .pgpass password file. Each
//! fills only what the connection string left unset, in libpq's order:
//! string, then service, then PG* variables; .pgpass last, for the password.

use super::ConnInfo;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// libpq's variables and the keyword each stands for.
const VARIABLES: [(&str, &str); 17] = [
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGDATABASE", "dbname"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
];

/// Where libpq looks for system-wide services when PGSYSCONFDIR is unset (Debian's libpq).
const SYSCONFDIR: &str = "/etc/postgresql-common";

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn non_empty(env: Env, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

impl ConnInfo {
    /// Fills what is still unset from libpq's environment variables, as psql does.
    pub fn fill_from_env(&mut self, env: Env) -> Result<()> {
        for (var, key) in VARIABLES {
            if let Some(value) = non_empty(env, var) {
                let one = ConnInfo::from_pairs(vec![(key.into(), value)])
                    .with_context(|| format!("in environment variable {var}"))?;
                self.fill_unset_from(one)?;
            }
        }
        Ok(())
    }

    /// Fills what is still unset from the service named by `service=` (else
    /// $PGSERVICE): the first of $PGSERVICEFILE (else ~/.pg_service.conf) and
    /// $PGSYSCONFDIR/pg_service.conf that defines it.
    pub fn fill_from_service(&mut self, env: Env) -> Result<()> {
        let Some(name) = self.service.clone().or_else(|| non_empty(env, "PGSERVICE")) else {
            return Ok(());
        };
        let user_file = match non_empty(env, "PGSERVICEFILE").map(PathBuf::from) {
            Some(named) if !named.is_file() => {
                bail!("service file {} (PGSERVICEFILE) not found", named.display())
            }
            Some(named) => Some(named),
            None => env("HOME").map(|home| Path::new(&home).join(".pg_service.conf")),
        };
        let system_dir = non_empty(env, "PGSYSCONFDIR").unwrap_or_else(|| SYSCONFDIR.into());
        let system_file = Path::new(&system_dir).join("pg_service.conf");
        for file in user_file.iter().chain([&system_file]) {
            if let Some(service) = read_service(file, &name)? {
                self.service = Some(name);
                return self.fill_unset_from(service);
            }
        }
        bail!(
            "definition of service `{name}` not found: add a [{name}] section to ~/.pg_service.conf, or name the file with PGSERVICEFILE"
        )
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
        // The postgres crate takes one password: the first host's.
        let host = self.first_host();
        // libpq matches socket connections against "localhost" too.
        let host = if host.starts_with('/') {
            "localhost".to_string()
        } else {
            host
        };
        let port = self.ports.first().copied().unwrap_or(5432).to_string();
        let user = self.user.clone().unwrap_or_default();
        let db = self.dbname.clone().unwrap_or_else(|| user.clone());
        let wanted = [host.as_str(), &port, &db, &user];
        for line in text.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields = split_pgpass_line(line);
            let [patterns @ .., password] = fields.as_slice() else {
                continue;
            };
            let matches = patterns.len() == 4
                && patterns
                    .iter()
                    .zip(wanted)
                    .all(|(field, value)| field == "*" || field == value);
            if matches {
                self.password = Some(password.clone());
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The service `name` in a pg_service.conf, if the file defines it. A missing
/// file defines nothing; a bad line is refused with the file and line.
fn read_service(file: &Path, name: &str) -> Result<Option<ConnInfo>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    let mut found: Option<ConnInfo> = None;
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if inside {
                break; // libpq reads the first definition only
            }
            inside = section.strip_suffix(']') == Some(name);
            if inside {
                found = Some(ConnInfo::default());
            }
            continue;
        }
        let Some(service) = found.as_mut().filter(|_| inside) else {
            continue;
        };
        let at = || format!("{}:{}", file.display(), i + 1);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}: expected key=value in service `{name}`", at());
        };
        let key = key.trim();
        if key == "service" {
            bail!("{}: a service cannot name another service", at());
        }
        let one = ConnInfo::from_pairs(vec![(key.into(), value.trim().into())]).with_context(at)?;
        // Within a section, as in libpq, the first mention of a keyword wins.
        service.fill_unset_from(one)?;
    }
    Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn services_fill_what_the_string_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        std::fs::write(
            &file,
            "# comment\n[other]\nhost=elsewhere\n\n[shop]\nhost=db1,db2\nport=5433,5434\ndbname=shop\ndbname=ignored\ntarget_session_attrs=read-write\nsslmode=verify-full\n[later]\nhost=x\n",
        )
        .unwrap();
        let file_env = [("PGSERVICEFILE", file.to_str().unwrap())];
        let mut c = ConnInfo::parse("service=shop dbname=mine").unwrap();
        c.fill_from_service(&env_of(&file_env)).unwrap();
        assert_eq!(c.hosts, ["db1", "db2"]);
        assert_eq!(c.ports, [5433, 5434]);
        assert_eq!(c.dbname.as_deref(), Some("mine"));
        assert_eq!(c.sslmode, Some(super::super::SslMode::VerifyFull));
        assert_eq!(
            c.target_session_attrs,
            Some(super::super::SessionAttrs::ReadWrite)
        );
        // PGSERVICE names it when the string does not; the string still wins.
        let mut c = ConnInfo::parse("postgres://u@h/d").unwrap();
        let with_service = [file_env[0], ("PGSERVICE", "shop")];
        c.fill_from_service(&env_of(&with_service)).unwrap();
        assert_eq!(
            (c.hosts.as_slice(), c.ports.as_slice()),
            (&["h".to_string()][..], &[5433, 5434][..])
        );
        // An unknown service is an error, not a silent default.
        let mut c = ConnInfo::parse("service=nope").unwrap();
        let err = c.fill_from_service(&env_of(&file_env)).unwrap_err();
        assert!(
            err.to_string().contains("service `nope` not found"),
            "{err}"
        );
    }

    #[test]
    fn service_files_are_found_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        std::fs::write(
            dir.path().join(".pg_service.conf"),
            "[a]\nport=1\n[b]\nnot a pair\n",
        )
        .unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir(&sys).unwrap();
        std::fs::write(sys.join("pg_service.conf"), "[c]\nport=3\n").unwrap();
        let vars = [("HOME", home), ("PGSYSCONFDIR", sys.to_str().unwrap())];
        let env = env_of(&vars);
        let resolved = |name: &str| {
            let mut c = ConnInfo::parse(&format!("service={name}"))?;
            c.fill_from_service(&env).map(|_| c.ports)
        };
        assert_eq!(resolved("a").unwrap(), [1]);
        assert_eq!(resolved("c").unwrap(), [3]);
        let err = format!("{:#}", resolved("b").unwrap_err());
        assert!(
            err.contains(".pg_service.conf:4: expected key=value"),
            "{err}"
        );
        let missing = env_of(&[("PGSERVICEFILE", "/nonexistent/services")]);
        let mut c = ConnInfo::parse("service=a").unwrap();
        assert!(c.fill_from_service(&missing).is_err());
    }

    #[test]
    fn environment_fills_unset_keywords_only() {
        let env = env_of(&[
            ("PGPORT", "6000"),
            ("PGOPTIONS", "-c work_mem=64MB"),
            ("PGTARGETSESSIONATTRS", "read-only"),
            ("PGUSER", "envuser"),
            ("PGCONNECT_TIMEOUT", "0"),
        ]);
        let mut c = ConnInfo::parse("postgres://me@h/d?target_session_attrs=read-write").unwrap();
        c.fill_from_env(&env).unwrap();
        assert_eq!(c.ports, [6000]);
        assert_eq!(c.user.as_deref(), Some("me"));
        assert_eq!(c.pass_through.get("options"), Some("-c work_mem=64MB"));
        assert_eq!(
            c.target_session_attrs,
            Some(super::super::SessionAttrs::ReadWrite)
        );
        // libpq's 0: no limit, which is not the same as unset.
        assert_eq!(c.connect_timeout, Some(std::time::Duration::ZERO));
        assert_eq!(c.connect_limit(), None);
        let mut c = ConnInfo::default();
        c.fill_from_env(&env_of(&[("PGTARGETSESSIONATTRS", "prefer-standby")]))
            .unwrap();
        assert_eq!(
            c.target_session_attrs,
            Some(super::super::SessionAttrs::PreferStandby)
        );
        let bad = env_of(&[("PGPORT", "fivefour")]);
        let err = format!("{:#}", ConnInfo::default().fill_from_env(&bad).unwrap_err());
        assert!(
            err.starts_with("in environment variable PGPORT: invalid port `fivefour`"),
            "{err}"
        );
    }
}
