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
    AlertSettings, BenchmarkSettings, DatabaseSection, FileConfig, IndexSettings, NodeRole,
    PoolSettings, TargetSection, VerifySection, VerifySettings, DEFAULT_APPLICATION_NAME,
    DEFAULT_DATABASE,
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
    /// `[[targets]]`, resolved: the nodes of the fleet.
    pub targets: Vec<FleetTarget>,
    /// The admin console of the pgbouncer this config points at, when its
    /// target names one (`admin_url`): pool-status reads it without --pgbouncer.
    pub pgbouncer_admin: Option<ConnInfo>,
}

/// One node of the fleet, its connection completed like the main one.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetTarget {
    pub name: String,
    /// What it is meant to be.
    pub role: NodeRole,
    pub conn: ConnInfo,
    /// pgbouncer: its admin console.
    pub admin: Option<ConnInfo>,
    pub pooling: crate::db::Pooling,
}

impl Config {
    /// The resolved config with no file, no environment and no flags.
    pub fn defaults() -> Config {
        resolve::build(FileConfig::default(), None, ConnInfo::default())
    }

    /// The config as it applies to the target `name`: its connection and pooling.
    pub fn for_target(&self, name: &str) -> anyhow::Result<Config> {
        let Some(target) = self.targets.iter().find(|t| t.name == name) else {
            let names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
            let near = names
                .iter()
                .copied()
                .filter(|n| strsim::jaro_winkler(n, name) > 0.8)
                .max_by(|a, b| {
                    strsim::jaro_winkler(a, name).total_cmp(&strsim::jaro_winkler(b, name))
                });
            let file = self
                .source
                .as_deref()
                .map_or("the config".to_string(), |p| p.display().to_string());
            anyhow::bail!(
                "no target named `{name}` in {file}{}; {}",
                near.map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default(),
                if names.is_empty() {
                    "add a [[targets]] section with name, url and role".to_string()
                } else {
                    format!("its targets are {}", names.join(", "))
                }
            );
        };
        Ok(self.on(target))
    }

    /// This config pointed at `target`.
    pub fn on(&self, target: &FleetTarget) -> Config {
        Config {
            conn: target.conn.clone(),
            pooling: target.pooling,
            pgbouncer_admin: target.admin.clone(),
            ..self.clone()
        }
    }

    pub fn application_name(&self) -> &str {
        self.conn
            .application_name
            .as_deref()
            .unwrap_or(DEFAULT_APPLICATION_NAME)
    }
}
