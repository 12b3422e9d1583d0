//! migrate-restart, detached: how soon after the migration's process exits the tool knows its
//! exit status (followed through the log stream, no fixed sleeps), and what a dropped log
//! stream costs. Measured against heroku-sim: from the platform's `Process exited` line (its
//! own clock) to migrate-restart's process exit (with `--restart none`, so nothing else waits).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use heroku_sim::{Sim, World};

use crate::measure::{ms, run_ok, Stats};

fn world() -> World {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(3600));
    w
}

/// One run: the delay from the dyno's exit to the tool's.
fn once(tool: &Path, drop_stream: bool) -> anyhow::Result<Duration> {
    let sim = Sim::start(world())?;
    if drop_stream {
        sim.with(|w| w.faults.log_drop_after = Some(1));
    }
    let home = tempfile::tempdir()?;
    run_ok(
        Command::new(tool)
            .args(["-a", "acme", "--command", "echo one; sleep 0.3; echo two", "--restart", "none"])
            .args(["--no-preflight", "--confirm", "acme"])
            .env("HEROKU_HOST", sim.url())
            .env("HEROKU_API_KEY", sim.token())
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env_remove("HEROKU_APP")
            .env_remove("DATABASE_URL"),
    );
    let ended = SystemTime::now();
    let exited = sim
        .with(|w| w.logs.of("acme").iter().find(|l| l.text.starts_with("Process exited")).map(|l| l.at))
        .ok_or_else(|| anyhow::anyhow!("no exit line in the log"))?;
    Ok(ended.duration_since(exited).unwrap_or_default())
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let tool = bin_dir.join("migrate-restart");
    let mut plain = Vec::new();
    let mut dropped = Vec::new();
    for _ in 0..runs.max(1) {
        plain.push(once(&tool, false)?);
        dropped.push(once(&tool, true)?);
    }
    let (p, d) = (Stats::of(plain), Stats::of(dropped));
    Ok(format!(
        "\n## migrate-restart: a detached migration's exit status through the log\n\n\
         From the platform's `Process exited with status 0` line to migrate-restart's own exit \
         (`--restart none`), {runs} runs each. Goal: under 1 s.\n\n\
         | log stream | median | fastest | slowest |\n|---|---|---|---|\n\
         | steady | {} | {} | {} |\n\
         | dropped after the first line (re-opened, nothing lost or repeated) | {} | {} | {} |\n",
        ms(p.median),
        ms(p.min),
        ms(p.max),
        ms(d.median),
        ms(d.min),
        ms(d.max)
    ))
}
