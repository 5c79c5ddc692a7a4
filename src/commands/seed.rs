//! `o2o-db seed`: loads synthetic orders for tests, the demo and benchmarks.
//!
//! Rows stream from the generator straight into a binary COPY, so memory stays
//! flat at any row count and the server, not the client, sets the pace.
//! With `--partition-by` the table is range-partitioned (see `partitions`) and
//! the rows still go through the parent `orders`.

use crate::config::Config;
use crate::db::PgContext;
use crate::db::{self, describe_pg_error};
use crate::ident::quote_ident;
use crate::report::{self, Outcome, Report};
use crate::seed_data::{self, Generator};
use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, BytesMut};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::Client;
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

pub mod partitions;
pub use partitions::{OrdersTable, PartitionBy};

/// The orders table's DDL, compiled in.
pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");

/// The range-partitioned orders table's DDL (`--partition-by`), compiled in:
/// the parent and its default partition; the seed adds the monthly ones.
pub const SCHEMA_PARTITIONED_SQL: &str = include_str!("../../sql/schema_partitioned.sql");

#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// How many orders to load
    #[arg(long, default_value_t = seed_data::DEFAULT_ORDERS)]
    pub orders: u64,

    /// How many stores the orders are spread over
    #[arg(long, default_value_t = seed_data::DEFAULT_STORES, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub stores: u32,

    /// Random seed: the same seed gives the same orders
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Create the database (if missing) and the orders table (sql/schema.sql) first
    #[arg(long)]
    pub create_schema: bool,

    /// Range-partition the orders table on date and load through the parent: a partition
    /// for each month of the data (13 for its year of dates) and a default one. With
    /// --create-schema it creates the table (sql/schema_partitioned.sql); on a partitioned
    /// table it adds the missing months. An unpartitioned orders table is refused (drop it or
    /// seed another database)
    ///
    /// Example: o2o-db seed --create-schema --partition-by month
    #[arg(long, value_enum, value_name = "BY")]
    pub partition_by: Option<PartitionBy>,

    /// Empty the orders table first; without it, a table that already has rows is refused
    #[arg(long)]
    pub truncate: bool,

    /// Skip the VACUUM ANALYZE after loading
    #[arg(long)]
    pub no_analyze: bool,
}

crate::cli::clap_default!(SeedArgs);

#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub database: String,
    pub table: String,
    /// The table's partitions, the default one included; None for an unpartitioned table.
    pub partitions: Option<u32>,
    pub orders: u64,
    pub stores: u32,
    pub seed: u64,
    pub duration_ms: f64,
    pub rows_per_second: f64,
    pub table_bytes: i64,
}

impl Report for SeedReport {
    fn render_table(&self, w: &mut dyn Write) -> Result<()> {
        let partitions = match self.partitions {
            Some(1) => " (1 partition)".to_string(),
            Some(n) => format!(" ({n} partitions)"),
            None => String::new(),
        };
        writeln!(
            w,
            "seeded {} orders across {} stores into {}.{}{} in {:.2} s ({:.0} rows/s, seed {}); table size {}",
            self.orders,
            self.stores,
            self.database,
            self.table,
            partitions,
            self.duration_ms / 1000.0,
            self.rows_per_second,
            self.seed,
            report::size_pretty(self.table_bytes)
        )?;
        Ok(())
    }

    fn outcome(&self) -> Outcome {
        Outcome::Clean
    }
}

pub fn run(config: &Config, args: &SeedArgs) -> Result<SeedReport> {
    if args.create_schema {
        create_database_if_missing(config)?;
    }
    let mut client = db::connect(&config.conn)?;
    if args.create_schema {
        create_schema(&mut client, config, args.partition_by)?;
    }
    load(&mut client, config, args)
}

/// Creates the orders table when it is missing: sql/schema.sql, or with
/// `partition_by` sql/schema_partitioned.sql. An existing table is left as it
/// is, but one `partition_by` cannot load into is refused before any change.
pub fn create_schema(
    client: &mut Client,
    config: &Config,
    partition_by: Option<PartitionBy>,
) -> Result<()> {
    if let Some(table) = OrdersTable::find(client)? {
        table.check(partition_by, config)?;
    }
    let (sql, what) = match partition_by {
        None => (SCHEMA_SQL, "creating the orders table"),
        Some(_) => (
            SCHEMA_PARTITIONED_SQL,
            "creating the partitioned orders table",
        ),
    };
    client.batch_execute(sql).pg_context(what)
}

