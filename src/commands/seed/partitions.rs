//! `seed --partition-by`: the range-partitioned orders table, what the catalog
//! says the existing table is, and the partitions the generated data needs.
//!
//! The seed always loads through the parent `orders`; PostgreSQL routes each
//! row to its partition. Here is only what makes that possible: the layout
//! checked before anything changes, and the missing partitions created.

use crate::config::Config;
use crate::db::PgContext;
use crate::ident::quote_qualified;
use crate::seed_data;
use anyhow::{bail, Result};
use postgres::GenericClient;

/// How `seed --partition-by` splits the orders table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartitionBy {
    /// A partition per calendar month: orders_2025_01 holds 2025-01-01 up to 2025-02-01.
    Month,
}

impl PartitionBy {
    /// The name as given to --partition-by.
    pub fn name(self) -> &'static str {
        match self {
            PartitionBy::Month => "month",
        }
    }
}

/// The partition key every partitioning of orders uses, as pg_get_partkeydef spells it.
const PARTITION_KEY: &str = "RANGE (date)";

/// The orders table as the catalog has it.
#[derive(Debug, Clone)]
pub struct OrdersTable {
    pub oid: u32,
    pub schema: String,
    /// `RANGE (date)` for a partitioned table (pg_get_partkeydef), None for an ordinary one.
    pub partition_key: Option<String>,
}

impl OrdersTable {
    /// The orders table the search_path finds, None when there is none.
    pub fn find(client: &mut impl GenericClient) -> Result<Option<OrdersTable>> {
        let row = client
            .query_opt(
                "SELECT c.oid, n.nspname::text, \
                        CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = to_regclass('orders')",
                &[],
            )
            .pg_context("reading the orders table from the catalog")?;
        Ok(row.map(|r| OrdersTable {
            oid: r.get(0),
            schema: r.get(1),
            partition_key: r.get(2),
        }))
    }

    pub fn partitioned(&self) -> bool {
        self.partition_key.is_some()
    }

    /// Refuses a table that `--partition-by` cannot load into, before anything changes.
    pub fn check(&self, by: Option<PartitionBy>, config: &Config) -> Result<()> {
        let Some(by) = by else {
            // An already partitioned table is loaded as it is.
            return Ok(());
        };
        let target = config.conn.target();
        match self.partition_key.as_deref() {
            None => bail!(
                "table {schema}.orders in {target} is not partitioned, so --partition-by {by} \
                 cannot load into it; drop it first (DROP TABLE {qualified}; this deletes every \
                 order) and run `o2o-db seed --create-schema --partition-by {by}`, or seed \
                 another database. Nothing was changed",
                schema = self.schema,
                qualified = quote_qualified(Some(&self.schema), "orders"),
                by = by.name()
            ),
            Some(key) if key != PARTITION_KEY => bail!(
                "table {schema}.orders in {target} is partitioned by {key}, but --partition-by \
                 {by} makes partitions of {PARTITION_KEY}; seed another database, or drop the \
                 table first. Nothing was changed",
                schema = self.schema,
                by = by.name()
            ),
            Some(_) => Ok(()),
        }
    }

