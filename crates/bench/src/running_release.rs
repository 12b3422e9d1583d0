//! What the running release breaks, at scale: 5,000 distinct statements in
//! `pg_stat_statements` (50 tables, 90 reads and 10 inserts each, sent with bound parameters as
//! a framework sends them), checked against a migration that drops one column: the read of
//! production's statements, each prepared on the copy before and after (an insert also
//! explained for the row the server completes), and the whole `migrate-restart plan --top 5000`
//! process. Goal: the check under 5 s.

use std::path::Path;
use std::time::Instant;

use heroku_sim::Sim;
use migration_plan::breaks;
use test_support::generation::Generation;
use test_support::PgCluster;

use crate::measure::{ms, Stats};

const TABLES: usize = 50;
const STATEMENTS: usize = 5000;

/// The 100 statements the release sends to table `t`: reads of each pair of its ten columns
/// (`a == b` is an insert instead).
fn statements_for(t: usize) -> Vec<(String, bool)> {
    (0..10)
        .flat_map(|a| (0..10).map(move |b| (a, b)))
        .map(|(a, b)| match a == b {
            true => (format!("INSERT INTO t{t} (id, c{a}) VALUES ($1, $2)"), true),
            false => (format!("SELECT c{a}, c{b} FROM t{t} WHERE id = $1"), false),
        })
        .collect()
}

fn schema() -> String {
    let columns: Vec<String> = (0..10).map(|c| format!("c{c} text")).collect();
    (0..TABLES).map(|t| format!("CREATE TABLE t{t} (id bigint PRIMARY KEY, {});\n", columns.join(", "))).collect()
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let pg = PgCluster::start()?;
    pg.load_pg_stat_statements("postgres")?;
    // Room for all 5,000 (the default keeps 5,000 in all, the tool's own reads among them): set
    // once the module is loaded, taken at the next start.
    pg.psql("postgres", "ALTER SYSTEM SET pg_stat_statements.max = 10000")?;
    pg.load_pg_stat_statements("postgres")?;
    pg.psql("postgres", &schema())?;
    let mut app = postgres::Client::connect(&pg.superuser_url("postgres"), postgres::NoTls)?;
    for t in 0..TABLES {
        for (i, (sql, insert)) in statements_for(t).into_iter().enumerate() {
            match insert {
                true => app.execute(&sql, &[&(i as i64), &"x"])?,
                false => app.execute(&sql, &[&1i64])?,
            };
        }
    }
    let runs = runs.clamp(1, 5);
    // The copy, as the plan makes it: production's schema in a local server.
    let mut live = postgres::Client::connect(&pg.superuser_url("postgres"), postgres::NoTls)?;
    let schema = schema_copy::read(&mut live)?;
    let (mut read, mut check, mut found) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let server = schema_copy::ScratchServer::start(pg.bindir())?;
        let mut copy = postgres::Client::connect(&server.url(), postgres::NoTls)?;
        schema.restore(&mut copy)?;
        let started = Instant::now();
        let breaks::Statements::Read(queries) = breaks::read_production(&mut live, STATEMENTS) else {
            anyhow::bail!("pg_stat_statements was not read");
        };
        read.push(started.elapsed());
        anyhow::ensure!(queries.len() >= STATEMENTS, "only {} statements were read", queries.len());
        let before = breaks::prepare_each(&mut copy, &queries)?;
        copy.batch_execute("ALTER TABLE t7 DROP COLUMN c3")?;
        let after = breaks::prepare_each(&mut copy, &queries)?;
        check.push(started.elapsed());
        let plan = pg_locks::lockplan::LockPlan { statements: Vec::new() };
        found = breaks::broken(&queries, &before, &after, &plan, breaks::Framework::Other).len();
    }
    let sim = Sim::start(test_support::acme::acme_world(&pg, Generation::Cedar))?;
    let home = tempfile::tempdir()?;
    let migration = test_support::acme::psql_migration(&pg, "ALTER TABLE t7 DROP COLUMN c3");
    let mut whole = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = crate::measure::tool(bin_dir, "migrate-restart", &sim, home.path())
            .args(["plan", "-a", "acme", "--top", "5000", "--json", "--", "sh", "-c", &migration])
            .output()?;
        // would_break (8) is the expected verdict: the drop breaks t7's statements naming c3.
        anyhow::ensure!(out.status.code() == Some(8), "plan: {}", String::from_utf8_lossy(&out.stderr));
        whole.push(started.elapsed());
    }
    let (read, check, whole) = (Stats::of(read), Stats::of(check), Stats::of(whole));
    Ok(format!(
        "## migrate-restart plan: the running release's 5,000 statements checked\n\n\
         {STATEMENTS} distinct statements in `pg_stat_statements` ({TABLES} tables; per table 90 reads of two \
         columns and 10 inserts, sent with bound parameters), PostgreSQL {}; the migration drops `t7.c3`. \
         The check reads the busiest statements once, prepares each on the copy before and after the migration \
         (each insert also explained for the row the server completes). Goal: the check under 5 s. \
         Command: `BENCH_ONLY=running_release scripts/bench` ({runs} runs, medians).\n\n\
         | step | time |\n|---|---|\n\
         | reading the 5,000 statements from production (`pg_stat_statements`, one query) | {} |\n\
         | the check: read, then each prepared before and after the migration on the copy | {} ({:.1}–{:.1}) |\n\
         | queries it names as broken (the 19 that name `t7.c3`: 18 reads and 1 insert) | {found} |\n\
         | the whole `migrate-restart plan --top 5000` process (copy, record, sample measurement, check, verdict) | {} |\n\n",
        pg.server_major()?,
        ms(read.median),
        ms(check.median),
        check.min.as_secs_f64() * 1000.0,
        check.max.as_secs_f64() * 1000.0,
        ms(whole.median),
    ))
}
