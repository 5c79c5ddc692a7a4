//! What the role needs before any index DDL is planned: CREATE INDEX, DROP
//! INDEX, ALTER INDEX and ANALYZE all need the table's owner (or a member of
//! the owning role, or a superuser), and the table's schema must be usable;
//! CREATE INDEX also needs CREATE on the schema (PostgreSQL checks it for
//! every new index, and since version 15 PUBLIC no longer has it on public).
//! On a partitioned table the same holds for every partition (each gets its
//! own build; partitions made by pg_partman or another role's cron job may
//! have another owner or live in another schema). Checked first, so a plan is
//! never promised that the run cannot keep.

use crate::db::PgContext;
use crate::ident::{quote_ident, quote_qualified};
use anyhow::{bail, Result};
use postgres::Client;

/// What a run does to the table's indexes, and so what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ddl {
    /// create-indexes: builds (CREATE on the schema), attaches, drops, ANALYZE.
    Build,
    /// drop-indexes: drops only.
    Drop,
}

impl Ddl {
    /// The command, as messages name it.
    pub fn command(self) -> &'static str {
        match self {
            Ddl::Build => "create-indexes",
            Ddl::Drop => "drop-indexes",
        }
    }

    /// The schema privilege the run needs where the table and its partitions live.
    fn schema_privilege(self) -> &'static str {
        match self {
            Ddl::Build => "CREATE",
            Ddl::Drop => "USAGE",
        }
    }
}

/// Err (exit 2) naming what is missing and the GRANT or owner that fixes it.
pub fn check(client: &mut Client, schema: &str, table: &str, ddl: Ddl) -> Result<()> {
    let command = ddl.command();
    let qualified = quote_qualified(Some(schema), table);
    let row = client
        .query_one(
            "SELECT current_user::text, r.rolname::text, \
                    pg_has_role(current_user, c.relowner, 'USAGE'), \
                    has_schema_privilege(c.relnamespace, $2) \
             FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = to_regclass($1)",
            &[&qualified, &ddl.schema_privilege()],
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
        missing.push(schema_missing(ddl, schema, &role, ""));
    }
    missing.extend(partitions_missing(client, &qualified, schema, &role, ddl)?);
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "role {role} may not run {command} on {qualified}: {}; nothing was done",
        missing.join("; ")
    )
}

/// What the role lacks on the table's partitions (none for a plain table):
/// the partitions it does not own, by owner, and the other schemas it may not use.
fn partitions_missing(
    client: &mut Client,
    qualified: &str,
    table_schema: &str,
    role: &str,
    ddl: Ddl,
) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT c.oid::regclass::text, r.rolname::text, n.nspname::text, \
                    pg_has_role(current_user, c.relowner, 'USAGE'), \
                    has_schema_privilege(c.relnamespace, $2) \
             FROM pg_partition_tree(to_regclass($1)) t \
             JOIN pg_class c ON c.oid = t.relid \
             JOIN pg_roles r ON r.oid = c.relowner \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE t.level > 0 AND c.relkind IN ('r', 'p') \
             ORDER BY t.level, c.relname",
            &[&qualified, &ddl.schema_privilege()],
        )
        .pg_context("checking the role's privileges on the table's partitions")?;
    let mut not_owned: Vec<(String, Vec<String>)> = Vec::new();
    let mut schemas: Vec<String> = Vec::new();
    for row in &rows {
        let (partition, owner, schema, owns, usage): (String, String, String, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        if !owns {
            match not_owned.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, list)) => list.push(partition),
                None => not_owned.push((owner, vec![partition])),
            }
        }
        if !usage && schema != table_schema && !schemas.contains(&schema) {
            schemas.push(schema);
        }
    }
    let mut missing: Vec<String> = not_owned
        .into_iter()
        .map(|(owner, partitions)| {
            format!(
                "partition{} {} {} owned by {owner}, and each partition's index is built by its owner: \
                 run as {owner}, or `GRANT {} TO {};`",
                if partitions.len() == 1 { "" } else { "s" },
                partitions.join(", "),
                if partitions.len() == 1 { "is" } else { "are" },
                quote_ident(&owner),
                quote_ident(role)
            )
        })
        .collect();
    missing.extend(
        schemas
            .iter()
            .map(|schema| schema_missing(ddl, schema, role, ", where partitions live")),
    );
    Ok(missing)
}

/// "no CREATE on schema s: `GRANT CREATE ON SCHEMA s TO role;`".
fn schema_missing(ddl: Ddl, schema: &str, role: &str, where_: &str) -> String {
    let privilege = ddl.schema_privilege();
    let schema = quote_ident(schema);
    let why = match ddl {
        Ddl::Build => " (CREATE INDEX needs it)",
        Ddl::Drop => "",
    };
    format!(
        "no {privilege} on schema {schema}{where_}{why}: `GRANT {privilege} ON SCHEMA {schema} TO {};`",
        quote_ident(role)
    )
}