    /// How many partitions the table has (the default one included), None when it is not partitioned.
    pub fn partition_count(&self, client: &mut impl GenericClient) -> Result<Option<u32>> {
        if !self.partitioned() {
            return Ok(None);
        }
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = $1",
                &[&self.oid],
            )
            .pg_context("counting the partitions of orders")?
            .get(0);
        Ok(Some(u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Creates the partitions `by` asks for that the table lacks, in its schema.
    pub fn create_partitions(
        &self,
        client: &mut impl GenericClient,
        by: PartitionBy,
    ) -> Result<()> {
        let wanted = partitions(by);
        let names: Vec<&str> = wanted.iter().map(|p| p.name.as_str()).collect();
        // A table of a partition's name that is not a partition of orders would
        // make IF NOT EXISTS skip it and its month's rows land in the default partition.
        let strays: Vec<String> = client
            .query(
                "SELECT c.relname::text FROM pg_class c \
                 WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1) \
                   AND c.relname = ANY($2) \
                   AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid AND i.inhparent = $1) \
                 ORDER BY 1",
                &[&self.oid, &names],
            )
            .pg_context("reading the partitions of orders")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !strays.is_empty() {
            let (exist, are, its, them) = match strays.len() {
                1 => ("exists", "is not a partition", "its month's", "it"),
                _ => ("exist", "are not partitions", "their months'", "them"),
            };
            bail!(
                "{} in schema {} {exist} but {are} of orders, so {its} orders would land in \
                 the default partition; rename or drop {them}, or seed another database. \
                 Nothing was changed",
                strays.join(", "),
                self.schema,
            );
        }
        for partition in &wanted {
            client
                .batch_execute(&partition.create_sql(&self.schema))
                .with_pg_context(|| format!("creating partition {}", partition.name))?;
        }
        Ok(())
    }
}

/// One range partition of orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// The first date it holds, `YYYY-MM-DD`.
    pub from: String,
    /// The first date it does not hold.
    pub to: String,
}

impl Partition {
    /// The DDL that creates it under the orders table of `schema`. The bounds
    /// are dates computed here, not input; DDL takes no bound parameters.
    pub fn create_sql(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ('{}') TO ('{}')",
            quote_qualified(Some(schema), &self.name),
            quote_qualified(Some(schema), "orders"),
            self.from,
            self.to
        )
    }
}

/// The partitions the generated data needs, oldest first (the default
/// partition comes with sql/schema_partitioned.sql).
pub fn partitions(by: PartitionBy) -> Vec<Partition> {
    match by {
        PartitionBy::Month => seed_data::months()
            .into_iter()
            .map(|(y, m)| {
                let (next_y, next_m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Partition {
                    name: format!("orders_{y:04}_{m:02}"),
                    from: format!("{y:04}-{m:02}-01"),
                    to: format!("{next_y:04}-{next_m:02}-01"),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_per_month_of_the_data() {
        let p = partitions(PartitionBy::Month);
        assert_eq!(p.len(), 13);
        assert_eq!(
            p[0],
            Partition {
                name: "orders_2024_12".into(),
                from: "2024-12-01".into(),
                to: "2025-01-01".into(),
            }
        );
        assert_eq!(p[1].name, "orders_2025_01");
        assert_eq!(p[12].to, "2026-01-01");
        // Contiguous: each starts where the one before ends.
        for w in p.windows(2) {
            assert_eq!(w[0].to, w[1].from);
        }
    }

    /// The column lines of a schema file's CREATE TABLE, comments and the primary key left out.
    fn columns(sql: &str) -> Vec<String> {
        sql.lines()
            .skip_while(|l| !l.starts_with("CREATE TABLE IF NOT EXISTS orders ("))
            .skip(1)
            .take_while(|l| !l.starts_with(')'))
            .map(|l| l.split("--").next().unwrap_or("").trim())
            .map(|l| l.trim_end_matches(',').trim_end_matches(" PRIMARY KEY"))
            .filter(|l| !l.starts_with("PRIMARY KEY"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn the_partitioned_schema_has_the_same_columns() {
        use crate::commands::seed::{SCHEMA_PARTITIONED_SQL, SCHEMA_SQL};
        let plain = columns(SCHEMA_SQL);
        assert_eq!(plain.len(), 16, "{plain:?}");
        assert_eq!(columns(SCHEMA_PARTITIONED_SQL), plain);
        assert!(SCHEMA_PARTITIONED_SQL.contains("PRIMARY KEY (order_id, date)"));
        assert!(SCHEMA_PARTITIONED_SQL.contains(") PARTITION BY RANGE (date);"));
        assert!(SCHEMA_PARTITIONED_SQL
            .contains("CREATE TABLE IF NOT EXISTS orders_default PARTITION OF orders DEFAULT;"));
    }

    #[test]
    fn the_ddl_quotes_the_schema() {
        let p = &partitions(PartitionBy::Month)[1];
        assert_eq!(
            p.create_sql("Shop \"A\""),
            "CREATE TABLE IF NOT EXISTS \"Shop \"\"A\"\"\".\"orders_2025_01\" PARTITION OF \
             \"Shop \"\"A\"\"\".\"orders\" FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')"
        );
    }
}
