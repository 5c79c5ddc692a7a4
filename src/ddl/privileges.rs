//! What the role needs before any index DDL is planned: CREATE INDEX, DROP
//! INDEX, ALTER INDEX and ANALYZE all need the table's owner (or a member of
//! the owning role, or a superuser), and the table's schema must be usable.
//! Checked first, so a plan is never promised that the run cannot keep.

use crate::db::PgContext;
use crate::ident::{quote_ident, quote_qualified};
use anyhow::{bail, Result};
use postgres::Client;

/// Err (exit 2) naming what is missing and the GRANT or owner that fixes it.
pub fn check(client: &mut Client, schema: &str, table: &str, command: &str) -> Result<()> {
    let qualified = quote_qualified(Some(schema), table);
    let row = client
        .query_one(
            "SELECT current_user::text, r.rolname::text, \
                    pg_has_role(current_user, c.relowner, 'USAGE'), \
                    has_schema_privilege(c.relnamespace, 'USAGE') \
             FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = to_regclass($1)",
            &[&qualified],
        )
        .pg_context("checking the role's privileges on the table")?;
    let (role, owner, owns, usage): (String, String, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let mut missing = Vec::new();
    if !owns {
        missing.push(format!(
            "{qualified} is owned by {owner}, and CREATE INDEX, DROP INDEX and ANALYZE need its owner: \
             run as {owner}, or `GRANT {} TO {};`",
            quote_ident(&owner),
            quote_ident(&role)
        ));
    }
    if !usage {
        missing.push(format!(
            "no USAGE on schema {}: `GRANT USAGE ON SCHEMA {} TO {};`",
            quote_ident(schema),
            quote_ident(schema),
            quote_ident(&role)
        ));
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "role {role} may not run {command} on {qualified}: {}; nothing was done",
        missing.join("; ")
    )
}
