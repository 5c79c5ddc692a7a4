//! The SQL files o2o-db manages, parsed without a database: the index set
//! (sql/indexes.sql) and the benchmark suite (sql/benchmark.sql). Both are
//! compiled in as defaults and can be replaced by a file given by flag or
//! config; parse errors name the file and line.

pub mod indexes;
pub mod names;
pub mod queries;
pub mod shape;
mod split;
mod tokens;

pub use indexes::{IndexSet, IndexSpec};
pub use queries::{QuerySpec, QuerySuite};
pub use split::{split_statements, Statement};

use anyhow::Result;
use std::path::Path;

/// Reads a SQL file as UTF-8, naming the file and line of the first bad byte.
pub fn read_sql_file(path: &Path) -> Result<String> {
    crate::text_file::read_utf8(path, "SQL file")
}

/// `file` parsed, with its path as the origin; without one, the built-in file.
fn load_or_builtin<T>(
    file: Option<&Path>,
    builtin: fn() -> Result<T>,
    parse: fn(&str, &str) -> Result<T>,
) -> Result<T> {
    match file {
        Some(path) => parse(&read_sql_file(path)?, &path.display().to_string()),
        None => builtin(),
    }
}
