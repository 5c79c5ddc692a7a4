//! The value types of o2o-db.toml that TOML has no word for: human durations
//! ("30s", "1h"), counts that must be positive and percentages.
//!
//! Each check's message is what the user reads after "file:line: `key`:", so
//! it says what was wrong and how to write it instead.

use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// A positive duration written the human way: "30s", "1h", "500ms".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl HumanDuration {
    /// `secs` seconds, for defaults written as code.
    pub const fn secs(secs: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(secs))
    }

    pub fn parse(s: &str) -> Result<HumanDuration> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            anyhow::anyhow!("invalid duration `{s}`: {e}; write it like \"30s\", \"5m\" or \"1h\"")
        })?;
        if d.is_zero() {
            bail!("duration `{s}` must be greater than zero");
        }
        Ok(HumanDuration(d))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        HumanDuration::parse(s)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A human duration read into a plain `Duration` field.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    HumanDuration::deserialize(d).map(|h| h.0)
}

/// A human duration read into an `Option<Duration>` field (absent: `None`).
pub(super) fn some_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A count of 1 or more read into a plain `u32` field.
pub(super) fn nonzero<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    NonZeroU32::deserialize(d).map(NonZeroU32::get)
}

/// A percentage above 0 and at most 100.
pub(super) fn percent<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(serde::de::Error::custom(format!(
            "percentage {v} is out of range: use a number above 0 and at most 100"
        )));
    }
    Ok(v)
}
