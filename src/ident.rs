//! SQL identifiers in statement text: every name from a file or flag is quoted.

/// Quotes an identifier for SQL, as PostgreSQL's quote_ident does for any name.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
