//! The synthetic sample the plan times a migration on: rows shaped by production's statistics
//! (null fractions, widths, distinct counts, the range of numbers and times), never production's
//! own.

use crate::estimate::{ColumnStats, TableStats};

/// A column's lowest and highest values on production (the ends of `pg_stats.histogram_bounds`),
/// as SQL literals: the sample spreads its values between them, so a `WHERE` on a range picks
/// the share of the sample it picks of production.
#[derive(Debug, Clone, Default)]
pub struct Range {
    low: String,
    high: String,
}

/// The first and last elements of an array's text form (`{1,5,9}`, `{"2026-01-01 00:00:00+00",…}`).
pub(crate) fn ends(array: &str) -> Option<Range> {
    let inner = array.strip_prefix('{')?.strip_suffix('}')?;
    let unquote = |v: &str| v.trim().trim_matches('"').replace('\'', "''");
    let low = inner.split(',').next()?;
    let high = inner.rsplit(',').next()?;
    (!low.is_empty()).then(|| Range { low: unquote(low), high: unquote(high) })
}

/// `"public"."events"` from `public.events`.
fn quoted(relation: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    match relation.split_once('.') {
        Some((schema, name)) => format!("{}.{}", q(schema), q(name)),
        None => q(relation),
    }
}

/// Puts `n` rows shaped by `stats` in `table` (its triggers and foreign keys off meanwhile, as a
/// restore does), then analyzes it.
pub(crate) fn fill(c: &mut pg_locks::Client, table: &str, stats: &TableStats, n: u64) -> anyhow::Result<()> {
    let rows = c.query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, t.typtype::text, \
           t.typcategory::text, a.attnotnull, (a.attgenerated <> '' OR a.attidentity <> ''), d.adrelid IS NOT NULL, \
           CASE WHEN t.typcategory = 'S' AND a.atttypmod > 4 THEN a.atttypmod - 4 END \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        &[&quoted(table)],
    )?;
    let mut names = Vec::new();
    let mut values = Vec::new();
    for r in rows {
        let column = Column {
            name: r.get(0),
            type_sql: r.get(1),
            typname: r.get(2),
            typtype: r.get(3),
            category: r.get(4),
            not_null: r.get(5),
            automatic: r.get(6),
            has_default: r.get(7),
            max_len: r.get(8),
        };
        let shape = stats.columns.get(&column.name).copied().unwrap_or_default();
        if let Some(expr) = column.value(&shape, stats.ranges.get(&column.name), n)? {
            names.push(format!("\"{}\"", column.name.replace('"', "\"\"")));
            values.push(expr);
        }
    }
    if names.is_empty() {
        anyhow::bail!("{table} has no column a sample can be made for");
    }
    c.batch_execute(&format!(
        "SET session_replication_role = replica; \
         INSERT INTO {0} ({1}) SELECT {2} FROM generate_series(1, {n}) g; \
         RESET session_replication_role; ANALYZE {0}",
        quoted(table),
        names.join(", "),
        values.join(", ")
    ))
    .map_err(|e| anyhow::anyhow!("filling {table}: {}", e.as_db_error().map(|d| d.message()).unwrap_or("error")))?;
    Ok(())
}

/// A column of the sample's table.
struct Column {
    name: String,
    type_sql: String,
    typname: String,
    typtype: String,
    category: String,
    not_null: bool,
    automatic: bool,
    has_default: bool,
    max_len: Option<i32>,
}

