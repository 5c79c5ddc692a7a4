//! Passwords out of anything o2o-db prints, whether the text around them
//! parses or not: a URL's `user:secret@` and every `password=secret`.

/// Replaces anything that looks like a password in free text with `****`:
/// in each word holding `://`, everything between the user's `:` and the
/// word's last `@`; and the value of every `password=` (any case, spaces
/// around `=` allowed, quoted or not).
pub fn redact_text(s: &str) -> String {
    let words: String = s
        .split_inclusive(char::is_whitespace)
        .map(mask_userinfo)
        .collect();
    mask_password_values(&words)
}

/// `redact_text` for a string that is one connection string: the password
/// may contain spaces, so the URL runs to the end.
pub(super) fn redact_connection_string(s: &str) -> String {
    mask_password_values(&mask_userinfo(s))
}

/// `scheme://user:secret@host...` with the secret masked. Everything up to
/// the last `@` is taken as credentials: a password with an unencoded `/`,
/// `?`, `#`, `:` or `@` is masked whole, at the cost of masking too much in
/// the rare URL whose query holds an `@`.
fn mask_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
        return s.to_string();
    };
    let rest = &s[scheme_end..];
    let (Some(colon), Some(at)) = (rest.find(':'), rest.rfind('@')) else {
        return s.to_string();
    };
    // A user name holds none of these; with one before the `:` there is no user:password.
    if colon > at || rest[..colon].contains(['/', '?', '#', '@']) {
        return s.to_string();
    }
    format!("{}****{}", &s[..scheme_end + colon + 1], &rest[at..])
}

fn mask_password_values(s: &str) -> String {
    const KEY: &str = "password";
    // ASCII lower-casing keeps every byte offset.
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(found) = lower[pos..].find(KEY) {
        let key_end = pos + found + KEY.len();
        let eq = skip_spaces(s, key_end);
        if !s[eq..].starts_with('=') {
            out.push_str(&s[pos..key_end]);
            pos = key_end;
            continue;
        }
        let value = skip_spaces(s, eq + 1);
        out.push_str(&s[pos..value]);
        out.push_str("****");
        pos = value_end(s, value);
    }
    out.push_str(&s[pos..]);
    out
}

fn skip_spaces(s: &str, from: usize) -> usize {
    s[from..]
        .find(|c: char| c != ' ' && c != '\t')
        .map_or(s.len(), |i| from + i)
}

/// Where the value starting at `start` ends: after its closing quote
/// (honouring `\'`), else at whitespace or the next URL parameter.
fn value_end(s: &str, start: usize) -> usize {
    let rest = &s[start..];
    if let Some(quoted) = rest.strip_prefix('\'') {
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => return start + 1 + i + 1,
                _ => {}
            }
        }
        return s.len();
    }
    rest.find(|c: char| c.is_whitespace() || c == '&')
        .map_or(s.len(), |i| start + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_everything_between_the_user_and_the_last_at() {
        for (text, want) in [
            (
                "see postgres://u:pw@h/d now",
                "see postgres://u:****@h/d now",
            ),
            (
                "postgres://app:pa/ss?w@db/o2o",
                "postgres://app:****@db/o2o",
            ),
            (
                "`postgres://app:p@ss:x#y@db/o2o`: bad",
                "`postgres://app:****@db/o2o`: bad",
            ),
            (
                "postgres://u@h:5/d and postgres://v:s@h",
                "postgres://u@h:5/d and postgres://v:****@h",
            ),
            ("postgres://h:5432/d", "postgres://h:5432/d"),
            ("postgresql:///d?host=/tmp", "postgresql:///d?host=/tmp"),
        ] {
            assert_eq!(redact_text(text), want, "{text}");
            assert_eq!(redact_text(&redact_text(text)), want, "twice: {text}");
        }
        assert_eq!(
            redact_connection_string("postgres://u:pa ss@h/d"),
            "postgres://u:****@h/d"
        );
    }

    #[test]
    fn password_values_are_masked_in_any_form() {
        for (text, want) in [
            ("host=h password=pw user=u", "host=h password=**** user=u"),
            ("password='p w' x", "password=**** x"),
            ("password = 'it\\'s' x", "password = **** x"),
            ("PGPASSWORD=pw", "PGPASSWORD=****"),
            (
                "?password=pw&sslmode=require",
                "?password=****&sslmode=require",
            ),
            (
                "password authentication failed",
                "password authentication failed",
            ),
            ("password='unterminated", "password=****"),
        ] {
            assert_eq!(redact_text(text), want, "{text}");
        }
    }
}
