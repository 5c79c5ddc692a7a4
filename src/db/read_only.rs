//! Every suite query (benchmark, verify's planner and speed checks, the
//! `-- params:` queries) runs inside a READ ONLY transaction that is rolled
//! back afterwards, so the server itself refuses a write whatever the text
//! looks like: a data-modifying WITH, `SELECT ... FOR UPDATE`, a function that
//! writes. A refusal stops the command (exit 2) naming the suite file and line.

use crate::db::describe_pg_error;
use postgres::error::SqlState;
use postgres::{Client, Transaction};

/// Runs `f` in a READ ONLY transaction on `client` and rolls it back.
///
/// `START TRANSACTION READ ONLY` is one round trip and the rollback another;
/// callers time only what `f` does.
pub fn run<T>(
    client: &mut Client,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    let mut tx = client.build_transaction().read_only(true).start()?;
    let value = f(&mut tx);
    // Nothing a suite query does is kept; on error the transaction is already
    // aborted and the rollback only ends it.
    let ended = tx.rollback();
    let value = value?;
    ended?;
    Ok(value)
}

/// True when the server refused `e` because the transaction is read-only.
pub fn is_refusal(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
}

/// A suite query the server would not run read-only: it writes.
#[derive(Debug)]
pub struct WritingQuery {
    /// `file:line` of the query.
    pub at: String,
    pub name: String,
    /// The server's message.
    pub message: String,
}

impl std::fmt::Display for WritingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: query {} writes, and the suite must only read: the server refused it in a READ ONLY \
             transaction ({}); nothing was changed. Remove the write (a data-modifying WITH, \
             SELECT ... FOR UPDATE/SHARE, a function that writes) from the suite",
            self.at, self.name, self.message
        )
    }
}

impl std::error::Error for WritingQuery {}

/// `Some` error that stops the command when `e` is a read-only refusal.
pub fn refusal(e: &postgres::Error, at: &str, name: &str) -> Option<anyhow::Error> {
    is_refusal(e).then(|| {
        anyhow::Error::new(WritingQuery {
            at: at.to_string(),
            name: name.to_string(),
            message: describe_pg_error(e),
        })
    })
}

/// True when `err` (anywhere in its chain) is a [`WritingQuery`].
pub fn is_writing_query(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<WritingQuery>())
}
