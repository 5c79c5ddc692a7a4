//! o2o-db's configuration: o2o-db.toml, the environment and the global flags,
//! merged into one [`Config`] that every command reads.
//!
//! - `schema`: the file's sections, each default stated once beside its field;
//! - `resolve`: [`resolve()`], the precedence rules in one function;
//! - `diagnostics`: reading the file, mistakes reported as file:line, key and hint;
//! - `values`: durations, positive counts and percentages as the file writes them.

mod diagnostics;
mod resolve;
mod schema;
mod values;

pub use diagnostics::{load_file, parse_str};
pub use resolve::{process_env, resolve, Overrides};
pub use schema::{
    AlertSettings, BenchmarkSettings, DatabaseSection, FileConfig, IndexSettings, PoolSettings,
    VerifySection, VerifySettings, DEFAULT_APPLICATION_NAME, DEFAULT_DATABASE,
};
pub use values::HumanDuration;

use crate::conninfo::ConnInfo;
use std::path::PathBuf;

/// Everything a command needs to know, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub conn: ConnInfo,
    /// `[database] pooling`.
    pub pooling: crate::db::Pooling,
    pub pool: PoolSettings,
    pub alert: AlertSettings,
    pub indexes: IndexSettings,
    pub benchmark: BenchmarkSettings,
    pub verify: VerifySettings,
    /// The config file that was read, if any.
    pub source: Option<PathBuf>,
}

impl Config {
    /// The resolved config with no file, no environment and no flags.
    pub fn defaults() -> Config {
        resolve::build(FileConfig::default(), None, ConnInfo::default())
    }

    pub fn application_name(&self) -> &str {
        self.conn
            .application_name
            .as_deref()
            .unwrap_or(DEFAULT_APPLICATION_NAME)
    }
}
