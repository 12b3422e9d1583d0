//! `migrate-restart release --lock-wait`: how long the site is blocked when a release phase's
//! ALTER waits behind a long report. Measured from the database's side, not the tool's: from the
//! ALTER's lock-wait start (`pg_locks.waitstart`) to the moment a query queued behind it
//! finishes, minus the budget. Without the guard that time is the report's whole length.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use heroku_sim::{Sim, World};
use test_support::sessions::{client, spawn, wait_until};
use test_support::PgCluster;

use crate::measure::{ms, Stats};

const BUDGET: Duration = Duration::from_secs(1);

/// Which guard is measured.
#[derive(Clone, Copy)]
enum Guarded {
    /// `migrate-restart release --lock-wait 1s` following a release phase.
    ReleasePhase,
    /// `migrate-restart --lock-wait 500ms`: a migration that set its own lock_timeout to 0,
    /// cancelled from outside at 500ms + 500ms slack = 1s.
    Migration,
    /// `release: migrate-guard --lock-wait 500ms -- …`: the release phase guarded from inside
    /// the release dyno (cut at 500ms + 500ms slack = 1s), no tool outside.
    Inside,
}

/// One guarded ALTER: the overshoot past the budget.
fn once(tool: &Path, pg: &PgCluster, sim: &Sim, n: usize, guarded: Guarded) -> anyhow::Result<Duration> {
    let url = pg.superuser_url("postgres");
    let reader = test_support::sessions::long_report(pg, &url, 3600);
    let alter = format!(
        "{} \"$DATABASE_URL\" -X -q -c \"SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text\"",
        pg.psql_path().display()
    );
    let home = tempfile::tempdir()?;
    let mut command = Command::new(tool);
    let mut release = None;
    match guarded {
        Guarded::Inside => {
            let procfile = format!("migrate-guard --lock-wait 500ms --retries 0 --max-xact-age 1h -- {alter}");
            release = Some(sim.push(
                "acme",
                &format!("{n:012x}"),
                "add nickname",
                &[("web", "puma"), ("release", &procfile)],
            ));
            // Nothing of ours outside: `true` stands in for the absent follower.
            command = Command::new("true");
        }
        Guarded::ReleasePhase => {
            sim.push("acme", &format!("{n:012x}"), "add nickname", &[("web", "puma"), ("release", &alter)]);
            command.args(["release", "-a", "acme", "--lock-wait", "1s", "--confirm", "acme", "--json"]);
        }
        Guarded::Migration => {
            command.args(["-a", "acme", "--command", &alter, "--lock-wait", "500ms", "--retries", "0"]);
            command.args(["--max-xact-age", "1h", "--restart", "none", "--confirm", "acme", "--json"]);
        }
    }
    let mut guard = command
        .env("HEROKU_HOST", sim.url())
        .env("HEROKU_API_KEY", sim.token())
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env_remove("HEROKU_APP")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut watcher = client(&url, "bench");
    let mut waitstart: Option<f64> = None;
    wait_until("the ALTER waits", || {
        waitstart = watcher
            .query_opt(
                "SELECT extract(epoch FROM l.waitstart)::float8 FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
                 WHERE NOT l.granted AND a.query LIKE '%ALTER TABLE users%' AND l.waitstart IS NOT NULL",
                &[],
            )
            .ok()
            .flatten()
            .map(|r| r.get(0));
        waitstart.is_some()
    });
    let queued = spawn(&url, "web.1", "SELECT count(*) FROM users");
    queued.finish().map_err(|e| anyhow::anyhow!("the queued query failed: {e}"))?;
    let done = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    guard.wait()?;
    if let Some(v) = release {
        let pending = || sim.with(|w| w.apps["acme"].releases.iter().any(|r| r.version == v && r.status == "pending"));
        wait_until("the guarded release phase ends", || !pending());
    }
    drop(reader);
    pg.psql("postgres", "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'reporting'")?;
    let blocked = Duration::from_secs_f64((done - waitstart.unwrap_or(done)).max(0.0));
    Ok(blocked.saturating_sub(BUDGET))
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let tool = bin_dir.join("migrate-restart");
    let pg = PgCluster::start()?;
    if pg.server_major()? < 14 {
        return Ok(String::new());
    }
    pg.psql("postgres", "CREATE TABLE users AS SELECT g AS id FROM generate_series(1, 1000) g")?;
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(3600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    // The same app built with the migrate-guard buildpack, for the guard inside the dyno (the
    // outside runs use an app without it, so they measure the outside watch alone).
    let dir = tempfile::tempdir()?;
    let mut inside = w.clone();
    let g = test_support::generation::Generation::Cedar;
    test_support::buildpack::install_migrate_guard(&bin_dir.join("migrate-guard"), &mut inside, g, dir.path())?;
    let sim = Sim::start(w)?;
    let inside = Sim::start(inside)?;
    let mut stats = Vec::new();
    for guarded in [Guarded::ReleasePhase, Guarded::Migration, Guarded::Inside] {
        let mut samples = Vec::new();
        let on = if matches!(guarded, Guarded::Inside) { &inside } else { &sim };
        for n in 0..runs.max(1) {
            samples.push(once(&tool, &pg, on, n, guarded)?);
        }
        samples.sort();
        stats.push(Stats { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] });
    }
    let (r, m, i) = (stats[0], stats[1], stats[2]);
    Ok(format!(
        "\n## The lock-wait budget enforced from outside: how long a guarded ALTER blocks the site\n\n\
         An ALTER that turned its own lock_timeout off (`SET lock_timeout = 0; ALTER TABLE users …`, as an app's \
         settings or a migration can) waits behind an hour-long report. Measured in the database: from the ALTER's \
         lock-wait start (`pg_locks.waitstart`) until a query queued behind it has finished, minus the budget; \
         {runs} runs each. Goal: ≤ 300 ms past the budget. Unguarded, the queue waits for the whole report.\n\n\
         | guard | budget | past the budget: median | fastest | slowest |\n|---|---|---|---|---|\n\
         | `migrate-restart release --lock-wait 1s` (a release phase) | 1 s | {} | {} | {} |\n\
         | `migrate-restart --lock-wait 500ms` (a one-off migration; outside at +0.5 s) | 1 s | {} | {} | {} |\n\
         | `release: migrate-guard --lock-wait 500ms` (inside the release dyno, nothing outside; at +0.5 s) | 1 s | {} | {} | {} |\n",
        ms(r.median),
        ms(r.min),
        ms(r.max),
        ms(m.median),
        ms(m.min),
        ms(m.max),
        ms(i.median),
        ms(i.min),
        ms(i.max)
    ))
}
