//! Reading o2o-db.toml: every mistake is reported with the file, the line,
//! the key and a hint, because a typo in a cron job's config must not fall
//! back to a default in silence.
//!
//! Lines and keys come from the toml crate's own spans (the error's span, the
//! parsed document's spans); "did you mean" from `strsim`.

use super::schema::FileConfig;
use crate::conninfo::redact_text;
use anyhow::Result;
use std::ops::Range;
use std::path::Path;

/// Reads and checks one config file; errors name the file, line and key.
pub fn load_file(path: &Path) -> Result<FileConfig> {
    parse_str(&read_text(path)?, path)
}

/// The file's text, refused with the line of the first bad byte unless UTF-8.
pub(super) fn read_text(path: &Path) -> Result<String> {
    crate::text_file::read_utf8(path, "config file")
}

/// Parses config text; `path` is only used in messages.
pub fn parse_str(text: &str, path: &Path) -> Result<FileConfig> {
    toml::from_str::<FileConfig>(text).map_err(|e| describe(&e, text, path))
}

/// The 1-based line holding byte `offset` of `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

fn describe(e: &toml::de::Error, text: &str, path: &Path) -> anyhow::Error {
    let span = e.span();
    let line = span.as_ref().map_or(0, |s| line_of(text, s.start));
    let message = redact_text(&e.message().trim().replace('\n', "; "));
    let at = format!("{}:{line}", path.display());
    if let Some((field, known)) = unknown_field(&message) {
        return anyhow::anyhow!("{at}: unknown key `{field}`{}", suggest(field, &known));
    }
    let key = span
        .and_then(|s| key_at(text, &s))
        .map(|k| format!(" `{k}`:"))
        .unwrap_or_default();
    let hint = if message.starts_with("invalid value") && message.contains("nonzero") {
        "; it must be 1 or more"
    } else if message.contains("invalid value: integer `-") {
        "; it cannot be negative"
    } else if message.starts_with("invalid type") {
        "; see o2o-db.toml in the repository for each key's type"
    } else {
        ""
    };
    anyhow::anyhow!("{at}:{key} {message}{hint}")
}

/// serde's "unknown field `x`, expected one of `a`, `b`": the field and the known keys.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
    let known = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect();
    Some((field, known))
}

/// "; did you mean `size`?" for a near miss, else the known keys.
fn suggest(field: &str, known: &[&str]) -> String {
    // `pool_sise` in [pool] means `size`: also compare without a section-like prefix.
    let bare = field.split_once('_').map_or(field, |(_, rest)| rest);
    let distance = |c: &str| strsim::levenshtein(field, c).min(strsim::levenshtein(bare, c));
    match known.iter().min_by_key(|c| distance(c)) {
        Some(best) if distance(best) <= 3 => format!("; did you mean `{best}`?"),
        Some(_) => format!("; known keys: {}", known.join(", ")),
        None => String::new(),
    }
}

/// `section.key` whose value holds `span`, from the document's own spans.
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut path = Vec::new();
    find_value(doc.as_table(), span.start, &mut path).then(|| path.join("."))
}

fn find_value(table: &toml_edit::Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, item) in table.iter() {
        path.push(key.to_string());
        let found = match item {
            toml_edit::Item::Table(t) => find_value(t, offset, path),
            item => item.span().is_some_and(|s| s.contains(&offset)),
        };
        if found {
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", parse_str(text, Path::new("c.toml")).unwrap_err())
    }

    #[test]
    fn value_errors_name_line_and_key() {
        assert_eq!(
            error("[pool]\nsize = 1\n\nmax_overflow = -1\n"),
            "c.toml:4: `pool.max_overflow`: invalid value: integer `-1`, expected u32; it cannot be negative"
        );
        assert!(error("[verify]\nrecycle = \"soon\"\n")
            .starts_with("c.toml:2: `verify.recycle`: invalid duration `soon`"));
        assert!(error("[alert]\nquery_ms = \"fast\"\n").contains("see o2o-db.toml"));
    }

    #[test]
    fn unknown_keys_get_the_nearest_known_one() {
        assert_eq!(
            error("[benchmark]\niteratons = 3\n"),
            "c.toml:2: unknown key `iteratons`; did you mean `iterations`?"
        );
        let far = error("[alert]\ncolour = 1\n");
        assert_eq!(
            far,
            "c.toml:2: unknown key `colour`; known keys: pool_usage_percent, query_ms, pgbouncer_avg_wait"
        );
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
