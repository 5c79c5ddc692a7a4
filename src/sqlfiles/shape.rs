//! The parts of an index definition that make two indexes the same (method,
//! key expressions with their collation, operator class and order, INCLUDE
//! columns, predicate, NULLS NOT DISTINCT), split from the text of an index
//! file or of pg_get_indexdef without a database. The expressions stay text:
//! catalog::shapes has the server deparse both sides the same way.

use super::tokens::fold;
use anyhow::{bail, Result};

/// One key column or expression of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    /// The column name or expression, as written.
    pub expr: String,
    pub collation: Option<String>,
    /// The operator class when one is named (None: the type's default).
    pub opclass: Option<String>,
    pub desc: bool,
    /// NULLS FIRST; the default is NULLS FIRST for DESC and LAST for ASC.
    pub nulls_first: bool,
}

/// An index definition after its table name, in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionParts {
    /// The access method, lower case; btree when none is named.
    pub method: String,
    pub keys: Vec<KeyPart>,
    pub include: Vec<String>,
    pub nulls_not_distinct: bool,
    pub predicate: Option<String>,
}

impl DefinitionParts {
    /// The definition as pg_get_indexdef would lay it out, with the file's own
    /// expressions: `USING btree (store_name, date DESC) INCLUDE (amount)`.
    pub fn render(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let mut text = k.expr.clone();
                if let Some(c) = &k.collation {
                    text.push_str(&format!(" COLLATE {}", crate::ident::quote_ident(c)));
                }
                if let Some(o) = &k.opclass {
                    text.push_str(&format!(" {o}"));
                }
                if k.desc {
                    text.push_str(" DESC");
                }
                if k.nulls_first != k.desc {
                    text.push_str(if k.nulls_first {
                        " NULLS FIRST"
                    } else {
                        " NULLS LAST"
                    });
                }
                text
            })
            .collect();
        let mut text = format!("USING {} ({})", self.method, keys.join(", "));
        if !self.include.is_empty() {
            text.push_str(&format!(" INCLUDE ({})", self.include.join(", ")));
        }
        if self.nulls_not_distinct {
            text.push_str(" NULLS NOT DISTINCT");
        }
        if let Some(p) = &self.predicate {
            text.push_str(&format!(" WHERE {p}"));
        }
        text
    }
}

/// Splits `[USING method] (keys) [INCLUDE (cols)] [NULLS [NOT] DISTINCT]
/// [WITH (...)] [TABLESPACE t] [WHERE predicate]`.
pub fn parse_definition(definition: &str) -> Result<DefinitionParts> {
    let text = definition.trim();
    let open = match text.find('(') {
        Some(i) => i,
        None => bail!("no column list in `{text}`"),
    };
    let head: Vec<&str> = text[..open].split_whitespace().collect();
    let method = match head.as_slice() {
        [] => "btree".to_string(),
        [using, method] if using.eq_ignore_ascii_case("using") => unquote_fold(method),
        _ => bail!(
            "unexpected `{}` before the column list",
            text[..open].trim()
        ),
    };
    let (keys_text, mut rest) = group(&text[open..])?;
    let keys = split_top_level(keys_text)
        .into_iter()
        .map(key_part)
        .collect::<Result<Vec<_>>>()?;
    let mut include = Vec::new();
    let mut nulls_not_distinct = false;
    let mut predicate = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (word, after) = first_word(rest);
        match word.to_ascii_lowercase().as_str() {
            "include" => {
                let (cols, after) = group(after.trim_start())?;
                include = split_top_level(cols)
                    .into_iter()
                    .map(|c| c.trim().to_string())
                    .collect();
                rest = after;
            }
            "nulls" => {
                let (next, after) = first_word(after.trim_start());
                if next.eq_ignore_ascii_case("not") {
                    nulls_not_distinct = true;
                    rest = first_word(after.trim_start()).1;
                } else {
                    rest = after;
                }
            }
            // Storage parameters are not part of what an index answers.
            "with" => rest = group(after.trim_start())?.1,
            "tablespace" => rest = first_word(after.trim_start()).1,
            "where" => {
                predicate = Some(after.trim().to_string());
                break;
            }
            _ => bail!("unexpected `{}` after the column list", rest.trim()),
        }
    }
    Ok(DefinitionParts {
        method,
        keys,
        include,
        nulls_not_distinct,
        predicate,
    })
}

/// One key element: `expr [COLLATE c] [opclass] [ASC|DESC] [NULLS FIRST|LAST]`.
fn key_part(element: &str) -> Result<KeyPart> {
    let mut words = top_level_words(element);
    let mut nulls_first = None;
    let mut desc = false;
    let last_is =
        |words: &[&str], kw: &str| words.last().is_some_and(|w| w.eq_ignore_ascii_case(kw));
    if words.len() >= 3 && words[words.len() - 2].eq_ignore_ascii_case("nulls") {
        nulls_first = Some(last_is(&words, "first"));
        words.truncate(words.len() - 2);
    }
    if last_is(&words, "desc") {
        desc = true;
        words.pop();
    } else if last_is(&words, "asc") {
        words.pop();
    }
    let Some((expr, modifiers)) = words.split_first() else {
        bail!("an empty element in the column list");
    };
    let mut collation = None;
    let mut opclass = None;
    let mut i = 0;
    while i < modifiers.len() {
        if modifiers[i].eq_ignore_ascii_case("collate") && i + 1 < modifiers.len() {
            collation = Some(unquote_fold(modifiers[i + 1]));
            i += 2;
        } else {
            // An operator class, possibly with (parameters): compared by name.
            let name = modifiers[i].split('(').next().unwrap_or(modifiers[i]);
            opclass = Some(unquote_fold(name));
            i += 1;
        }
    }
    Ok(KeyPart {
        expr: expr.to_string(),
        collation,
        opclass,
        desc,
        nulls_first: nulls_first.unwrap_or(desc),
    })
}

