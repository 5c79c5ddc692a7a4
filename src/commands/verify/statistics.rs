//! statistics: the planner can only choose the indexes well when the table's
//! statistics exist and are recent; a table never analyzed, or changed a lot
//! since, is why "the index is there but the query is still slow".

use super::context::Ctx;
use super::Verdict;
use anyhow::Result;
use postgres::types::Type;

/// What pg_stat_user_tables and pg_class say about the table's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStats {
    pub table: String,
    /// Seconds since the last ANALYZE or autoanalyze; None: never analyzed.
    pub analyzed_secs_ago: Option<f64>,
    /// "manual" or "autovacuum": who ran the last one.
    pub analyzed_by: &'static str,
    pub has_rows: bool,
    /// Rows per pg_class.reltuples (the planner's count), or the live-tuple count when never analyzed.
    pub rows: f64,
    pub modified_since: i64,
    /// On a hot standby, what replicates from the primary while ANALYZE
    /// times and change counters (per node, empty there) do not. None on a primary.
    pub standby: Option<Replicated>,
}

/// A standby's planner statistics: the catalog rows replay brings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replicated {
    /// pg_class.reltuples: -1 until the primary first analyzes or vacuums the table.
    pub reltuples: f64,
    /// Columns with pg_statistic rows (through pg_stats).
    pub columns: i64,
}

impl TableStats {
    pub fn verdict(&self, modified_percent: f64, fix_sql: &str) -> Verdict {
        if let Some(Replicated { reltuples, columns }) = self.standby {
            if !self.has_rows {
                return Verdict::pass(format!(
                    "{} on a hot standby is empty: nothing to analyze yet",
                    self.table
                ));
            }
            if reltuples >= 0.0 && columns > 0 {
                return Verdict::pass(format!(
                    "{} on a hot standby: {reltuples:.0} rows per pg_class.reltuples and planner statistics for {columns} columns, \
                     replicated from the primary (when ANALYZE ran and what changed since are counted on the primary: run verify there)",
                    self.table
                ));
            }
            let missing = if reltuples < 0.0 {
                "pg_class.reltuples is -1 (never analyzed or vacuumed on the primary)"
            } else {
                "no column has pg_statistic rows"
            };
            return Verdict::fail(
                format!(
                    "{} on a hot standby has no planner statistics replicated from the primary: {missing}",
                    self.table
                ),
                format!("{fix_sql}  -- on the primary: ANALYZE cannot run on a standby, its statistics replicate"),
            );
        }
        let Some(ago) = self.analyzed_secs_ago else {
            if !self.has_rows {
                return Verdict::pass(format!("{} is empty: nothing to analyze yet", self.table));
            }
            return Verdict::fail(
                format!(
                    "{} has never been analyzed: the planner guesses its row counts ({} rows changed, autovacuum has not caught up or is off for it)",
                    self.table, self.modified_since
                ),
                fix_sql,
            );
        };
        let share = if self.rows > 0.0 {
            100.0 * self.modified_since as f64 / self.rows
        } else if self.modified_since > 0 {
            100.0
        } else {
            0.0
        };
        let detail = format!(
            "{} analyzed {} ago ({}): {:.0} rows, {} modified since ({share:.1}%, limit {modified_percent}%)",
            self.table,
            humantime::format_duration(std::time::Duration::from_secs(ago.max(0.0) as u64)),
            self.analyzed_by,
            self.rows.max(0.0),
            self.modified_since
        );
        if share > modified_percent {
            return Verdict::warn(detail, fix_sql);
        }
        Verdict::pass(detail)
    }
}

pub fn statistics(ctx: &mut Ctx) -> Result<Verdict> {
    let table = ctx.table()?;
    let limit = ctx.config.verify.modified_percent;
    let standby = ctx.standby;
    let qualified = table.qualified();
    let row = ctx.client()?.query_typed_one(
        &format!(
            "SELECT EXTRACT(EPOCH FROM now() - GREATEST(s.last_analyze, s.last_autoanalyze))::float8, \
                    COALESCE(s.last_autoanalyze > s.last_analyze OR s.last_analyze IS NULL, false), \
                    EXISTS (SELECT 1 FROM {qualified} LIMIT 1), \
                    CASE WHEN c.reltuples >= 0 THEN c.reltuples::float8 ELSE COALESCE(s.n_live_tup, 0)::float8 END, \
                    COALESCE(s.n_mod_since_analyze, 0)::int8, \
                    c.reltuples::float8, \
                    (SELECT count(*) FROM pg_stats p WHERE p.schemaname = $2 AND p.tablename = $3) \
             FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE c.oid = to_regclass($1)"
        ),
        &[(&qualified, Type::TEXT), (&table.schema, Type::TEXT), (&table.name, Type::TEXT)],
    )?;
    let stats = TableStats {
        table: format!("{}.{}", table.schema, table.name),
        analyzed_secs_ago: row.get(0),
        analyzed_by: if row.get(1) { "autovacuum" } else { "manual" },
        has_rows: row.get(2),
        rows: row.get(3),
        modified_since: row.get(4),
        standby: standby.then(|| Replicated {
            reltuples: row.get(5),
            columns: row.get(6),
        }),
    };
    Ok(stats.verdict(limit, &format!("ANALYZE {qualified};")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::verify::Status;

    fn stats(ago: Option<f64>, rows: f64, modified: i64) -> TableStats {
        TableStats {
            table: "public.orders".into(),
            analyzed_secs_ago: ago,
            analyzed_by: "manual",
            has_rows: rows > 0.0 || modified > 0,
            rows,
            modified_since: modified,
            standby: None,
        }
    }

    #[test]
    fn never_analyzed_fails_and_stale_warns() {
        let v = stats(None, 0.0, 5000).verdict(10.0, "ANALYZE x;");
        assert_eq!(v.status, Status::Fail);
        assert!(v.detail.contains("never been analyzed"), "{}", v.detail);
        assert_eq!(v.fix.as_deref(), Some("ANALYZE x;"));
        assert_eq!(stats(None, 0.0, 0).verdict(10.0, "").status, Status::Pass);
        let stale = stats(Some(60.0), 1000.0, 150).verdict(10.0, "");
        assert_eq!(stale.status, Status::Warn);
        assert!(
            stale
                .detail
                .contains("150 modified since (15.0%, limit 10%)"),
            "{}",
            stale.detail
        );
        assert_eq!(
            stats(Some(60.0), 1000.0, 100).verdict(10.0, "").status,
            Status::Pass
        );
        // A standby has no ANALYZE times of its own, only replicated statistics.
        let standby = |reltuples, columns| TableStats {
            standby: Some(Replicated { reltuples, columns }),
            ..stats(None, 1000.0, 0)
        };
        let replicated = standby(1000.0, 16).verdict(10.0, "");
        assert_eq!(replicated.status, Status::Pass);
        assert!(
            replicated
                .detail
                .contains("1000 rows per pg_class.reltuples")
                && replicated.detail.contains("16 columns"),
            "{}",
            replicated.detail
        );
        for (reltuples, columns, why) in [(-1.0, 0, "reltuples is -1"), (1000.0, 0, "no column")] {
            let v = standby(reltuples, columns).verdict(10.0, "ANALYZE x;");
            assert_eq!(v.status, Status::Fail);
            assert!(v.detail.contains(why), "{}", v.detail);
            assert!(v.fix.unwrap().contains("on the primary"));
        }
        let empty = TableStats {
            has_rows: false,
            ..standby(-1.0, 0)
        };
        assert_eq!(empty.verdict(10.0, "").status, Status::Pass);
    }
}
