//! How long each statement holds its locks on production's data, measured without a row of it.
//!
//! The copy's tables are empty, so the recorded run says nothing about time. Production is read
//! for its catalogs and statistics only — `pg_class.reltuples`, the relation sizes, `pg_stats`
//! (null fractions, widths, distinct counts) — and a second copy of the schema on the same local
//! server is filled with a synthetic sample shaped by them (up to [`SAMPLE_ROWS`] rows a table).
//! The migration runs there too, its statements timed by the recorder, and each time is scaled
//! to production's size: linearly for rewrites and scans, `n log n` for an index build. The
//! range says the uncertainty of that: the sample is not production's data, its cache or its
//! disk.
//!
//! Then what queues: while a statement's lock is held (until its transaction ends), every query
//! that conflicts with it waits; the table's measured scans and writes a minute times that hold
//! say how many. A statement holding a lock others queue behind for longer than the budget is
//! what makes the plan answer `would_block`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use cli_kit::format_duration;
use cli_kit::units::thousands;
use pg_locks::lockplan::{self, Blocks, Estimate, LockMode, LockPlan, PlannedStatement, TableActivity};
use pg_locks::Connection;

/// Rows of the synthetic sample, per table at most.
pub const SAMPLE_ROWS: u64 = 100_000;
/// Rows of all samples together, at most (a migration touching many tables is sampled thinner).
const SAMPLE_TOTAL: u64 = 1_000_000;
/// Below this more on the sample than on empty tables, a statement did not touch the rows:
/// catalog only.
const CATALOG_ONLY_US: u64 = 1_500;
/// The range around a scaled time: the sample is not production's data, cache or disk.
const LOW: f64 = 0.5;
const HIGH: f64 = 2.0;

/// A planned table as production's statistics describe it.
#[derive(Debug, Clone, Default)]
pub struct TableStats {
    /// `pg_class.reltuples` (None: never analyzed).
    pub rows: Option<u64>,
    /// Table, indexes and TOAST, in bytes.
    pub bytes: u64,
    /// Per column, from `pg_stats`.
    pub columns: BTreeMap<String, ColumnStats>,
    /// Per column, its range where `pg_stats` gives one.
    pub ranges: BTreeMap<String, Range>,
}

/// One column as `pg_stats` describes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColumnStats {
    null_frac: f64,
    avg_width: i32,
    n_distinct: f64,
}

/// A column's lowest and highest values on production (the ends of `pg_stats.histogram_bounds`),
/// as SQL literals: the sample spreads its values between them, so a `WHERE` on a range picks
/// the share of the sample it picks of production.
#[derive(Debug, Clone, Default)]
pub struct Range {
    low: String,
    high: String,
}

/// The first and last elements of an array's text form (`{1,5,9}`, `{"2026-01-01 00:00:00+00",…}`).
fn ends(array: &str) -> Option<Range> {
    let inner = array.strip_prefix('{')?.strip_suffix('}')?;
    let unquote = |v: &str| v.trim().trim_matches('"').replace('\'', "''");
    let low = inner.split(',').next()?;
    let high = inner.rsplit(',').next()?;
    (!low.is_empty()).then(|| Range { low: unquote(low), high: unquote(high) })
}

