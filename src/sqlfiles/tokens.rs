//! The words of a statement as PostgreSQL's lexer reads them, and its rules
//! for names: how an identifier is folded and how long it may be. Shared by
//! the CREATE INDEX parser and the definition splitter (shape.rs).

use anyhow::{bail, Result};

/// A word or a quoted identifier, with its byte range in the statement.
#[derive(Debug)]
pub struct Token<'a> {
    /// The word, or what is between the quotes (doubled quotes kept).
    pub text: &'a str,
    pub quoted: bool,
    /// The byte after the token.
    pub end: usize,
}

/// Reads the next identifier-like token after `pos` (skipping whitespace).
pub fn next_token(sql: &str, pos: usize) -> Option<Token<'_>> {
    let rest = &sql[pos..];
    let skip = rest.len() - rest.trim_start().len();
    let start = pos + skip;
    let s = &sql[start..];
    if let Some(body) = s.strip_prefix('"') {
        let mut i = 0;
        let bytes = body.as_bytes();
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return Some(Token {
                    text: &sql[start + 1..start + 1 + i],
                    quoted: true,
                    end: start + 2 + i,
                });
            }
            i += 1;
        }
        return None;
    }
    // As PostgreSQL's lexer: ASCII letters, digits, _ and $, and any non-ASCII character.
    let len = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$' || !c.is_ascii()))
        .map_or(s.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    Some(Token {
        text: &s[..len],
        quoted: false,
        end: start + len,
    })
}

/// Whether `t` is the keyword `kw` (unquoted, any case).
pub fn is_kw(t: &Option<Token<'_>>, kw: &str) -> bool {
    t.as_ref()
        .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(kw))
}

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes); it
/// silently truncates longer ones, so two long names could become one.
pub const MAX_IDENT_BYTES: usize = 63;

/// An identifier's name as PostgreSQL reads it: quoted, as written (a doubled
/// quote is one); unquoted, with ASCII letters lower-cased (`Ä` stays `Ä`).
pub fn fold(text: &str, quoted: bool) -> String {
    if quoted {
        text.replace("\"\"", "\"")
    } else {
        text.to_ascii_lowercase()
    }
}

/// A token's real name (see [`fold`]). `what` names it in the error when it
/// is longer than PostgreSQL keeps.
pub fn ident(t: &Token<'_>, what: &str) -> Result<String> {
    let name = fold(t.text, t.quoted);
    if name.len() > MAX_IDENT_BYTES {
        bail!(
            "{what} `{name}` is {} bytes; PostgreSQL keeps only the first {MAX_IDENT_BYTES} (it would \
             truncate the name, and two long names could become one): shorten it",
            name.len()
        );
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::MAX_IDENT_BYTES;
    use crate::sqlfiles::IndexSet;

    #[test]
    fn names_longer_than_postgres_keeps_are_refused_with_their_line() {
        let at_limit = "i".repeat(MAX_IDENT_BYTES);
        let ok = IndexSet::parse(&format!("CREATE INDEX {at_limit} ON orders (x);"), "x.sql");
        assert_eq!(ok.unwrap().indexes[0].name, at_limit);
        let cases = [
            (
                format!("CREATE INDEX a ON orders (x);\nCREATE INDEX {at_limit}x ON orders (y);"),
                "x.sql:2: index name `iii",
            ),
            // 32 two-byte letters are 64 bytes, whether quoted or not.
            (
                format!("\n\nCREATE INDEX \"{}\" ON orders (x);", "ü".repeat(32)),
                "x.sql:3: index name `üü",
            ),
            (
                format!("CREATE INDEX a ON {at_limit}s (x);"),
                "x.sql:1: table name `iii",
            ),
            (
                format!("CREATE INDEX a ON {at_limit}s.orders (x);"),
                "x.sql:1: schema name `iii",
            ),
        ];
        for (text, want) in cases {
            let err = IndexSet::parse(&text, "x.sql").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?} gave {err}");
            assert!(
                err.contains("bytes; PostgreSQL keeps only the first 63"),
                "{err}"
            );
        }
    }

    #[test]
    fn unquoted_names_fold_only_ascii_letters_as_postgres_does() {
        let set = IndexSet::parse(
            "CREATE INDEX Idx_Ärger_ÉTÉ ON Bestellungen_Öst (x);",
            "x.sql",
        )
        .unwrap();
        let i = &set.indexes[0];
        assert_eq!(i.name, "idx_Ärger_ÉtÉ");
        assert_eq!(i.table, "bestellungen_Öst");
        // Non-ASCII characters are identifier characters, even when not letters.
        let set = IndexSet::parse("CREATE INDEX idx_€ ON orders (x);", "x.sql").unwrap();
        assert_eq!(set.indexes[0].name, "idx_€");
    }
}
