//! The hold budget: how long the site queues behind a statement of the migration that *holds*
//! its lock (a validating scan, 200 rows × 50 ms: about 10 s with AccessExclusiveLock held),
//! guarded by `migrate-guard --lock-wait 1s` the way the release dyno runs it. Measured from the
//! database's side: from the queued query's lock-wait start (`pg_locks.waitstart`) until it has
//! finished, minus the budget. Unguarded, it waits for the rest of the scan.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use test_support::sessions::{client, spawn, wait_until};
use test_support::PgCluster;

use crate::measure::{ms, Stats};

const BUDGET: Duration = Duration::from_secs(1);
const ROWS: u32 = 200;

/// One guarded scan: how far past the budget the queued query waited.
fn once(guard: &Path, pg: &PgCluster) -> anyhow::Result<Duration> {
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "DROP TABLE IF EXISTS events CASCADE; DROP FUNCTION IF EXISTS slow_ok(int)")?;
    test_support::acme::slow_validation_table(pg, ROWS)?;
    let migration = test_support::acme::psql_migration(pg, test_support::acme::VALIDATING_SCAN);
    let mut child = Command::new(guard)
        .args(["--lock-wait", "1s", "--retries", "0", "--", "sh", "-c", &migration])
        .env("DYNO", "release.1")
        .env("DATABASE_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_until("the scan holds its lock", || test_support::acme::holds_events_exclusively(pg, "migrate-restart/"));
    let queued = spawn(&url, "web.1", "SELECT count(*) FROM events");
    let mut watcher = client(&url, "bench");
    let mut waitstart: Option<f64> = None;
    wait_until("the query queues", || {
        waitstart = watcher
            .query_opt(
                "SELECT extract(epoch FROM waitstart)::float8 FROM pg_locks WHERE pid = $1 AND NOT granted AND waitstart IS NOT NULL",
                &[&queued.pid],
            )
            .ok()
            .flatten()
            .map(|r| r.get(0));
        waitstart.is_some() || queued.is_finished()
    });
    queued.finish().map_err(|e| anyhow::anyhow!("the queued query failed: {e}"))?;
    let done = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    child.wait()?;
    let waited = Duration::from_secs_f64((done - waitstart.unwrap_or(done)).max(0.0));
    Ok(waited.saturating_sub(BUDGET))
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let pg = PgCluster::start()?;
    if pg.server_major()? < 14 {
        return Ok(String::new());
    }
    let guard = bin_dir.join("migrate-guard");
    let mut samples = (0..runs.max(1)).map(|_| once(&guard, &pg)).collect::<anyhow::Result<Vec<_>>>()?;
    samples.sort();
    let s = Stats { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] };
    Ok(format!(
        "\n## The hold budget: how long the site queues behind a statement that holds its lock\n\n\
         A validating scan (`ALTER TABLE events ADD CONSTRAINT … CHECK (slow_ok(id))`, {ROWS} rows × 50 ms: about \
         {} s holding AccessExclusiveLock) under `migrate-guard --lock-wait 1s`, as the release dyno runs it; a \
         query on `events` queues behind it once the scan holds the lock. Measured in the database: from the \
         query's lock-wait start (`pg_locks.waitstart`) until it has finished, minus the budget; {runs} runs. \
         Goal: a median within 20 ms past the budget, as on the wait side. Unguarded, the query waits for the rest of the scan.\n\n\
         | guard | budget | past the budget: median | fastest | slowest |\n|---|---|---|---|---|\n\
         | `migrate-guard --lock-wait 1s` (the hold side of the same budget) | 1 s | {} | {} | {} |\n",
        ROWS as u64 * 50 / 1000,
        ms(s.median),
        ms(s.min),
        ms(s.max)
    ))
}
