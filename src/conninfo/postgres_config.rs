//! What the postgres crate parses for us: its `Config` built from libpq
//! keyword pairs, its parse errors said in our words, and the settings o2o-db
//! passes through to it untouched (options, target_session_attrs,
//! keepalives, hostaddr, ...).

use super::split::Pair;
use anyhow::{bail, Result};

/// Keywords the crate parses and `ConnInfo` keeps in fields of its own,
/// because the PG* environment, .pgpass, messages and the resolve rules need them.
pub(super) const HELD: [&str; 6] = [
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "application_name",
];

/// Every keyword o2o-db accepts, for the "unknown parameter" message.
pub(super) const KNOWN: &str = "host, hostaddr, port, user, password, dbname, options, application_name, connect_timeout, sslmode, sslrootcert, sslcert, sslkey, service, target_session_attrs, keepalives, keepalives_idle, keepalives_interval, keepalives_retries, tcp_user_timeout, channel_binding, load_balance_hosts, sslnegotiation";

/// The crate's `Config` for these pairs, as a `key='value' ...` string it parses.
pub(super) fn parse_pairs(pairs: &[Pair]) -> Result<postgres::Config> {
    let quoted: Vec<String> = pairs
        .iter()
        .map(|(key, value)| {
            let value = value.replace('\\', "\\\\").replace('\'', "\\'");
            format!("{key}='{value}'")
        })
        .collect();
    let value_of = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| format!(" `{v}`"))
    };
    quoted
        .join(" ")
        .parse()
        .map_err(|e| describe(&e, &value_of))
}

/// The crate's parse error in our words. `shown(key)` is how to show the
/// value in question (never asked for the password).
pub(super) fn describe(
    e: &postgres::Error,
    shown: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Error {
    let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), |c| c.to_string());
    let quoted = |prefix: &str| {
        let rest = cause.strip_prefix(prefix)?;
        rest.strip_prefix('`')?
            .strip_suffix('`')
            .map(str::to_string)
    };
    if let Some(key) = quoted("unknown option ") {
        return anyhow::anyhow!("unknown connection parameter `{key}`; known: {KNOWN}");
    }
    let Some(key) = quoted("invalid value for option ") else {
        return anyhow::anyhow!("invalid connection string: {cause}");
    };
    let value = match key.as_str() {
        "password" => None,
        key => shown(key),
    };
    let hint = match key.as_str() {
        "port" => "expected a port number, or one per host separated by commas",
        "tcp_user_timeout" | "keepalives_idle" | "keepalives_interval" => "expected whole seconds",
        "keepalives" => "use 1 (on) or 0 (off)",
        "keepalives_retries" => "expected a count",
        "hostaddr" => "expected IP addresses, one per host separated by commas",
        "channel_binding" => "use disable, prefer or require",
        "load_balance_hosts" => "use disable or random",
        "sslnegotiation" => "use postgres or direct",
        _ => "see libpq's documentation of the parameter",
    };
    anyhow::anyhow!("invalid {key}{}: {hint}", value.unwrap_or_default())
}

/// Connection settings handed to the postgres crate as given. Kept as pairs
/// so a service file and the environment can fill only the ones left unset;
/// parsed as soon as they are set, so a bad value is refused at once.
#[derive(Clone, Default)]
pub struct PassThrough {
    pairs: Vec<Pair>,
    config: postgres::Config,
}

impl PartialEq for PassThrough {
    fn eq(&self, other: &Self) -> bool {
        self.pairs == other.pairs
    }
}

impl PassThrough {
    pub(super) fn new(pairs: Vec<Pair>) -> Result<PassThrough> {
        if let Some((key, _)) = pairs.iter().find(|(k, _)| HELD.contains(&k.as_str())) {
            bail!("`{key}` is not a pass-through connection parameter");
        }
        let config = parse_pairs(&pairs)?;
        Ok(PassThrough { pairs, config })
    }

    /// The keyword/value pairs, in the order given.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The crate's config holding only these settings: `to_pg_config` starts from it.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// Sets `key` to `value`, replacing what was there.
    pub(super) fn set(&mut self, key: &str, value: String) -> Result<()> {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_string(), value));
        self.config = parse_pairs(&self.pairs)?;
        Ok(())
    }

    /// Takes the settings of `other` that are not set here.
    pub(super) fn fill_unset_from(&mut self, other: PassThrough) -> Result<()> {
        let before = self.pairs.len();
        for (key, value) in other.pairs {
            if self.get(&key).is_none() {
                self.pairs.push((key, value));
            }
        }
        if self.pairs.len() != before {
            self.config = parse_pairs(&self.pairs)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for PassThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.pairs.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<Pair> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_quoted_for_the_crate() {
        let cfg = parse_pairs(&pairs(&[
            ("password", "it's a \\ test"),
            ("options", "-c search_path=sales"),
        ]))
        .unwrap();
        assert_eq!(cfg.get_password(), Some(&b"it's a \\ test"[..]));
        assert_eq!(cfg.get_options(), Some("-c search_path=sales"));
    }

    #[test]
    fn errors_name_the_parameter_and_never_the_password() {
        let err = |list: &[(&str, &str)]| format!("{:#}", parse_pairs(&pairs(list)).unwrap_err());
        assert_eq!(
            err(&[("port", "x")]),
            "invalid port `x`: expected a port number, or one per host separated by commas"
        );
        assert!(err(&[("colour", "blue")]).starts_with("unknown connection parameter `colour`"));
        assert!(err(&[("keepalives", "maybe")]).contains("use 1 (on) or 0 (off)"));
    }

    #[test]
    fn every_known_keyword_is_accepted() {
        let ours = super::super::OWN_KEYWORDS;
        for key in KNOWN.split(", ").filter(|k| !ours.contains(k)) {
            let value = match key {
                "hostaddr" => "127.0.0.1",
                "target_session_attrs" => "any",
                "channel_binding" | "load_balance_hosts" => "disable",
                "sslnegotiation" => "postgres",
                _ => "1",
            };
            assert!(parse_pairs(&pairs(&[(key, value)])).is_ok(), "{key}");
        }
    }

    #[test]
    fn filling_keeps_what_is_set() {
        let mut a = PassThrough::new(pairs(&[("options", "-c a=1")])).unwrap();
        let b = PassThrough::new(pairs(&[("options", "-c b=2"), ("keepalives", "0")])).unwrap();
        a.fill_unset_from(b).unwrap();
        assert_eq!(a.config().get_options(), Some("-c a=1"));
        assert!(!a.config().get_keepalives());
        a.set("options", "-c c=3".into()).unwrap();
        assert_eq!(a.config().get_options(), Some("-c c=3"));
        assert_eq!(a.pairs().len(), 2, "replaced, not added");
        assert!(PassThrough::new(pairs(&[("host", "h")])).is_err());
    }
}