/// Loads orders on an open connection; with `--partition-by` it first creates
/// the partitions the orders need, in the load's transaction.
pub fn load(client: &mut Client, config: &Config, args: &SeedArgs) -> Result<SeedReport> {
    let table = "orders";
    // The table's kind first: a table --partition-by cannot load into is
    // refused whether or not it has rows.
    let Some(orders) = OrdersTable::find(client)? else {
        bail!(
            "table orders does not exist in {}; run `o2o-db seed --create-schema{}` to create it",
            config.conn.target(),
            args.partition_by
                .map(|by| format!(" --partition-by {}", by.name()))
                .unwrap_or_default()
        );
    };
    orders.check(args.partition_by, config)?;
    let existing: i64 = client
        .query_one("SELECT count(*) FROM (SELECT 1 FROM orders LIMIT 1) t", &[])
        .map_err(|e| anyhow!("reading orders: {}", describe_pg_error(&e)))?
        .get(0);
    if existing > 0 && !args.truncate {
        bail!(
            "table orders in {} already has rows; pass --truncate to replace them (this deletes every order)",
            config.conn.target()
        );
    }
    let started = Instant::now();
    let mut tx = client.transaction()?;
    if args.truncate {
        tx.batch_execute("TRUNCATE orders RESTART IDENTITY")?;
    }
    if let Some(by) = args.partition_by {
        orders.create_partitions(&mut tx, by)?;
    }
    let sink = tx
        .copy_in(
            "COPY orders (order_id, order_no, date, order_time, store_name, channel, product_name, \
             category_l1, category_l2, scene, time_period, quantity, unit_price, amount, cost, profit) \
             FROM STDIN (FORMAT binary)",
        )
        .pg_context("starting COPY into orders")?;
    let copy_failed = copy_failed_context(&orders, args.partition_by);
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::DATE,
        Type::TIMESTAMP,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut generator = Generator::new(args.seed, args.stores);
    let bar = report::progress_bar(args.orders, "seeding orders");
    for id in 1..=args.orders as i64 {
        let o = generator.next_order(id);
        writer
            .write(&[
                &o.order_id,
                &o.order_no,
                &PgDate(o.date),
                &PgTimestamp(o.order_time),
                &o.store_name,
                &o.channel,
                &o.product_name,
                &o.category_l1,
                &o.category_l2,
                &o.scene,
                &o.time_period,
                &o.quantity,
                &Cents(o.unit_price),
                &Cents(o.amount),
                &Cents(o.cost),
                &Cents(o.profit),
            ])
            .pg_context(&copy_failed)?;
        if id % 8192 == 0 {
            bar.set_position(id as u64);
        }
    }
    writer.finish().pg_context(&copy_failed)?;
    // Explicit ids skip the identity sequence: move it past them for later inserts.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('orders', 'order_id'), greatest((SELECT max(order_id) FROM orders), 1))",
        &[],
    )?;
    tx.commit().pg_context("committing the loaded orders")?;
    bar.finish_and_clear();
    if !args.no_analyze {
        flush_table_counters(client)?;
        // On a partitioned table this vacuums and analyzes each partition and
        // analyzes the parent as well (its statistics of the whole tree).
        client
            .batch_execute("VACUUM (ANALYZE) orders")
            .pg_context("VACUUM (ANALYZE) orders")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A partitioned parent has no storage of its own: its size is its partitions'.
    let table_bytes: i64 = client
        .query_one(
            "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))::bigint \
                              FROM pg_partition_tree('orders')), \
                             pg_total_relation_size('orders'))",
            &[],
        )
        .pg_context("reading the size of orders")?
        .get(0);
    let partitions = orders.partition_count(client)?;
    Ok(SeedReport {
        database: config.conn.dbname.clone().unwrap_or_default(),
        table: table.into(),
        partitions,
        orders: args.orders,
        stores: args.stores,
        seed: args.seed,
        duration_ms: elapsed * 1000.0,
        rows_per_second: args.orders as f64 / elapsed.max(1e-9),
        table_bytes,
    })
}