/// An identifier as PostgreSQL reads it: quoted as written, otherwise with
/// ASCII letters lower-cased.
fn unquote_fold(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => fold(inner, true),
        None => fold(word, false),
    }
}

/// The first whitespace-separated word and what follows it.
fn first_word(s: &str) -> (&str, &str) {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let end = s[..end].find('(').unwrap_or(end);
    (&s[..end], &s[end..])
}

/// Walks `s`, calling `f(index, char, depth)` for each character outside
/// quoted identifiers and strings (`'\0'` stands for one inside them, so a
/// word may start there); stops when `f` returns false.
fn scan(s: &str, mut f: impl FnMut(usize, char, i32) -> bool) {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        let inside = quote.is_some();
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            _ => {}
        }
        let seen = if inside || quote.is_some() { '\0' } else { c };
        if !f(i, seen, depth) {
            return;
        }
    }
}

/// The inside of the parenthesised group `s` starts with, and what follows it.
pub(super) fn group(s: &str) -> Result<(&str, &str)> {
    if !s.starts_with('(') {
        bail!("expected `(` at `{s}`");
    }
    let mut close = None;
    scan(s, |i, c, depth| {
        if c == ')' && depth == 0 {
            close = Some(i);
            return false;
        }
        true
    });
    match close {
        Some(i) => Ok((&s[1..i], &s[i + 1..])),
        None => bail!("unbalanced parentheses in `{s}`"),
    }
}

/// `s` split at commas outside parentheses and quotes.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    scan(s, |i, c, depth| {
        if c == ',' && depth == 0 {
            parts.push(s[start..i].trim());
            start = i + 1;
        }
        true
    });
    parts.push(s[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// `s` split at whitespace outside parentheses and quotes; a name followed by
/// a parenthesised group (`lower (x)`, `opclass (params)`) stays one word.
fn top_level_words(s: &str) -> Vec<&str> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    scan(s, |i, c, depth| {
        match (c.is_whitespace() && depth == 0, start) {
            (true, Some(b)) => {
                ranges.push((b, i));
                start = None;
            }
            (false, None) if !c.is_whitespace() => start = Some(i),
            _ => {}
        }
        true
    });
    if let Some(b) = start {
        ranges.push((b, s.len()));
    }
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (b, e) in ranges {
        match merged.last_mut() {
            Some(prev) if s[b..e].starts_with('(') && !s[prev.0..prev.1].ends_with(')') => {
                prev.1 = e
            }
            _ => merged.push((b, e)),
        }
    }
    merged.into_iter().map(|(b, e)| &s[b..e]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(expr: &str, desc: bool, nulls_first: bool) -> KeyPart {
        KeyPart {
            expr: expr.into(),
            collation: None,
            opclass: None,
            desc,
            nulls_first,
        }
    }

    #[test]
    fn splits_file_and_server_spellings_alike() {
        let file = parse_definition("(store_name, date DESC)").unwrap();
        let server = parse_definition("USING btree (store_name, date DESC)").unwrap();
        assert_eq!(file, server);
        assert_eq!(file.method, "btree");
        assert_eq!(
            file.keys,
            [key("store_name", false, false), key("date", true, true)]
        );
        let nulls = parse_definition("(date DESC NULLS LAST)").unwrap();
        assert_eq!(nulls.keys, [key("date", true, false)]);
        assert_eq!(nulls.render(), "USING btree (date DESC NULLS LAST)");
        assert_eq!(file.render(), "USING btree (store_name, date DESC)");
    }

    #[test]
    fn reads_expressions_options_and_predicates() {
        let d = parse_definition(
            "using HASH (lower (store_name) text_pattern_ops, (amount * 2) COLLATE \"C\" desc) \
             include (amount, \"Cost\") nulls not distinct with (fillfactor = 90) where amount > 0 and (scene = 'a, b')",
        )
        .unwrap();
        assert_eq!(d.method, "hash");
        assert_eq!(d.keys[0].expr, "lower (store_name)");
        assert_eq!(d.keys[0].opclass.as_deref(), Some("text_pattern_ops"));
        assert_eq!(d.keys[1].expr, "(amount * 2)");
        assert_eq!(d.keys[1].collation.as_deref(), Some("C"));
        assert!(d.keys[1].desc && d.keys[1].nulls_first);
        assert_eq!(d.include, ["amount", "\"Cost\""]);
        assert!(d.nulls_not_distinct);
        assert_eq!(
            d.predicate.as_deref(),
            Some("amount > 0 and (scene = 'a, b')")
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in ["store_name", "(a", "CONCURRENTLY (a)", "(a) banana"] {
            assert!(parse_definition(bad).is_err(), "{bad}");
        }
    }
}
