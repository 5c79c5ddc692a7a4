//! Reading a file the user wrote (config, index set, query suite) as UTF-8,
//! so a stray Latin-1 byte is reported with the file and line, not a panic or
//! a garbled name.

use anyhow::{Context, Result};
use std::path::Path;

/// The text of `path`; `kind` ("config file", "SQL file") names it in messages.
pub(crate) fn read_utf8(path: &Path, kind: &str) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {kind} {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        anyhow::anyhow!(
            "{}:{line}: the {kind} is not valid UTF-8; save it as UTF-8",
            path.display()
        )
    })
}
