//! The Nagios plugin convention (check_postgres's): one status line,
//! `O2O_DB VERIFY WARNING - 11 passed, 1 warned, 0 failed | checks=12 ...`,
//! and Nagios's own exit codes, used with `--format nagios` only.

use std::io::Write;

/// A Nagios service state; its number is the plugin's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NagiosState {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    /// The check could not run.
    Unknown = 3,
}

impl NagiosState {
    pub fn label(self) -> &'static str {
        match self {
            NagiosState::Ok => "OK",
            NagiosState::Warning => "WARNING",
            NagiosState::Critical => "CRITICAL",
            NagiosState::Unknown => "UNKNOWN",
        }
    }
}

/// What one report says to Nagios.
#[derive(Debug, Clone, PartialEq)]
pub struct NagiosCheck {
    /// VERIFY, POOL_STATUS, BENCHMARK.
    pub service: &'static str,
    pub state: NagiosState,
    pub summary: String,
    /// `label=value[UOM];warn;crit` pairs, after the `|`.
    pub perfdata: Vec<String>,
}

impl NagiosCheck {
    /// The status line, with a newline.
    pub fn write(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let summary = self.summary.replace(['\n', '|'], " ");
        write!(
            w,
            "O2O_DB {} {} - {summary}",
            self.service,
            self.state.label()
        )?;
        if !self.perfdata.is_empty() {
            write!(w, " | {}", self.perfdata.join(" "))?;
        }
        writeln!(w)
    }
}

/// A perfdata label: quoted when it holds anything but letters, digits and `_`.
pub fn label(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "''"))
    }
}

/// The line for a run that could not happen: UNKNOWN, exit 3.
pub fn unknown(service: &str, message: &str) -> String {
    format!(
        "O2O_DB {} UNKNOWN - {}",
        service.to_ascii_uppercase().replace('-', "_"),
        message.replace(['\n', '|'], " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_with_perfdata() {
        let check = NagiosCheck {
            service: "VERIFY",
            state: NagiosState::Warning,
            summary: "10 passed, 1 warned, 0 failed".into(),
            perfdata: vec!["checks=11".into(), format!("{}=1", label("idx a"))],
        };
        let mut out = Vec::new();
        check.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "O2O_DB VERIFY WARNING - 10 passed, 1 warned, 0 failed | checks=11 'idx a'=1\n"
        );
        assert_eq!(
            unknown("pool-status", "no\nserver"),
            "O2O_DB POOL_STATUS UNKNOWN - no server"
        );
        assert_eq!(NagiosState::Critical as u8, 2);
    }
}
