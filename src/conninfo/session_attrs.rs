//! libpq 14's `target_session_attrs`: which of several hosts a session may
//! settle on. The postgres crate knows only any, read-write and read-only, so
//! o2o-db reads the keyword itself and `db::connect` checks each host's role
//! after connecting, host by host, as libpq does.

use anyhow::{bail, Result};

/// The values libpq 14+ accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionAttrs {
    /// The first host that accepts the connection.
    #[default]
    Any,
    /// A session that accepts writes (`transaction_read_only` off).
    ReadWrite,
    /// A session that does not (`transaction_read_only` on).
    ReadOnly,
    /// A server not in recovery.
    Primary,
    /// A hot standby (`pg_is_in_recovery()`).
    Standby,
    /// A standby when one of the hosts is one, else any host.
    PreferStandby,
}

/// What one role check asks a freshly connected session, and the answer it must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleCheck {
    /// `SHOW transaction_read_only` must be on (true) or off (false).
    ReadOnly(bool),
    /// `SELECT pg_is_in_recovery()` must be true or false.
    Standby(bool),
}

impl SessionAttrs {
    pub fn parse(s: &str) -> Result<SessionAttrs> {
        Ok(match s {
            "any" => SessionAttrs::Any,
            "read-write" => SessionAttrs::ReadWrite,
            "read-only" => SessionAttrs::ReadOnly,
            "primary" => SessionAttrs::Primary,
            "standby" => SessionAttrs::Standby,
            "prefer-standby" => SessionAttrs::PreferStandby,
            other => bail!(
                "invalid target_session_attrs `{other}`: use any, read-write, read-only, primary, standby or prefer-standby"
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::ReadOnly => "read-only",
            SessionAttrs::Primary => "primary",
            SessionAttrs::Standby => "standby",
            SessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// The check a host must pass to be kept; None: any host that answers.
    /// prefer-standby asks for a standby first; a host that fails it is
    /// still a fallback (see `falls_back`).
    pub fn check(self) -> Option<RoleCheck> {
        match self {
            SessionAttrs::Any => None,
            SessionAttrs::ReadWrite => Some(RoleCheck::ReadOnly(false)),
            SessionAttrs::ReadOnly => Some(RoleCheck::ReadOnly(true)),
            SessionAttrs::Primary => Some(RoleCheck::Standby(false)),
            SessionAttrs::Standby | SessionAttrs::PreferStandby => Some(RoleCheck::Standby(true)),
        }
    }

    /// Whether a host that answers but fails the check may still be used
    /// when no host passes it (libpq's second pass of prefer-standby).
    pub fn falls_back(self) -> bool {
        self == SessionAttrs::PreferStandby
    }
}

impl std::fmt::Display for SessionAttrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RoleCheck {
    /// The query that answers it: simple protocol text, so it also works
    /// through a pooler that cannot keep prepared statements.
    pub fn query(self) -> &'static str {
        match self {
            RoleCheck::ReadOnly(_) => "SHOW transaction_read_only",
            RoleCheck::Standby(_) => "SELECT pg_is_in_recovery()",
        }
    }

    /// Why the host at `endpoint`, which answered `answer` to `query()`,
    /// does not pass; None when it does.
    pub fn rejects(self, endpoint: &str, answer: &str) -> Option<String> {
        let yes = matches!(answer, "on" | "t" | "true");
        let (wanted, what) = match self {
            RoleCheck::ReadOnly(wanted) => (
                wanted,
                if yes {
                    "is read-only (transaction_read_only = on)"
                } else {
                    "accepts writes (transaction_read_only = off)"
                },
            ),
            RoleCheck::Standby(wanted) => (
                wanted,
                if yes {
                    "is a standby (pg_is_in_recovery)"
                } else {
                    "is a primary (not in recovery)"
                },
            ),
        };
        (yes != wanted).then(|| format!("{endpoint} {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SessionAttrs; 6] = [
        SessionAttrs::Any,
        SessionAttrs::ReadWrite,
        SessionAttrs::ReadOnly,
        SessionAttrs::Primary,
        SessionAttrs::Standby,
        SessionAttrs::PreferStandby,
    ];

    #[test]
    fn every_libpq_value_parses_back_to_itself() {
        for attrs in ALL {
            assert_eq!(SessionAttrs::parse(attrs.as_str()).unwrap(), attrs);
        }
        let err = SessionAttrs::parse("master").unwrap_err().to_string();
        assert!(
            err.contains("`master`") && err.contains("prefer-standby"),
            "{err}"
        );
    }

    #[test]
    fn each_value_keeps_the_hosts_libpq_keeps() {
        // (attrs, the host's answer to the check's query, kept?)
        let standby = |attrs: SessionAttrs| {
            attrs
                .check()
                .is_none_or(|c| c.rejects("h:1", c.answer_of_a_standby()).is_none())
        };
        let primary = |attrs: SessionAttrs| {
            attrs
                .check()
                .is_none_or(|c| c.rejects("h:1", c.answer_of_a_primary()).is_none())
        };
        let kept: Vec<(bool, bool)> = ALL.iter().map(|a| (primary(*a), standby(*a))).collect();
        assert_eq!(
            kept,
            [
                (true, true),  // any
                (true, false), // read-write
                (false, true), // read-only
                (true, false), // primary
                (false, true), // standby
                (false, true), // prefer-standby: first pass
            ]
        );
        assert!(SessionAttrs::PreferStandby.falls_back());
        assert!(!SessionAttrs::Standby.falls_back());
    }

    #[test]
    fn a_rejection_names_the_host_and_what_it_is() {
        let check = SessionAttrs::Primary.check().unwrap();
        assert_eq!(
            check.rejects("127.0.0.1:26401", "t").as_deref(),
            Some("127.0.0.1:26401 is a standby (pg_is_in_recovery)")
        );
        let check = SessionAttrs::ReadWrite.check().unwrap();
        assert_eq!(
            check.rejects("db2:5432", "on").as_deref(),
            Some("db2:5432 is read-only (transaction_read_only = on)")
        );
    }

    impl RoleCheck {
        fn answer_of_a_standby(self) -> &'static str {
            match self {
                RoleCheck::ReadOnly(_) => "on",
                RoleCheck::Standby(_) => "t",
            }
        }

        fn answer_of_a_primary(self) -> &'static str {
            match self {
                RoleCheck::ReadOnly(_) => "off",
                RoleCheck::Standby(_) => "f",
            }
        }
    }
}