/// Reads the statistics of the tables the plan locks (catalogs only: no row is read).
pub fn read_statistics(prod: &mut pg_locks::Client, plan: &LockPlan) -> anyhow::Result<BTreeMap<String, TableStats>> {
    let tables: Vec<String> = plan
        .statements
        .iter()
        .flat_map(|s| &s.locks)
        .filter(|l| !l.created && matches!(l.kind.as_str(), "table" | "materialized view"))
        .map(|l| l.relation.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out: BTreeMap<String, TableStats> = BTreeMap::new();
    for r in prod.query(
        "SELECT n.nspname || '.' || c.relname, c.reltuples::float8, pg_total_relation_size(c.oid)::int8 \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname || '.' || c.relname = ANY ($1)",
        &[&tables],
    )? {
        let rows: f64 = r.get(1);
        out.insert(
            r.get(0),
            TableStats {
                rows: (rows >= 0.0).then_some(rows as u64),
                bytes: r.get::<_, i64>(2).max(0) as u64,
                columns: BTreeMap::new(),
                ranges: BTreeMap::new(),
            },
        );
    }
    for r in prod.query(
        "SELECT schemaname || '.' || tablename, attname::text, null_frac::float8, avg_width, n_distinct::float8, \
           histogram_bounds::text \
         FROM pg_stats WHERE NOT inherited AND schemaname || '.' || tablename = ANY ($1)",
        &[&tables],
    )? {
        if let Some(t) = out.get_mut(&r.get::<_, String>(0)) {
            if let Some(range) = r.get::<_, Option<String>>(5).as_deref().and_then(ends) {
                t.ranges.insert(r.get(1), range);
            }
            t.columns.insert(r.get(1), ColumnStats { null_frac: r.get(2), avg_width: r.get(3), n_distinct: r.get(4) });
        }
    }
    Ok(out)
}

/// What the run on the sample gave: each statement's time there, and the rows each table had.
#[derive(Debug, Default)]
pub struct Measured {
    /// The sample's statements, in order (matched to the plan's by position).
    statements: Vec<PlannedStatement>,
    /// Rows put in each table.
    sampled: BTreeMap<String, u64>,
    /// Tables that could not be sampled, and why.
    unsampled: BTreeMap<String, String>,
    /// Why nothing could be measured, when nothing could.
    failed: Option<String>,
}

impl Measured {
    /// Nothing measured, and why.
    pub fn not_measured(why: &str) -> Measured {
        Measured { failed: Some(why.to_string()), ..Measured::default() }
    }
}

/// Fills a fresh copy of the schema (database `plan_sample` on the scratch server) with a
/// sample shaped like production, runs the migration there under the recorder, and reads each
/// statement's time.
pub fn measure(
    server_url: &str,
    dump: &schema_copy::SchemaDump,
    command: &[String],
    stats: &BTreeMap<String, TableStats>,
) -> Measured {
    match measure_on_sample(server_url, dump, command, stats) {
        Ok(m) => m,
        Err(e) => Measured { failed: Some(cli_kit::one_line(&e)), ..Measured::default() },
    }
}

fn measure_on_sample(
    server_url: &str,
    dump: &schema_copy::SchemaDump,
    command: &[String],
    stats: &BTreeMap<String, TableStats>,
) -> anyhow::Result<Measured> {
    // The tool's own throwaway server: filling a sample takes longer than an inspection may.
    let options = |url: &str| pg_locks::ConnectOptions {
        statement_timeout: Duration::from_secs(600),
        ..pg_locks::ConnectOptions::new(url, "migrate-restart-plan")
    };
    let mut admin = pg_locks::connect(&options(server_url))?;
    // Each on its own: neither may run inside the transaction a multi-statement string is.
    admin.client().batch_execute("DROP DATABASE IF EXISTS plan_sample")?;
    admin.client().batch_execute("CREATE DATABASE plan_sample")?;
    let url = server_url.replacen("/postgres?", "/plan_sample?", 1);
    let mut c = pg_locks::connect(&options(&url))?;
    dump.restore(c.client())?;
    let mut m = Measured::default();
    let with_rows: Vec<(&String, u64)> =
        stats.iter().filter_map(|(t, s)| s.rows.filter(|r| *r > 0).map(|r| (t, r))).collect();
    let per_table = SAMPLE_ROWS.min(SAMPLE_TOTAL / (with_rows.len() as u64).max(1)).max(1);
    for (table, rows) in with_rows {
        let n = rows.min(per_table);
        match fill(c.client(), table, &stats[table], n) {
            Ok(()) => {
                m.sampled.insert(table.clone(), n);
            }
            Err(e) => {
                m.unsampled.insert(table.clone(), cli_kit::one_line(&e));
            }
        }
    }
    lockplan::install_recorder(c.client())?;
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env("DATABASE_URL", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let recorded = lockplan::read_plan(c.client());
    let _ = lockplan::remove_recorder(c.client());
    if !status.success() {
        anyhow::bail!(
            "the migration failed on the sample (status {}): its data, made up from production's statistics, did not suit it",
            cli_kit::shell::status_code(status)
        );
    }
    m.statements = recorded?.statements;
    Ok(m)
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
fn fill(c: &mut pg_locks::Client, table: &str, stats: &TableStats, n: u64) -> anyhow::Result<()> {
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

/// The estimates, written onto the plan's statements: each one's time scaled from the sample,
/// and for each the lock the site queues behind until its transaction ends.
pub fn apply(
    plan: &mut LockPlan,
    measured: &Measured,
    stats: &BTreeMap<String, TableStats>,
    activity: &[TableActivity],
) {
    let matched = measured.failed.is_none()
        && measured.statements.len() == plan.statements.len()
        && measured.statements.iter().zip(&plan.statements).all(|(a, b)| a.tag == b.tag);
    for (i, s) in plan.statements.iter_mut().enumerate() {
        let estimate = if matched {
            estimate_one(s, &measured.statements[i], measured, stats)
        } else {
            unmeasured(match &measured.failed {
                Some(why) => format!("not measured: {why}"),
                None => "not measured: the run on the sample did not record the same statements".to_string(),
            })
        };
        s.estimate = Some(bounded_by_size(s, estimate, stats));
    }
    // A lock is held from the statement that takes it until its transaction ends (an
    // unmeasured statement counts at its bound).
    let holds: Vec<(i64, Option<u64>)> = plan
        .statements
        .iter()
        .map(|s| (s.transaction, s.estimate.as_ref().and_then(|e| e.hold_ms.or(e.high_ms))))
        .collect();
    for (i, s) in plan.statements.iter_mut().enumerate() {
        let rest: Option<u64> =
            holds[i..].iter().take_while(|(x, _)| *x == s.transaction).map(|(_, h)| *h).sum::<Option<u64>>();
        let blocks = rest.and_then(|for_ms| site_queue(s, for_ms, activity));
        let safe_form = blocks.as_ref().and_then(|_| pg_locks::safe_form(&s.query)).map(str::to_string);
        if let Some(e) = s.estimate.as_mut() {
            e.blocks = blocks;
            e.safe_form = safe_form;
        }
    }
}

/// Reading or writing every byte of a table at this rate at the least: a bound for a statement
/// that could not be measured (slow disks, a busy server; what any Heroku Postgres plan does).
const SLOWEST_BYTES_PER_SEC: f64 = 20.0 * 1024.0 * 1024.0;

/// An unmeasured statement's upper bound, from the size of the largest table it takes a new
/// lock on: every byte read and written at [`SLOWEST_BYTES_PER_SEC`] (a small table bounds it
/// well under any budget; a big one leaves it unknown).
fn bounded_by_size(s: &PlannedStatement, e: Estimate, stats: &BTreeMap<String, TableStats>) -> Estimate {
    if e.hold_ms.is_some() {
        return e;
    }
    let Some((name, t)) = s
        .locks
        .iter()
        .filter(|l| l.new && !l.created)
        .filter_map(|l| stats.get(&l.relation).map(|t| (l.relation.clone(), t)))
        .max_by_key(|(_, t)| t.bytes)
    else {
        return e;
    };
    let bound = (2.0 * t.bytes as f64 / SLOWEST_BYTES_PER_SEC * 1000.0).ceil() as u64 + 10;
    Estimate {
        high_ms: Some(bound),
        low_ms: Some(0),
        basis: format!(
            "{}; at most {} from {name}'s size ({}, read and written at 20 MB/s)",
            e.basis,
            format_duration(Duration::from_millis(bound)),
            cli_kit::units::bytes(t.bytes)
        ),
        table: Some(name),
        rows: t.rows,
        bytes: Some(t.bytes),
        ..e
    }
}

fn unmeasured(basis: String) -> Estimate {
    Estimate {
        hold_ms: None,
        low_ms: None,
        high_ms: None,
        basis,
        table: None,
        rows: None,
        bytes: None,
        blocks: None,
        safe_form: None,
        rows_changed: None,
        longer_than_a_release_phase: false,
    }
}

fn estimate_one(
    s: &PlannedStatement,
    on_sample: &PlannedStatement,
    m: &Measured,
    stats: &BTreeMap<String, TableStats>,
) -> Estimate {
    let ms = |us: u64| us.div_ceil(1000);
    let instant = |us: u64, basis: String| Estimate {
        hold_ms: Some(ms(us)),
        low_ms: Some(0),
        high_ms: Some(ms(us) * 2 + 5),
        ..unmeasured(basis)
    };
    // The table it scales with: the largest one it takes a new lock on.
    let table = s
        .locks
        .iter()
        .filter(|l| l.new && !l.created)
        .filter_map(|l| stats.get(&l.relation).map(|t| (l.relation.clone(), t)))
        .max_by_key(|(_, t)| t.rows.unwrap_or(0));
    let on_rows = on_sample.ran_us.unwrap_or(0);
    let Some((name, t)) = table else {
        return instant(on_rows, "touches no table with rows: catalog only".into());
    };
    let sized = |e: Estimate| Estimate { table: Some(name.clone()), rows: t.rows, bytes: Some(t.bytes), ..e };
    if let Some(why) = m.unsampled.get(&name) {
        return sized(unmeasured(format!("not measured: {why}")));
    }
    let Some(&n) = m.sampled.get(&name) else {
        return sized(match t.rows {
            None => unmeasured(format!("not measured: production has no statistics for {name} (run ANALYZE {name})")),
            Some(_) => instant(on_rows, format!("{name} is empty on production")),
        });
    };
    // What the rows cost: the time on the sample beyond the same statement's on empty tables.
    let on_empty = s.ran_us.unwrap_or(0).min(on_rows);
    let per_rows = on_rows - on_empty;
    if per_rows < CATALOG_ONLY_US {
        return sized(instant(
            on_rows,
            format!(
                "catalog only: {} on a {}-row sample, as on empty tables",
                format_duration(Duration::from_micros(on_rows)),
                thousands(n)
            ),
        ));
    }
    let rows = t.rows.unwrap_or(n).max(n);
    let mut factor = rows as f64 / n as f64;
    let builds_index = (s.tag == "CREATE INDEX" && !s.waits_for_older_transactions)
        || (s.tag == "ALTER TABLE" && {
            let q = s.query.to_ascii_lowercase();
            q.contains("primary key") || q.contains(" unique")
        });
    if builds_index && n > 1 {
        factor *= (rows as f64).ln() / (n as f64).ln();
    }
    let hold = (on_empty as f64 + per_rows as f64 * factor) / 1000.0;
    sized(Estimate {
        rows_changed: on_sample.rows.map(|r| (r as f64 * rows as f64 / n as f64).round() as u64),
        longer_than_a_release_phase: hold > RELEASE_PHASE_LIMIT.as_millis() as f64,
        hold_ms: Some(hold.ceil() as u64),
        low_ms: Some((hold * LOW) as u64),
        high_ms: Some((hold * HIGH).ceil() as u64),
        ..unmeasured(format!(
            "measured {} on a {}-row sample shaped like production's, scaled {} to {} rows",
            format_duration(Duration::from_micros(on_rows)),
            thousands(n),
            if builds_index { "by n log n (an index build)" } else { "linearly" },
            thousands(rows)
        ))
    })
}

/// How long the platform lets a release phase run before it stops the release dyno.
pub const RELEASE_PHASE_LIMIT: Duration = Duration::from_secs(3600);

/// What the site would queue behind `s`'s strongest new lock the site's queries conflict with,
/// held `for_ms` (until its transaction ends); for an UPDATE or DELETE, whose table lock the
/// site's writes pass, the writes to the rows it changed (their row locks are held as long).
fn site_queue(s: &PlannedStatement, for_ms: u64, activity: &[TableActivity]) -> Option<Blocks> {
    if matches!(s.tag.as_str(), "UPDATE" | "DELETE") {
        let e = s.estimate.as_ref()?;
        let (relation, rows, changed) = (e.table.clone()?, e.rows?, e.rows_changed?);
        let share = if rows == 0 { 0.0 } else { (changed as f64 / rows as f64).min(1.0) };
        let per_min = activity.iter().find(|a| a.relation == relation).map(|a| a.row_writes_per_min).unwrap_or(0.0);
        return Some(Blocks {
            relation,
            mode: LockMode::RowExclusiveLock,
            queues: "writes to the rows it changes".to_string(),
            for_ms,
            queued: (per_min * share * for_ms as f64 / 60_000.0).round() as u64,
        });
    }
    let lock = s
        .locks
        .iter()
        .filter(|l| !l.created && l.mode.conflicts_with(LockMode::RowExclusiveLock))
        // The strongest; between equals, the table (its queries are the site's) over its indexes.
        .max_by_key(|l| (l.mode, l.kind == "table"))?;
    let reads = lock.mode.conflicts_with(LockMode::AccessShareLock);
    let a = activity.iter().find(|a| a.relation == lock.relation);
    let per_min = a.map(|a| a.row_writes_per_min + if reads { a.scans_per_min } else { 0.0 }).unwrap_or(0.0);
    Some(Blocks {
        relation: lock.relation.clone(),
        mode: lock.mode,
        queues: if reads { "reads and writes" } else { "writes" }.to_string(),
        for_ms,
        queued: (per_min * for_ms as f64 / 60_000.0).round() as u64,
    })
}

/// The statements that would hold a lock the site queues behind for longer than `budget`.
pub fn blocking(plan: &LockPlan, budget: Duration) -> Vec<&PlannedStatement> {
    plan.statements
        .iter()
        .filter(|s| {
            s.estimate
                .as_ref()
                .and_then(|e| e.blocks.as_ref())
                .is_some_and(|b| b.queued >= 1 && Duration::from_millis(b.for_ms) > budget)
                && s.estimate.as_ref().is_some_and(|e| e.hold_ms.is_some())
        })
        .collect()
}

/// Statements whose hold could not be measured, whose bound (if any) does not keep them under
/// the budget, although the site's queries conflict with their lock: the plan cannot say they
/// stay under it.
pub fn unmeasured_holds(plan: &LockPlan, budget: Duration) -> Vec<String> {
    plan.statements
        .iter()
        .filter(|s| s.locks.iter().any(|l| !l.created && l.mode.conflicts_with(LockMode::RowExclusiveLock)))
        .filter_map(|s| {
            let e = s.estimate.as_ref()?;
            let within = e.blocks.as_ref().is_some_and(|b| Duration::from_millis(b.for_ms) <= budget);
            (e.hold_ms.is_none() && !within)
                .then(|| format!("how long statement {} ({}) holds its lock: {}", s.seq, s.tag, e.basis))
        })
        .collect()
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
