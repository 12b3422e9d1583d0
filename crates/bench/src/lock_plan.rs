//! `migrate-restart plan` on a schema of 2,000 tables: how long reading production's schema
//! takes and the longest it holds AccessShareLock on production's tables (one statement at a
//! time), beside `pg_dump --schema-only` (which holds AccessShareLock on every table until it
//! ends, so a migration starting meanwhile queues behind it and the site behind the
//! migration); then the recreation on a local server, and the whole `plan` process.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use heroku_sim::Sim;
use test_support::generation::Generation;
use test_support::PgCluster;

use crate::measure::{ms, run_ok, Stats};

const TABLES: usize = 2000;

/// 2,000 tables, each with a primary key, a unique index and a check; every tenth with a
/// foreign key to the one before it.
fn schema() -> String {
    let mut sql = String::from("BEGIN;\n");
    for i in 0..TABLES {
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT '', score int CHECK (score >= 0), parent_id bigint);\n\
             CREATE UNIQUE INDEX t{i}_name ON t{i} (lower(name));\n"
        ));
        if i % 10 == 9 {
            sql.push_str(&format!("ALTER TABLE t{i} ADD FOREIGN KEY (parent_id) REFERENCES t{} (id);\n", i - 1));
        }
    }
    sql.push_str("CREATE TABLE users (id bigserial PRIMARY KEY, email text);\nCOMMIT;\n");
    sql
}

/// The system's pg_dump, when it speaks to this server's version.
fn pg_dump_for(pg: &PgCluster) -> Option<std::path::PathBuf> {
    let candidate = pg.client_bindir().join("pg_dump");
    let major = pg.server_major().ok()?;
    let out = Command::new(&candidate).arg("--version").output().ok()?;
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {major}.")).then_some(candidate)
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let pg = PgCluster::start()?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), schema())?;
    run_ok(Command::new(pg.psql_path()).args([&pg.superuser_url("postgres"), "-X", "-q", "-f"]).arg(file.path()));
    let runs = runs.clamp(1, 5);
    let (mut read, mut hold, mut restore, mut dump) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let pg_dump = pg_dump_for(&pg);
    for _ in 0..runs {
        let mut c = postgres::Client::connect(&pg.superuser_url("postgres"), postgres::NoTls)?;
        let d = schema_copy::read(&mut c)?;
        read.push(d.took);
        hold.push(d.lock_hold);
        let server = schema_copy::ScratchServer::start(pg.bindir())?;
        let mut scratch = postgres::Client::connect(&server.url(), postgres::NoTls)?;
        let started = Instant::now();
        let restored = d.restore(&mut scratch)?;
        anyhow::ensure!(restored.failed.is_empty(), "not copied: {:?}", restored.failed);
        restore.push(started.elapsed());
        if let Some(bin) = &pg_dump {
            let started = Instant::now();
            run_ok(Command::new(bin).args(["--schema-only", "-f", "/dev/null", &pg.superuser_url("postgres")]));
            dump.push(started.elapsed());
        }
    }
    let sim = Sim::start(test_support::acme::acme_world(&pg, Generation::Cedar))?;
    let home = tempfile::tempdir()?;
    let migration = test_support::acme::psql_migration(&pg, "ALTER TABLE users ADD COLUMN nickname text");
    let mut whole = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = crate::measure::tool(bin_dir, "migrate-restart", &sim, home.path())
            .args(["plan", "-a", "acme", "--json", "--", "sh", "-c", &migration])
            .output()?;
        anyhow::ensure!(out.status.success(), "plan: {}", String::from_utf8_lossy(&out.stderr));
        whole.push(started.elapsed());
    }
    let (read, hold, restore, whole) = (Stats::of(read), Stats::of(hold), Stats::of(restore), Stats::of(whole));
    let dump_row = if dump.is_empty() {
        "| `pg_dump --schema-only` (for comparison) | no pg_dump of this server's version on the machine | — |\n"
            .to_string()
    } else {
        let d = Stats::of(dump);
        format!(
            "| `pg_dump --schema-only` (for comparison) | {} | AccessShareLock on every table, {} (its whole run) |\n",
            ms(d.median),
            ms(d.median)
        )
    };
    Ok(format!(
        "## migrate-restart plan: the schema copy on 2,000 tables\n\n\
         A schema of {TABLES} tables (each with a primary key, a unique expression index and a check; every \
         tenth with a foreign key), PostgreSQL {}. The read runs one statement per part, so no lock outlives \
         its statement; `pg_dump` holds AccessShareLock on every table it dumps until it ends, so a migration \
         that starts meanwhile queues behind it, and the site behind the migration. \
         Command: `scripts/bench` ({runs} runs, medians).\n\n\
         | step | time | lock held on production's tables |\n|---|---|---|\n\
         | reading the schema (`schema_copy::read`) | {} | AccessShareLock, at most {} at a time (one statement) |\n\
         {dump_row}\
         | recreating it on a local server | {} | — (the local copy) |\n\
         | the whole `migrate-restart plan` process (read, local server start, recreate, migrate, record, check) | {} | as the read |\n\n",
        pg.server_major()?,
        ms(read.median),
        ms(hold.median),
        ms(restore.median),
        ms(whole.median),
    ))
}
