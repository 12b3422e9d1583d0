//! The maintenance window's overhead at 150 ms API latency: maintenance-window beside the same
//! steps done with Heroku CLI commands, on the same simulator. The window is measured where it
//! matters — between the simulator receiving "maintenance on" and "maintenance off".

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use heroku_sim::{Sim, World};
use test_support::heroku_cli::HerokuCli;

use crate::measure::{ms, run_ok};

fn world(commit: &str) -> World {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
    w.add_formation("acme", "worker", 3, "sidekiq", Duration::from_secs(3600));
    w.add_formation("acme", "clock", 1, "clockwork", Duration::from_secs(3600));
    w.add_release("acme", commit, "Deploy", Duration::from_secs(3600));
    // The platform's own drain time is not what is measured: stopped dynos vanish at once.
    w.timing.stop_delay = Duration::ZERO;
    w.timing.start_delay = Duration::ZERO;
    w.faults.latency = Duration::from_millis(150);
    w
}

fn git(dir: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "b")
            .env("GIT_AUTHOR_EMAIL", "b@example.com")
            .env("GIT_COMMITTER_NAME", "b")
            .env("GIT_COMMITTER_EMAIL", "b@example.com"),
    )
    .trim()
    .to_string()
}

/// Time between the simulator seeing maintenance turned on and off.
fn window(sim: &Sim) -> Option<Duration> {
    let log = sim.requests();
    let at = |on: bool| {
        log.iter()
            .rev()
            .find(|r| {
                r.method == "PATCH" && r.path == "/apps/acme" && r.body.as_ref().is_some_and(|b| b["maintenance"] == on)
            })
            .map(|r| r.at)
    };
    Some(at(false)? - at(true)?)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs the comparison and returns a Markdown section.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let repo = tempfile_dir()?;
    std::fs::create_dir_all(repo.join("db/migrate"))?;
    std::fs::write(repo.join("Gemfile"), "")?;
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "base", "--allow-empty"]);
    let base = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("db/migrate/1_add.rb"), "")?;
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "migration"]);

    let tool = bin_dir.join("maintenance-window");
    let mut ours = Vec::new();
    let mut ours_calls = 0;
    for _ in 0..runs.max(1) {
        let sim = Sim::start(world(&base))?;
        let state = repo.join(".state");
        let out = run_ok(
            Command::new(&tool)
                .args(["-a", "acme", "--confirm", "acme", "--json", "--", "true"])
                .current_dir(&repo)
                .env("HEROKU_HOST", sim.url())
                .env("HEROKU_API_KEY", sim.token())
                .env("XDG_STATE_HOME", &state)
                .env_remove("HEROKU_APP"),
        );
        let doc: serde_json::Value = serde_json::from_str(&out)?;
        ours_calls = doc["timings"]["api_calls_in_window"].as_u64().unwrap_or(0);
        ours.push(window(&sim).ok_or_else(|| anyhow::anyhow!("no window seen"))?);
    }
    let cli_runs = runs.clamp(1, 3);
    let mut theirs = Vec::new();
    for _ in 0..cli_runs {
        let sim = Sim::start(world(&base))?;
        let cli = HerokuCli::new(&sim.url(), &sim.token());
        for args in [
            &["maintenance:on", "-a", "acme"][..],
            &["ps:scale", "worker=0", "clock=0", "-a", "acme"],
            &["ps:scale", "worker=3", "clock=1", "-a", "acme"],
            &["maintenance:off", "-a", "acme"],
        ] {
            run_ok(cli.command().args(args));
        }
        theirs.push(window(&sim).ok_or_else(|| anyhow::anyhow!("no window seen"))?);
    }
    let (o, t) = (median(ours), median(theirs));
    let _ = std::fs::remove_dir_all(&repo);
    Ok(format!(
        "## maintenance-window: window overhead at 150 ms API latency\n\n\
         heroku-sim with `acme` (web=2, worker=3, clock=1), every request delayed 150 ms, stopped dynos gone at once. \
         COMMAND is `true`, so the window is pure overhead: measured from the simulator receiving \"maintenance on\" to receiving \"maintenance off\". \
         maintenance-window journals, turns maintenance on and scales down in one parallel step, checks the drain, then scales back and turns maintenance off in parallel ({ours_calls} API calls while down). \
         The Heroku CLI sequence is `maintenance:on`, `ps:scale worker=0 clock=0`, `ps:scale worker=3 clock=1`, `maintenance:off` (it does not check the drain).\n\
         Command: `scripts/bench` ({} runs for maintenance-window, {cli_runs} for the Heroku CLI sequence).\n\n\
         | | site in maintenance (median) |\n|---|---|\n\
         | maintenance-window | {} |\n\
         | Heroku CLI steps | {} |\n\
         | ratio | {:.1}× shorter |\n\n",
        runs.max(1),
        ms(o),
        ms(t),
        t.as_secs_f64() / o.as_secs_f64().max(1e-9),
    ))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("mw-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
