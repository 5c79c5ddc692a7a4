//! What a run found, kept apart from how it is shown: main turns it into the
//! exit code, and commands that run several steps combine theirs with `and`.

use super::nagios::NagiosState;

/// What a run found; main turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is as it should be: exit 0.
    Clean,
    /// The tool ran and found a problem: exit 1.
    Findings,
    /// Stopped by a signal after reporting what was done: exit 128 + the
    /// signal (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
    Interrupted,
    /// `--format nagios`: the plugin's own exit code (0, 1, 2, 3).
    Nagios(NagiosState),
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Findings => 1,
            // 128 + the signal that stopped the run: 130 for Ctrl-C, 143 for SIGTERM.
            Outcome::Interrupted => crate::stop::exit_code(),
            Outcome::Nagios(state) => state as u8,
        }
    }

    /// The worse of two outcomes.
    pub fn and(self, other: Outcome) -> Outcome {
        use Outcome::*;
        match (self, other) {
            (Interrupted, _) | (_, Interrupted) => Interrupted,
            (Nagios(a), Nagios(b)) => Nagios(a.max(b)),
            (Nagios(a), _) | (_, Nagios(a)) => Nagios(a),
            (Findings, _) | (_, Findings) => Findings,
            _ => Clean,
        }
    }

    pub fn from_findings(found: bool) -> Outcome {
        if found {
            Outcome::Findings
        } else {
            Outcome::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome::{self, *};

    #[test]
    fn the_worse_outcome_wins_and_maps_to_its_exit_code() {
        let all = [Clean, Findings, Interrupted];
        for a in all {
            for b in all {
                let worse = if a == Interrupted || b == Interrupted {
                    Interrupted
                } else if a == Findings || b == Findings {
                    Findings
                } else {
                    Clean
                };
                assert_eq!(a.and(b), worse, "{a:?} and {b:?}");
            }
        }
        let codes: Vec<u8> = all.iter().map(|o| o.exit_code()).collect();
        assert_eq!(
            codes,
            [0, 1, 130],
            "no signal recorded: Interrupted is 130, as for Ctrl-C"
        );
        assert_eq!(Outcome::from_findings(true), Findings);
        assert_eq!(Outcome::from_findings(false), Clean);
    }
}
