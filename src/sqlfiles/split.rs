//! Splits SQL text into statements at top-level semicolons, skipping comments
//! and respecting quotes and dollar quotes, and remembers where each began.

use anyhow::{bail, Result};

/// One statement of a SQL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement without its semicolon or surrounding comments, whitespace trimmed.
    pub sql: String,
    /// 1-based line where the statement's first token is.
    pub line: usize,
    /// `-- key: value` comment lines directly above the statement (after the previous one).
    pub annotations: Vec<(String, String, usize)>,
}

/// Splits `text`; `origin` (a file name) is used in error messages. A UTF-8
/// byte-order mark at the start (editors on Windows write one) is not text.
pub fn split_statements(text: &str, origin: &str) -> Result<Vec<Statement>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start_line = 0usize;
    let mut line = 1usize;
    let mut annotations = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '-' && next == Some('-') {
            let end = chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| i + p);
            let comment: String = chars[i + 2..end].iter().collect();
            if current.trim().is_empty() {
                if let Some((k, v)) = comment.trim().split_once(':') {
                    let key = k.trim();
                    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        annotations.push((key.to_ascii_lowercase(), v.trim().to_string(), line));
                    }
                }
            } else {
                current.push(' ');
            }
            i = end;
            continue;
        }
        if c == '/' && next == Some('*') {
            let open_line = line;
            let mut depth = 0;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(ch), _) => {
                        if *ch == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                    (None, _) => bail!("{origin}:{open_line}: unterminated /* comment"),
                }
            }
            current.push(' ');
            continue;
        }
        if c == ';' {
            if current.trim().is_empty() {
                bail!("{origin}:{line}: stray `;` with no statement before it; remove it");
            }
            out.push(Statement {
                sql: current.trim().to_string(),
                line: start_line,
                annotations: std::mem::take(&mut annotations),
            });
            current.clear();
            i += 1;
            continue;
        }
        if !c.is_whitespace() && current.trim().is_empty() {
            start_line = line;
        }
        if c == '\'' || c == '"' {
            let open_line = line;
            current.push(c);
            i += 1;
            if !copy_quoted(&chars, &mut i, &mut line, &mut current, &[c], true) {
                bail!("{origin}:{open_line}: unterminated {c} quote");
            }
            continue;
        }
        if c == '$' {
            // $tag$ ... $tag$ (a $1 parameter has a digit after the dollar and is not a quote)
            let tag_end = chars[i + 1..]
                .iter()
                .position(|ch| !(ch.is_alphanumeric() || *ch == '_'))
                .map(|p| i + 1 + p);
            if let Some(te) = tag_end {
                let tag_body: String = chars[i + 1..te].iter().collect();
                if chars.get(te) == Some(&'$')
                    && !tag_body.starts_with(|ch: char| ch.is_ascii_digit())
                {
                    let tag = &chars[i..=te];
                    let open_line = line;
                    current.extend(tag);
                    i = te + 1;
                    if !copy_quoted(&chars, &mut i, &mut line, &mut current, tag, false) {
                        let tag: String = tag.iter().collect();
                        bail!("{origin}:{open_line}: unterminated {tag} quote");
                    }
                    continue;
                }
            }
        }
        if c == '\n' {
            line += 1;
        }
        current.push(c);
        i += 1;
    }
    if !current.trim().is_empty() {
        // The last statement may omit its semicolon.
        out.push(Statement {
            sql: current.trim().to_string(),
            line: start_line,
            annotations,
        });
    }
    Ok(out)
}

/// Copies a quoted text from `chars[*i]` (just after its opening quote) up to
/// and including its closing `quote` into `current`, counting the lines it
/// spans. With `doubled`, a doubled quote is part of the text (`'it''s'`).
/// False when the text ends first.
fn copy_quoted(
    chars: &[char],
    i: &mut usize,
    line: &mut usize,
    current: &mut String,
    quote: &[char],
    doubled: bool,
) -> bool {
    while *i < chars.len() {
        if chars[*i..].starts_with(quote) {
            current.extend(quote);
            *i += quote.len();
            if doubled && chars[*i..].starts_with(quote) {
                current.extend(quote);
                *i += quote.len();
                continue;
            }
            return true;
        }
        if chars[*i] == '\n' {
            *line += 1;
        }
        current.push(chars[*i]);
        *i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_lines_and_annotations() {
        let text = "-- a header\n\n-- name: one\nSELECT ';' -- x;\n  FROM t;\n/* c; */ SELECT $$;$$, $1;\nSELECT 3";
        let s = split_statements(text, "f.sql").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].line, 4);
        assert_eq!(s[0].annotations, vec![("name".into(), "one".into(), 3)]);
        assert!(s[0].sql.starts_with("SELECT ';'"));
        assert_eq!(s[1].line, 6);
        assert_eq!(s[1].sql, "SELECT $$;$$, $1");
        assert_eq!(s[2].sql, "SELECT 3");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_statement() {
        let s = split_statements("\u{feff}-- name: one\nSELECT 1;", "f.sql").unwrap();
        assert_eq!(s[0].sql, "SELECT 1");
        assert_eq!((s[0].line, s[0].annotations.len()), (2, 1));
    }

    #[test]
    fn reports_stray_semicolons_and_open_quotes() {
        let e = split_statements("SELECT 1;\n;", "f.sql")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.sql:2: stray `;`"), "{e}");
        let e = split_statements("SELECT 1;\nSELECT 'x", "f.sql")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.sql:2: unterminated ' quote"), "{e}");
    }

    #[test]
    fn quoted_text_keeps_doubled_quotes_and_counts_its_lines() {
        let text = "SELECT 'it''s;\n';\nSELECT $tag$ a;\n$x$ $tag$;\nSELECT \"a\"\";b\"";
        let s = split_statements(text, "f.sql").unwrap();
        let got: Vec<(&str, usize)> = s.iter().map(|s| (s.sql.as_str(), s.line)).collect();
        assert_eq!(
            got,
            [
                ("SELECT 'it''s;\n'", 1),
                ("SELECT $tag$ a;\n$x$ $tag$", 3),
                ("SELECT \"a\"\";b\"", 5)
            ]
        );
        let e = split_statements("SELECT 1;\n\nSELECT $q$ x;\n", "f.sql")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.sql:3: unterminated $q$ quote"), "{e}");
    }
}
