//! The scoped sessions for the dashboard's services, after the V8.5 report's
//! session manager: commit on success, roll back on error or panic, and the
//! connection always goes back to the pool.

use super::error::PgContext;
use super::pool::Pool;
use anyhow::Result;
use postgres::Transaction;

/// Runs `f` in a transaction on a pooled connection: commits when `f` returns
/// Ok, rolls back when it returns Err or panics (the panic then continues).
/// The connection always goes back to the pool; a broken one is discarded.
///
/// ```no_run
/// # fn demo(pool: &o2o_db::db::Pool) -> anyhow::Result<()> {
/// let n: i64 = o2o_db::db::with_session(pool, |tx| {
///     tx.execute("UPDATE orders SET scene = $1 WHERE order_id = $2", &[&"堂食", &1i64])?;
///     Ok(tx.query_one("SELECT count(*) FROM orders", &[])?.get(0))
/// })?;
/// # Ok(()) }
/// ```
pub fn with_session<T>(
    pool: &Pool,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut conn = pool.get()?;
    let mut tx = conn.transaction().pg_context("cannot begin transaction")?;
    let value = f(&mut tx)?; // Err: `tx` drops here and rolls back
    tx.commit().pg_context("commit failed")?;
    Ok(value)
}

/// Like `with_session`, in a READ ONLY transaction: the server itself refuses
/// writes, whatever the closure tries.
pub fn with_readonly_session<T>(
    pool: &Pool,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut conn = pool.get()?;
    let mut tx = conn
        .build_transaction()
        .read_only(true)
        .start()
        .pg_context("cannot begin read-only transaction")?;
    let value = f(&mut tx)?;
    tx.commit()
        .pg_context("ending read-only transaction failed")?;
    Ok(value)
}
