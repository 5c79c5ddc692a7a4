// The SQL files o2o-db manages, parsed without a database: the index set
// (sql/indexes.sql) and the benchmark suite (sql/benchmark.sql). Both are
// compiled in as defaults and can be replaced by a file given by flag or
// config; parse errors name the file and line.

pub mod indexes;
pub mod queries;
pub mod shape;
mod split;

pub use indexes::{IndexSet, IndexSpec};
pub use queries::{QuerySpec, QuerySuite};
pub use split::{split_statements, Statement};

use anyhow::{Context, Result};
use std::path::Path;

/// Reads a SQL file as UTF-8, naming the file and line of the first bad byte.
pub fn read_sql_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        anyhow::anyhow!(
            "{}:{line}: not valid UTF-8; save the file as UTF-8",
            path.display()
        )
    })
}