impl Column {
    /// The expression for its value in row `g` (None: leave it to its default or generation).
    fn value(&self, shape: &ColumnStats, range: Option<&Range>, n: u64) -> anyhow::Result<Option<String>> {
        if self.automatic {
            return Ok(None);
        }
        // As many distinct values as production has (a fraction of the rows when negative),
        // 1-based so a sampled foreign key finds its sampled key.
        let distinct = match shape.n_distinct {
            d if d < 0.0 => ((-d) * n as f64).ceil() as u64,
            d if d > 0.0 => d as u64,
            _ => n,
        }
        .clamp(1, n.max(1));
        let v = if distinct >= n { "g".to_string() } else { format!("(1 + (g - 1) % {distinct})") };
        // Numbers and times spread over production's range, in as many steps as distinct values.
        let steps = distinct.max(2) - 1;
        let t = &self.type_sql;
        let spread = range.and_then(|r| match (self.category.as_str(), self.typname.as_str()) {
            ("N", "int2" | "int4" | "int8" | "numeric" | "float4" | "float8") => Some(format!(
                "('{low}'::numeric + ({v} - 1) * (('{high}'::numeric - '{low}'::numeric) / {steps}))::{t}",
                low = r.low,
                high = r.high
            )),
            ("D", "timestamp" | "timestamptz") => Some(format!(
                "('{low}'::{t} + ({v} - 1) * (('{high}'::{t} - '{low}'::{t}) / {steps}))",
                low = r.low,
                high = r.high
            )),
            _ => None,
        });
        if let Some(expr) = spread {
            return Ok(Some(self.maybe_null(shape, expr)));
        }
        let width = match shape.avg_width {
            w if w > 0 => w as usize,
            _ => 16,
        }
        .min(self.max_len.map(|m| m.max(1) as usize).unwrap_or(usize::MAX))
        .min(4000);
        let text = format!("left(repeat(md5({v}::text), {}), {width})", width / 32 + 1);
        let expr = match (self.typname.as_str(), self.category.as_str(), self.typtype.as_str()) {
            ("int2", ..) => format!("({v} % 32767)::int2"),
            ("bool", ..) => format!("({v} % 2 = 0)"),
            ("uuid", ..) => format!("md5({v}::text)::uuid"),
            ("json" | "jsonb", ..) => format!("json_build_object('v', {text})::{t}"),
            ("bytea", ..) => format!("decode(repeat(md5({v}::text), {}), 'hex')", width / 16 + 1),
            ("date", ..) => format!("(date '2020-01-01' + ({v} % 100000)::int)"),
            ("timestamp" | "timestamptz", ..) => format!("(timestamp '2020-01-01' + {v} * interval '1 second')::{t}"),
            ("time" | "timetz", ..) => format!("(time '00:00' + ({v} % 86400) * interval '1 second')::{t}"),
            ("interval", ..) => format!("{v} * interval '1 second'"),
            ("inet", ..) => format!("('10.0.0.0'::inet + {v})"),
            (_, "N", _) => format!("({v})::{t}"),
            (_, "S", _) => format!("{text}::{t}"),
            (_, _, "e") => format!("(enum_range(NULL::{t}))[1 + ({v} % array_length(enum_range(NULL::{t}), 1))]"),
            (_, "A", _) => format!("'{{}}'::{t}"),
            _ if self.has_default => return Ok(None),
            _ if !self.not_null => "NULL".to_string(),
            _ => anyhow::bail!("cannot make values of type {t} (column {})", self.name),
        };
        Ok(Some(self.maybe_null(shape, expr)))
    }

    /// NULL in production's share of rows, where the column allows it.
    fn maybe_null(&self, shape: &ColumnStats, expr: String) -> String {
        if !self.not_null && shape.null_frac > 0.0 {
            format!("CASE WHEN random() < {} THEN NULL ELSE {expr} END", shape.null_frac)
        } else {
            expr
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_columns_range_is_read_from_the_ends_of_its_histogram() {
        let r = super::ends("{1,10001,20001,1000000}").unwrap();
        assert_eq!((r.low.as_str(), r.high.as_str()), ("1", "1000000"));
        let r = super::ends(r#"{"2026-01-01 00:00:01+00","2026-01-12 13:46:40+00"}"#).unwrap();
        assert_eq!((r.low.as_str(), r.high.as_str()), ("2026-01-01 00:00:01+00", "2026-01-12 13:46:40+00"));
        assert!(super::ends("{}").is_none());
    }
}
