//! pg-blockers on a cluster with 300 idle and 200 waiting sessions, beside the queries behind
//! `heroku pg:blocking` and `heroku pg:locks` run through psql on the same database.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::sessions::{client, lock_waiters, spawn, wait_until, Running};
use test_support::PgCluster;

use crate::measure::{cell, ms, run_ok, time, Stats};

/// The SQL a Heroku CLI command runs, read from the pinned CLI's own source (so nothing of it
/// is copied into this repository and it always matches the installed version).
fn heroku_cli_sql(command_file: &str) -> anyhow::Result<String> {
    let path =
        test_support::workspace_root().join("tests/heroku-cli/node_modules/heroku/dist/commands/pg").join(command_file);
    let js = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e} (run npm ci in tests/heroku-cli)", path.display()))?;
    let start = js.find("SELECT").ok_or_else(|| anyhow::anyhow!("no SELECT in {}", path.display()))?;
    let end = js[start..].find('`').ok_or_else(|| anyhow::anyhow!("unterminated query in {}", path.display()))?;
    // pg:locks interpolates its query column; use the untruncated form.
    Ok(js[start..start + end].replace("${this.truncatedQueryString(truncate)}", "pg_stat_activity.query"))
}

fn psql(pg: &PgCluster, sql: &str) -> Command {
    let mut c = Command::new(pg.psql_path());
    c.args([
        "-X",
        "-A",
        "-t",
        "-F",
        "|",
        "-h",
        "127.0.0.1",
        "-p",
        &pg.port().to_string(),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        sql,
    ])
    .env("PGPASSWORD", test_support::postgres::SUPERUSER_PASSWORD);
    c
}

/// One cluster's numbers: each measurement with the blocked sessions it found.
struct Measured {
    major: u32,
    version: String,
    tool: (Stats, usize),
    query: (Stats, usize),
    blocking: (Stats, usize),
    locks: (Stats, usize),
}

/// Builds the scene on a fresh cluster from `server_bindir` and measures everything on it.
fn measure(server_bindir: &Path, bin_dir: &Path, runs: usize) -> anyhow::Result<Measured> {
    let pg = PgCluster::start_from(server_bindir, 600)?;
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE users AS SELECT g AS id, 'user' || g AS name FROM generate_series(1, 20000) g")?;
    let idle: Vec<postgres::Client> = (0..300).map(|i| client(&url, &format!("idle.{i}"))).collect();
    let reader = spawn(&url, "reporting", "SELECT count(*), pg_sleep(3600) FROM users");
    wait_until("reader holds users", || {
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks WHERE pid = {} AND granted AND relation = 'users'::regclass",
                reader.pid
            ),
        )
        .is_ok_and(|s| s == "1")
    });
    let _alter = spawn(&url, "release", "ALTER TABLE users ADD COLUMN nickname text");
    wait_until("ALTER waits", || lock_waiters(&pg) == 1);
    let _queued: Vec<Running> =
        (0..199).map(|i| spawn(&url, &format!("web.{i}"), "SELECT count(*) FROM users")).collect();
    wait_until("200 waiting", || lock_waiters(&pg) == 200);

    let tool = bin_dir.join("pg-blockers");
    let tool_cmd = || {
        let mut c = Command::new(&tool);
        c.args(["--json"]).env("DATABASE_URL", &url).env_remove("HEROKU_APP");
        c
    };
    let doc: serde_json::Value = serde_json::from_str(&run_ok(&mut tool_cmd()))?;
    let tool_found = doc["blocked_total"].as_u64().unwrap_or(0) as usize;
    let tool_time = time(runs, || {
        run_ok(&mut tool_cmd());
    });

    let mut c = client(&url, "bench");
    let query_found = {
        let rows = c.query(pg_locks::SNAPSHOT_SQL, &[])?;
        rows.iter().filter(|r| !r.get::<_, Vec<i32>>(12).is_empty()).count()
    };
    let query_time = time(runs, || {
        c.query(pg_locks::SNAPSHOT_SQL, &[]).expect("snapshot query");
    });

    let blocking_sql = heroku_cli_sql("blocking.js")?;
    let blocking_found = distinct_first_column(&run_ok(&mut psql(&pg, &blocking_sql)));
    let blocking_time = time(runs, || {
        run_ok(&mut psql(&pg, &blocking_sql));
    });

    let locks_sql = heroku_cli_sql("locks.js")?;
    let locks_rows = run_ok(&mut psql(&pg, &locks_sql));
    let locks_found = locks_rows.lines().filter(|l| l.split('|').nth(3) == Some("f")).count();
    let locks_time = time(runs, || {
        run_ok(&mut psql(&pg, &locks_sql));
    });
    drop(idle);
    Ok(Measured {
        major: pg.server_major()?,
        version: pg.psql("postgres", "SHOW server_version")?,
        tool: (tool_time, tool_found),
        query: (query_time, query_found),
        blocking: (blocking_time, blocking_found),
        locks: (locks_time, locks_found),
    })
}

