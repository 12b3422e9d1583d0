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

use crate::parallel::ParallelSettings;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use cli_kit::format_duration;
use cli_kit::units::thousands;
use pg_locks::lockplan::{self, Blocks, Estimate, LockMode, LockPlan, PlannedStatement, TableActivity};
use pg_locks::Connection;

use crate::sample::{ends, fill, Range};

/// Rows of the synthetic sample, per table at most.
pub const SAMPLE_ROWS: u64 = 100_000;
/// Rows of all samples together, at most (a migration touching many tables is sampled thinner).
const SAMPLE_TOTAL: u64 = 1_000_000;
/// Below this more on the sample than on empty tables (or where the server counted no block of
/// the sample read), a statement did not touch the rows: catalog only.
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
    /// The parallel workers production's server would give an index build on it (the sample
    /// builds with none): see [`crate::parallel::index_build_workers`].
    pub index_workers: u32,
}

/// One column as `pg_stats` describes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColumnStats {
    /// `pg_stats.null_frac`.
    pub(crate) null_frac: f64,
    /// `pg_stats.avg_width`, in bytes.
    pub(crate) avg_width: i32,
    /// `pg_stats.n_distinct` (negative: a fraction of the rows).
    pub(crate) n_distinct: f64,
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
    let settings = ParallelSettings::read(prod)?;
    for r in prod.query(
        "SELECT n.nspname || '.' || c.relname, c.reltuples::float8, pg_total_relation_size(c.oid)::int8, c.relpages::int8, \
           (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8, \
           (SELECT substr(o, 18)::int4 FROM unnest(c.reloptions) o WHERE o LIKE 'parallel_workers=%') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname || '.' || c.relname = ANY ($1)",
        &[&tables],
    )? {
        let rows: f64 = r.get(1);
        // Never analyzed: -1 from PostgreSQL 14, 0 before it — with pages, not an empty table.
        let never_analyzed = rows < 0.0 || (rows == 0.0 && r.get::<_, i64>(3) > 0);
        out.insert(
            r.get(0),
            TableStats {
                rows: (!never_analyzed).then_some(rows as u64),
                bytes: r.get::<_, i64>(2).max(0) as u64,
                columns: BTreeMap::new(),
                ranges: BTreeMap::new(),
                index_workers: crate::parallel::index_build_workers(
                    r.get::<_, i64>(4).max(0) as u64,
                    r.get::<_, Option<i32>>(5).map(|n| n.max(0) as u32),
                    settings,
                ),
            },
        );
    }
    for r in prod.query(
        // The histogram's ends are read for numbers and times only: a text column's are values
        // of production's rows (an email), which the sample has no need of.
        "SELECT s.schemaname || '.' || s.tablename, s.attname::text, s.null_frac::float8, s.avg_width, s.n_distinct::float8, \
           CASE WHEN t.typcategory IN ('N', 'D') THEN s.histogram_bounds::text END \
         FROM pg_stats s \
         JOIN pg_namespace n ON n.nspname = s.schemaname \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname \
         JOIN pg_type t ON t.oid = a.atttypid \
         WHERE NOT s.inherited AND s.schemaname || '.' || s.tablename = ANY ($1)",
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
    // The sample builds indexes alone: production's parallel workers are counted when scaling.
    admin.client().batch_execute("ALTER DATABASE plan_sample SET max_parallel_maintenance_workers = 0")?;
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

/// The estimates, written onto the plan's statements: each one's time scaled from the sample,
/// and for each the lock the site queues behind until its transaction ends.
pub fn apply(
    plan: &mut LockPlan,
    measured: &Measured,
    stats: &BTreeMap<String, TableStats>,
    activity: &[TableActivity],
) {
    // Only what a trigger recorded was timed (on the sample too): matched by position among those.
    let timed: Vec<usize> = (0..plan.statements.len()).filter(|i| plan.statements[*i].ran_us.is_some()).collect();
    let matched = measured.failed.is_none()
        && measured.statements.len() == timed.len()
        && measured.statements.iter().zip(&timed).all(|(a, i)| a.tag == plan.statements[*i].tag);
    for (i, s) in plan.statements.iter_mut().enumerate() {
        let estimate = if s.ran_us.is_none() {
            unmeasured("not measured: no trigger fires for it, so the run on the sample cannot time it".into())
        } else if matched {
            let k = timed.iter().position(|t| *t == i).expect("a timed statement");
            estimate_one(s, &measured.statements[k], measured, stats)
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
    // The server counted no block of the sample read: whatever the time (a busy machine can
    // stretch a catalog change), the rows made no difference.
    let read_no_rows = on_sample.blocks_read == Some(0);
    if read_no_rows && per_rows >= CATALOG_ONLY_US {
        return sized(instant(
            on_empty,
            format!("catalog only: read no block of the {}-row sample (the server's count)", thousands(n)),
        ));
    }
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
    sized(scaled(s, on_sample, t, n, on_empty, per_rows))
}

/// A time measured on `n` sampled rows, scaled to production's: linearly, or by n log n for an
/// index build — which production's server may share among parallel workers where the sample
/// built alone: the best case divides by the participants, the worst is no worker free.
fn scaled(
    s: &PlannedStatement,
    on_sample: &PlannedStatement,
    t: &TableStats,
    n: u64,
    on_empty: u64,
    per_rows: u64,
) -> Estimate {
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
    let alone = (on_empty as f64 + per_rows as f64 * factor) / 1000.0;
    // Only a B-tree build is shared among workers (GIN, GiST, hash and SP-GiST never; BRIN
    // from PostgreSQL 17, counted here as alone: the safe side).
    let method = s.query.to_ascii_lowercase();
    let parallel_method =
        !["using gin", "using gist", "using hash", "using spgist", "using brin"].iter().any(|m| method.contains(m));
    let workers = if builds_index && parallel_method { t.index_workers } else { 0 };
    // Workers may share the rows, but how much they gain varies (measured: a build with one
    // worker took 0.53 of the alone estimate, 1.8 of the shared one). The estimate the verdict
    // reads stays the alone one — the safe side — and the shared one is the low end.
    let shared = (on_empty as f64 + per_rows as f64 * factor / f64::from(workers + 1)) / 1000.0;
    let hold = alone;
    let how = match (builds_index, workers) {
        (false, _) => "linearly".to_string(),
        (true, 0) => "by n log n (an index build)".to_string(),
        (true, w) => format!(
            "by n log n (an index build), which production's settings allow {w} parallel worker{} to share (the low end)",
            if w == 1 { "" } else { "s" }
        ),
    };
    Estimate {
        rows_changed: on_sample.rows.map(|r| (r as f64 * rows as f64 / n as f64).round() as u64),
        longer_than_a_release_phase: hold > RELEASE_PHASE_LIMIT.as_millis() as f64,
        hold_ms: Some(hold.ceil() as u64),
        low_ms: Some((shared * LOW) as u64),
        high_ms: Some((alone * HIGH).ceil() as u64),
        ..unmeasured(format!(
            "measured {} on a {}-row sample shaped like production's, scaled {how} to {} rows",
            format_duration(Duration::from_micros(on_sample.ran_us.unwrap_or(0))),
            thousands(n),
            thousands(rows)
        ))
    }
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
            // No `blocks` although the site's queries conflict with its lock: a later statement
            // of its transaction could not be bounded, so how long the lock stays is unknown.
            (!within && (e.hold_ms.is_none() || e.blocks.is_none()))
                .then(|| format!("how long statement {} ({}) holds its lock: {}", s.seq, s.tag, e.basis))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pg_locks::lockplan::PlannedLock;

    fn alter(ran_us: u64, blocks_read: Option<u64>) -> PlannedStatement {
        PlannedStatement {
            seq: 1,
            tag: "ALTER TABLE".into(),
            object: Some("public.events".into()),
            query: "ALTER TABLE events ADD COLUMN note text".into(),
            transaction: 1,
            locks: vec![PlannedLock {
                relation: "public.events".into(),
                kind: "table".into(),
                mode: LockMode::AccessExclusiveLock,
                new: true,
                created: false,
            }],
            rewrites: vec![],
            waits_for_older_transactions: false,
            rows: None,
            ran_us: Some(ran_us),
            blocks_read,
            estimate: None,
        }
    }

    fn events() -> BTreeMap<String, TableStats> {
        let t = TableStats { rows: Some(1_000_000), bytes: 100 << 20, ..TableStats::default() };
        BTreeMap::from([("public.events".to_string(), t)])
    }

    fn sampled() -> Measured {
        Measured { sampled: BTreeMap::from([("public.events".to_string(), SAMPLE_ROWS)]), ..Measured::default() }
    }

    /// A catalog change stretched to 21ms on a busy machine is not scaled by the rows when the
    /// server counted no block of the sample read; the same time with blocks read is rows' work.
    #[test]
    fn a_statement_that_read_no_block_is_catalog_only_however_long_it_took() {
        let on_empty = alter(900, None);
        let quiet = estimate_one(&on_empty, &alter(21_000, Some(0)), &sampled(), &events());
        assert!(quiet.basis.starts_with("catalog only: read no block"), "{quiet:?}");
        assert_eq!(quiet.hold_ms, Some(1), "{quiet:?}");

        let scanned = estimate_one(&on_empty, &alter(21_000, Some(1_300)), &sampled(), &events());
        assert!(scanned.basis.contains("scaled linearly to 1,000,000 rows"), "{scanned:?}");
        assert_eq!(scanned.hold_ms, Some(202), "(0.9 + 20.1 × 10) ms: {scanned:?}");

        // Not counted (read from the server log): the time decides, as before.
        let uncounted = estimate_one(&on_empty, &alter(21_000, None), &sampled(), &events());
        assert!(uncounted.basis.starts_with("measured 21ms"), "{uncounted:?}");
    }

    /// The workers production's settings give a B-tree build lower only the low end: the
    /// estimate the verdict reads is the build alone; a GIN build is never shared.
    #[test]
    fn an_index_builds_workers_lower_only_its_low_end() {
        let build = |ran_us: u64| PlannedStatement {
            tag: "CREATE INDEX".into(),
            query: "CREATE INDEX e ON events (account_id)".into(),
            ..alter(ran_us, Some(1_300))
        };
        let mut with_one = events();
        with_one.get_mut("public.events").unwrap().index_workers = 1;
        let alone = estimate_one(&build(900), &build(21_000), &sampled(), &events());
        let shared = estimate_one(&build(900), &build(21_000), &sampled(), &with_one);
        assert!(
            shared.basis.contains("which production's settings allow 1 parallel worker to share (the low end)"),
            "{shared:?}"
        );
        assert_eq!(shared.hold_ms, alone.hold_ms, "the verdict reads the alone estimate: {shared:?}");
        assert!(shared.low_ms.unwrap() * 2 <= alone.low_ms.unwrap() + 2, "{shared:?} {alone:?}");
        assert_eq!(shared.high_ms, alone.high_ms, "no worker free is the worst case");
        let gin = |ran_us: u64| PlannedStatement {
            query: "CREATE INDEX e ON events USING gin (tags)".into(),
            ..build(ran_us)
        };
        let gin_estimate = estimate_one(&gin(900), &gin(21_000), &sampled(), &with_one);
        assert_eq!(gin_estimate.low_ms, alone.low_ms, "a GIN build is never shared: {gin_estimate:?}");
    }
}
