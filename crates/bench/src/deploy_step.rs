//! `migrate-restart release -- git push heroku main`: how soon the follower watches the
//! database of a release that did not exist when it started. Measured between two clocks that
//! do not depend on the tool: the release's `created_at` in the simulator and the
//! `backend_start` of the follower's watch session in PostgreSQL.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use heroku_sim::{Sim, World};
use test_support::app_repo::AppRepo;
use test_support::sessions::client;
use test_support::PgCluster;

use crate::measure::{ms, Stats};

/// One push: from the release's creation until the watch session connected.
fn once(tool: &Path, pg: &PgCluster, sim: &Sim, repo: &AppRepo, n: usize) -> anyhow::Result<Duration> {
    repo.commit_procfile(&format!("web: puma\nrelease: sleep 1; echo run {n}\n"))?;
    let url = pg.superuser_url("postgres");
    let home = tempfile::tempdir()?;
    let mut child = Command::new(tool)
        .args(["release", "-a", "acme", "--confirm", "acme", "--json", "--", "git", "push", "heroku", "main"])
        .current_dir(repo.path())
        .env("HOME", home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HEROKU_HOST", sim.url())
        .env("HEROKU_API_KEY", sim.token())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env_remove("DATABASE_URL")
        .env_remove("HEROKU_APP")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut watcher = client(&url, "bench");
    let mut connected: Option<f64> = None;
    while child.try_wait()?.is_none() {
        if connected.is_none() {
            connected = watcher
                .query_opt(
                    "SELECT extract(epoch FROM backend_start)::float8 FROM pg_stat_activity WHERE application_name = 'migrate-restart-release-watch'",
                    &[],
                )?
                .map(|r| r.get(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let created = sim.with(|w| w.apps["acme"].releases.last().map(|r| r.created_at));
    let created = created.ok_or_else(|| anyhow::anyhow!("no release"))?.duration_since(UNIX_EPOCH)?.as_secs_f64();
    let connected = connected.ok_or_else(|| anyhow::anyhow!("the follower never watched the database"))?;
    Ok(Duration::from_secs_f64((connected - created).max(0.0)))
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let tool = bin_dir.join("migrate-restart");
    let pg = PgCluster::start()?;
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(3600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    w.timing.start_delay = Duration::from_millis(50);
    let sim = Sim::start(w)?;
    let repo = AppRepo::new(&sim, "acme", Some("web: puma\n"))?;
    let mut samples = Vec::new();
    for n in 0..runs.max(1) {
        samples.push(once(&tool, &pg, &sim, &repo, n)?);
    }
    samples.sort();
    let s = Stats { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] };
    Ok(format!(
        "\n## A follower that starts before the release: from its creation to its database watched\n\n\
         `migrate-restart release --confirm acme -- git push heroku main` with a real `git push` to heroku-sim (the push \
         builds, creates the release and streams its release phase). Measured from the release's `created_at` (the \
         simulator's clock) to the `backend_start` of the follower's watch session (PostgreSQL's clock, same machine); \
         {runs} pushes. Goal: under 1 s, with no fixed sleeps (the newest release is read every 200 ms).\n\n\
         | from release created to database watched | median | fastest | slowest |\n|---|---|---|---|\n\
         | `migrate-restart release -- git push heroku main` | {} | {} | {} |\n",
        ms(s.median),
        ms(s.min),
        ms(s.max)
    ))
}
