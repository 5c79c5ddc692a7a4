//! SQL identifiers in statement text: every name from a file or flag is quoted.

/// Quotes an identifier for SQL, as PostgreSQL's quote_ident does for any name.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`, each part quoted; `"name"` alone without a schema.
pub fn quote_qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(name)),
        None => quote_ident(name),
    }
}
