//! Cutting a connection string into libpq keyword pairs just far enough to
//! take out what the postgres crate refuses (sslmode verify-*, sslrootcert,
//! sslcert, sslkey, service, target_session_attrs beyond read-write and
//! read-only) or reads differently from libpq (a URL's query overriding its
//! host list, connect_timeout=0). The crate parses the values.

use anyhow::{bail, Context, Result};
use percent_encoding::percent_decode_str;

/// One libpq keyword and its value, decoded.
pub(super) type Pair = (String, String);

const SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

pub(super) fn is_url(s: &str) -> bool {
    SCHEMES.iter().any(|scheme| s.starts_with(scheme))
}

/// A `postgres://` URL cut where the postgres crate cuts it: the credentials
/// end at the first `@`, the host list at the next `/` or `?`.
pub(super) struct UrlParts<'a> {
    /// Everything before the query: credentials, hosts, database.
    pub base: &'a str,
    /// `host:port,[::1]:port`, as written.
    pub hosts: &'a str,
    /// What follows the `?`, if anything.
    pub query: Option<&'a str>,
}

impl UrlParts<'_> {
    /// Whether any host in the list carries its own `:port`.
    pub fn names_a_port(&self) -> bool {
        self.hosts.split(',').any(|host| {
            let after_ipv6 = host.rsplit_once(']').map_or(host, |(_, after)| after);
            after_ipv6.contains(':')
        })
    }
}

pub(super) fn cut_url(s: &str) -> Result<UrlParts<'_>> {
    check_percent_encoding(s)?;
    let scheme = SCHEMES
        .iter()
        .find(|scheme| s.starts_with(*scheme))
        .map_or(0, |scheme| scheme.len());
    let rest = &s[scheme..];
    let (credentials, after) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), scheme + at + 1),
        None => (None, scheme),
    };
    let tail = &s[after..];
    let hosts_len = tail.find(['/', '?']).unwrap_or(tail.len());
    let hosts = &tail[..hosts_len];
    // Unencoded, these move the boundaries: the host would hold part of the
    // password, or the query the rest of the URL. libpq refuses them too.
    if credentials.is_some_and(|c| c.contains(['/', '?'])) || hosts.contains('@') {
        bail!(
            "cannot tell the user name and password from the host: percent-encode `@` as %40, `/` as %2F and `?` as %3F in the user name, password and parameters"
        );
    }
    let query_at = tail[hosts_len..].find('?').map(|i| after + hosts_len + i);
    Ok(UrlParts {
        base: &s[..query_at.unwrap_or(s.len())],
        hosts,
        query: query_at.map(|i| &s[i + 1..]),
    })
}

/// libpq refuses a `%` that does not start two hex digits; the decoder would keep it.
fn check_percent_encoding(s: &str) -> Result<()> {
    let bytes = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !(hex(i + 1) && hex(i + 2)) {
            bail!("invalid percent-encoding: `%` must be followed by two hex digits (write `%` itself as %25)");
        }
    }
    Ok(())
}

/// `a=1&b=2`, percent-decoded.
pub(super) fn query_pairs(query: &str) -> Result<Vec<Pair>> {
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|d| d.into_owned())
            .context("a URL parameter is not valid UTF-8 after percent-decoding")
    };
    let mut pairs = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = param.split_once('=') else {
            bail!("URL parameter `{}` has no `=`", decode(param)?);
        };
        pairs.push((decode(key)?, decode(value)?));
    }
    Ok(pairs)
}

/// libpq's `key=value key='quoted \' value'` form.
pub(super) fn key_value_pairs(s: &str) -> Result<Vec<Pair>> {
    let mut pairs: Vec<Pair> = Vec::new();
    let mut chars = s.chars().peekable();
    fn skip_spaces(chars: &mut std::iter::Peekable<std::str::Chars>) {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
    }
    loop {
        skip_spaces(&mut chars);
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_spaces(&mut chars);
        if chars.next() != Some('=') {
            // Never echo the word: after an unquoted password with a space it is part of it.
            match pairs.last() {
                Some((previous, _)) => bail!(
                    "invalid connection string: missing `=` after the value of `{previous}`; quote values that contain spaces: key='a value'"
                ),
                None => bail!("invalid connection string: expected key=value pairs"),
            }
        }
        if key.is_empty() {
            bail!("invalid connection string: a value without a key");
        }
        skip_spaces(&mut chars);
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => bail!(
                        "invalid connection string: unterminated quote in the value of `{key}`"
                    ),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_cut_where_the_crate_cuts_them() {
        let url = cut_url("postgres://u:p%40ss@h1:5,[::1]:6/db?sslmode=require&x=1").unwrap();
        assert_eq!(url.base, "postgres://u:p%40ss@h1:5,[::1]:6/db");
        assert_eq!(url.hosts, "h1:5,[::1]:6");
        assert_eq!(url.query, Some("sslmode=require&x=1"));
        assert!(url.names_a_port());
        let url = cut_url("postgresql:///db?host=/tmp").unwrap();
        assert_eq!((url.hosts, url.query), ("", Some("host=/tmp")));
        assert!(!cut_url("postgres://h,[::1]/d").unwrap().names_a_port());
    }

    #[test]
    fn unencoded_separators_in_the_password_are_refused() {
        for url in [
            "postgres://app:pa/ss?w@db/o2o",
            "postgres://app:p@ss@db/o2o",
            "postgres://app:pa?ss@db/o2o",
            "postgres://app:50%@db/o2o",
        ] {
            assert!(cut_url(url).is_err(), "{url}");
        }
        assert!(cut_url("postgres://app:pa:ss#x@db/o2o").is_ok());
    }

    #[test]
    fn query_and_key_value_pairs_are_decoded() {
        assert_eq!(
            query_pairs("a=%2Ftmp&&b=c%20d").unwrap(),
            [("a".into(), "/tmp".into()), ("b".into(), "c d".into())]
        );
        assert!(query_pairs("sslmode").is_err());
        assert_eq!(
            key_value_pairs(" host = h  password='p \\' w' port=5 x=a\\ b").unwrap(),
            [
                ("host".into(), "h".into()),
                ("password".into(), "p ' w".into()),
                ("port".into(), "5".into()),
                ("x".into(), "a b".into()),
            ] as [Pair; 4]
        );
        let err = key_value_pairs("password=hunter pass2")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pass2"), "{err}");
        assert!(key_value_pairs("password='open").is_err());
        assert!(key_value_pairs("=x").is_err());
    }
}
