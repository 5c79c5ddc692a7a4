//! Errors from the server, said the way a DBA reads them: the server's own
//! severity, message and detail, and what o2o-db was doing at the time.

/// The server's message for a postgres error: "FATAL: database \"x\" does not
/// exist" rather than the crate's bare "db error".
pub fn describe_pg_error(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" (DETAIL: {detail})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// Context for a postgres error: `.pg_context("reading the catalog")?` gives
/// "reading the catalog: ERROR: permission denied ..." instead of "db error".
pub trait PgContext<T> {
    /// Prefixes the server's message with what we were doing.
    fn pg_context(self, doing: &str) -> anyhow::Result<T>;
    /// The same, with the description built only on error.
    fn with_pg_context(self, doing: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T> PgContext<T> for Result<T, postgres::Error> {
    fn pg_context(self, doing: &str) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("{doing}: {}", describe_pg_error(&e)))
    }

    fn with_pg_context(self, doing: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("{}: {}", doing(), describe_pg_error(&e)))
    }
}