/// What a failed COPY says it was doing; on a partitioned table without
/// `--partition-by`, a row no partition takes fails it, so it says what would.
fn copy_failed_context(orders: &OrdersTable, partition_by: Option<PartitionBy>) -> String {
    match (orders.partitioned(), partition_by) {
        (true, None) => format!(
            "COPY into orders failed (the table is partitioned: when no partition takes a row, \
             `--partition-by {}` adds one for each month of the orders)",
            PartitionBy::Month.name()
        ),
        _ => "COPY into orders failed".into(),
    }
}

/// Makes the server count the loaded rows before ANALYZE resets the count.
///
/// A backend reports its table counters (rows inserted, n_mod_since_analyze)
/// after the transaction ends, and PostgreSQL 15 at most once a second, when
/// the session goes idle. Loaded in under a second, the rows were counted
/// after the ANALYZE that followed, so verify saw 100% modified since ANALYZE.
/// pg_stat_force_next_flush() (15+) makes the flush happen when this statement
/// ends, before the server answers; older servers send the counters to their
/// stats collector at most every 500 ms, so wait that long and go idle once.
fn flush_table_counters(client: &mut Client) -> Result<()> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .pg_context("reading the server version")?
        .get(0);
    let flush = if version >= 150000 {
        "SELECT pg_stat_force_next_flush()"
    } else {
        std::thread::sleep(std::time::Duration::from_millis(600));
        "SELECT 1"
    };
    client
        .batch_execute(flush)
        .pg_context("reporting the load to the statistics")
}

/// Creates the configured database through the `postgres` maintenance database when it is missing.
fn create_database_if_missing(config: &Config) -> Result<()> {
    let Some(name) = config.conn.dbname.clone() else {
        return Ok(());
    };
    let mut maintenance = config.conn.clone();
    maintenance.dbname = Some("postgres".into());
    let mut client = match db::connect(&maintenance) {
        Ok(c) => c,
        // No access to the maintenance database: assume the target exists; connecting says if not.
        Err(_) => return Ok(()),
    };
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .with_pg_context(|| format!("creating database {name}"))
            .context("create it yourself (createdb) or connect as a user allowed to")?;
        report::notice(&format!("created database {name}"));
    }
    Ok(())
}

// Binary wire encodings for the column types the seed writes. The postgres
// crate needs extra date/decimal crates for these; three small encoders do.

/// A DATE: days since 2000-01-01.
#[derive(Debug)]
struct PgDate(i32);

/// A TIMESTAMP: microseconds since 2000-01-01 00:00.
#[derive(Debug)]
struct PgTimestamp(i64);

/// A NUMERIC with two decimals, from an amount in cents.
#[derive(Debug)]
struct Cents(i64);

type EncodeResult = std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>>;

impl ToSql for PgDate {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> EncodeResult {
        out.put_i32(self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }
    to_sql_checked!();
}

impl ToSql for PgTimestamp {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> EncodeResult {
        out.put_i64(self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }
    to_sql_checked!();
}

impl ToSql for Cents {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> EncodeResult {
        // NUMERIC on the wire: ndigits, weight, sign, dscale, then base-10000 digits.
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / 100, (abs % 100) as i16 * 100);
        let mut groups = Vec::new();
        let mut w = whole;
        while w > 0 {
            groups.push((w % 10_000) as i16);
            w /= 10_000;
        }
        groups.reverse();
        let weight = groups.len() as i16 - 1;
        if frac != 0 {
            groups.push(frac);
        }
        while groups.last() == Some(&0) {
            groups.pop();
        }
        let weight = if groups.is_empty() { 0 } else { weight };
        out.put_i16(groups.len() as i16);
        out.put_i16(weight);
        out.put_u16(if self.0 < 0 { 0x4000 } else { 0 });
        out.put_u16(2);
        for g in groups {
            out.put_i16(g);
        }
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
    to_sql_checked!();
}

#[cfg(test)]
mod snapshot_tests;