/// The other supported major versions pinned in tests/pg-versions (installed by scripts/test),
/// oldest first; empty when they are not installed.
fn pinned_versions() -> Vec<PathBuf> {
    let root = test_support::workspace_root().join("tests/pg-versions/node_modules");
    [12, 13, 14, 16, 17]
        .iter()
        .map(|v| root.join(format!("pg{v}/native/bin")))
        .filter(|d| d.join("postgres").is_file())
        .collect()
}

/// Runs the comparison and returns a Markdown section.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let m = measure(&test_support::postgres::find_bindir()?, bin_dir, runs)?;
    let mut md = format!(
        "## pg-blockers: 300 idle and 200 waiting sessions\n\n\
         One throwaway PostgreSQL {ver} cluster: 300 idle sessions; a long reader holds `users`, an `ALTER TABLE users ADD COLUMN` waits, 199 readers queue behind it (200 waiting).\n\
         Command: `scripts/bench` ({runs} runs each).\n\n\
         | what | wall time | blocked sessions found |\n|---|---|---|\n\
         | `pg-blockers --json` (whole process: connect, query, forest, JSON) | {} | {} |\n\
         | its snapshot query alone (open connection) | {} | {} |\n\
         | `heroku pg:blocking`'s query through psql (process + connect + query) | {} | {} |\n\
         | `heroku pg:locks`'s query through psql (process + connect + query) | {} | {} |\n\n\
         Ratio, whole process: pg-blockers takes {:.2}× the time of psql running pg:blocking's query, and finds {} blocked sessions where that query finds {} \
         (it joins locks only on transactionid, so relation-lock waits and the lock queue behind a waiting ALTER are invisible to it). \
         The Heroku CLI adds its own process start-up and database resolution on top of the psql time shown here.\n\n",
        cell(m.tool.0),
        m.tool.1,
        cell(m.query.0),
        m.query.1,
        cell(m.blocking.0),
        m.blocking.1,
        cell(m.locks.0),
        m.locks.1,
        m.tool.0.median.as_secs_f64() / m.blocking.0.median.as_secs_f64(),
        m.tool.1,
        m.blocking.1,
        ver = m.version,
    );
    let others = pinned_versions();
    if others.is_empty() {
        md.push_str("(The other major versions were not measured: tests/pg-versions is not installed; scripts/test installs it.)\n\n");
        return Ok(md);
    }
    md.push_str(&format!(
        "### The same scene on every supported major version\n\n\
         Servers pinned in `tests/pg-versions` (the default one above repeated for comparison); medians of {runs} runs, blocked sessions found in brackets.\n\n\
         | PostgreSQL | `pg-blockers --json` | snapshot query alone | pg:blocking's query via psql | pg:locks's query via psql |\n|---|---|---|---|---|\n"
    ));
    let row = |m: &Measured| -> String {
        let c = |(s, n): (Stats, usize)| format!("{} ({n})", ms(s.median));
        format!("| {} | {} | {} | {} | {} |\n", m.version, c(m.tool), c(m.query), c(m.blocking), c(m.locks))
    };
    let mut all = vec![m];
    for dir in others {
        all.push(measure(&dir, bin_dir, runs)?);
    }
    all.sort_by_key(|m| m.major);
    md.extend(all.iter().map(row));
    md.push('\n');
    Ok(md)
}

fn distinct_first_column(rows: &str) -> usize {
    let mut pids: Vec<&str> = rows.lines().filter_map(|l| l.split('|').next()).filter(|s| !s.is_empty()).collect();
    pids.sort_unstable();
    pids.dedup();
    pids.len()
}
