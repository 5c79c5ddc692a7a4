//! The speed check's limits: the --max-ms threshold a query's median must
//! stay under, and the statement timeout that bounds each timed run (derived
//! from the threshold unless set), refused when it would cancel a query the
//! threshold passes.

use crate::config::Config;
use anyhow::{bail, Result};
use std::time::Duration;

/// clap's parser of --max-ms.
pub fn parse_max_ms(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| valid_max_ms(*v))
        .ok_or_else(|| format!("`{s}` is not a positive number of milliseconds, e.g. 100 or 12.5"))
}

/// Whether `v` can be the threshold: a positive number of milliseconds.
pub fn valid_max_ms(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// The speed check's default bound on one timed run: this many times its threshold...
pub const SPEED_TIMEOUT_FACTOR: f64 = 10.0;
/// ...and never less than this, so a tight threshold still leaves a run room to finish.
pub const SPEED_TIMEOUT_FLOOR: Duration = Duration::from_secs(1);

/// The statement timeout of each of the speed check's timed runs: the flag,
/// else [verify] statement_timeout, else SPEED_TIMEOUT_FACTOR x `max_ms`
/// (at least SPEED_TIMEOUT_FLOOR). A bound at or under the threshold would
/// fail queries the threshold passes: refused.
pub fn speed_timeout(flag: Option<Duration>, config: &Config, max_ms: f64) -> Result<Duration> {
    let chosen = flag.or(config.verify.statement_timeout);
    let Some(timeout) = chosen else {
        let ms = max_ms * SPEED_TIMEOUT_FACTOR;
        // PostgreSQL takes at most i32::MAX ms; an odd threshold gets the floor.
        let derived = if ms.is_finite() && ms > 0.0 {
            Duration::from_millis(ms.min(f64::from(i32::MAX)) as u64)
        } else {
            SPEED_TIMEOUT_FLOOR
        };
        return Ok(derived.max(SPEED_TIMEOUT_FLOOR));
    };
    if timeout.as_secs_f64() * 1000.0 <= max_ms {
        let from = if flag.is_some() {
            "--statement-timeout"
        } else {
            "[verify] statement_timeout"
        };
        bail!(
            "{from} {} must be longer than the speed threshold of {max_ms} ms, or every query \
             the threshold passes could be cancelled; raise it or leave it out (default {}x the threshold)",
            humantime::format_duration(timeout),
            SPEED_TIMEOUT_FACTOR
        );
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_speed_timeout_is_a_multiple_of_the_threshold_with_a_floor() {
        let mut config = Config::defaults();
        let secs = |d: Duration| d.as_secs_f64();
        assert_eq!(secs(speed_timeout(None, &config, 100.0).unwrap()), 1.0);
        assert_eq!(secs(speed_timeout(None, &config, 250.0).unwrap()), 2.5);
        assert_eq!(secs(speed_timeout(None, &config, 5.0).unwrap()), 1.0);
        assert_eq!(secs(speed_timeout(None, &config, f64::NAN).unwrap()), 1.0);
        config.verify.statement_timeout = Some(Duration::from_secs(30));
        assert_eq!(secs(speed_timeout(None, &config, 100.0).unwrap()), 30.0);
        let flag = Some(Duration::from_millis(1500));
        assert_eq!(secs(speed_timeout(flag, &config, 100.0).unwrap()), 1.5);
        let err = speed_timeout(Some(Duration::from_millis(50)), &config, 100.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "--statement-timeout 50ms must be longer than the speed threshold of 100 ms"
            ),
            "{err}"
        );
        let err = speed_timeout(None, &config, 30_000.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[verify] statement_timeout 30s must be longer"),
            "{err}"
        );
    }
}
