//! Stop-and-verify with safe-ps-kill beside `heroku ps:stop --dyno-name` + `heroku ps`, on the
//! same simulator, at 0 ms and 100 ms injected API latency.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use heroku_sim::{scenario, Sim};
use test_support::heroku_cli::HerokuCli;

use crate::measure::{cell, ms, run_ok, time, Stats};

fn sim(latency: Duration) -> anyhow::Result<Sim> {
    let mut w = scenario("stuck-release").ok_or_else(|| anyhow::anyhow!("scenario"))?;
    // The platform's own stop time is not what is measured here: the dyno is gone at once.
    w.timing.stop_delay = Duration::ZERO;
    w.faults.latency = latency;
    Ok(Sim::start(w)?)
}

/// Adds a fresh one-off dyno to stop and returns its name.
fn fresh_dyno(sim: &Sim, n: &mut u32) -> String {
    *n += 1;
    let name = format!("run.{}", 5000 + *n);
    sim.with(|w| {
        w.add_dyno("acme", "run", &name, "bin/rails console", Duration::from_secs(60));
    });
    name
}

/// Time from spawning a process until the simulator saw its first request.
fn first_request_after(sim: &Sim, spawned: Instant) -> Option<Duration> {
    sim.requests().iter().filter(|r| r.at >= spawned).map(|r| r.at - spawned).min()
}

/// Runs the comparison and returns a Markdown section.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let tool = bin_dir.join("safe-ps-kill");
    let cli_runs = runs.clamp(1, 5);
    let mut rows = String::new();
    for latency in [Duration::ZERO, Duration::from_millis(100)] {
        let sim = sim(latency)?;
        let mut n = 0;
        let mut ours_first = Vec::new();
        let ours: Stats = time(runs, || {
            let name = fresh_dyno(&sim, &mut n);
            let spawned = Instant::now();
            run_ok(
                Command::new(&tool)
                    .args([name.as_str(), "-a", "acme", "--confirm", "acme"])
                    .env("HEROKU_HOST", sim.url())
                    .env("HEROKU_API_KEY", sim.token())
                    .env_remove("HEROKU_APP"),
            );
            ours_first.extend(first_request_after(&sim, spawned));
        });
        let cli = HerokuCli::new(&sim.url(), &sim.token());
        let mut cli_first = Vec::new();
        let theirs: Stats = time(cli_runs, || {
            let name = fresh_dyno(&sim, &mut n);
            let spawned = Instant::now();
            run_ok(cli.command().args(["ps:stop", "--dyno-name", &name, "-a", "acme"]));
            cli_first.extend(first_request_after(&sim, spawned));
            run_ok(cli.command().args(["ps", "-a", "acme"]));
        });
        ours_first.sort();
        cli_first.sort();
        rows.push_str(&format!(
            "| {} | {} | {} | {:.1}× | {} | {} |\n",
            ms(latency),
            cell(ours),
            cell(theirs),
            theirs.median.as_secs_f64() / ours.median.as_secs_f64(),
            ours_first.get(ours_first.len() / 2).map(|d| ms(*d)).unwrap_or_default(),
            cli_first.get(cli_first.len() / 2).map(|d| ms(*d)).unwrap_or_default(),
        ));
    }
    Ok(format!(
        "## safe-ps-kill: stop a dyno and verify it is gone\n\n\
         heroku-sim (in the harness process) with the `stuck-release` app; each run stops a fresh one-off dyno by name. \
         The simulated platform removes a stopped dyno at once, so the times are the tools' own work and round trips. \
         safe-ps-kill lists dynos and reads config vars and the app (its generation) in parallel, stops by id, and polls until the dyno is gone; \
         the Heroku CLI pair is `heroku ps:stop --dyno-name NAME` followed by `heroku ps` (which is how a person checks), \
         and it verifies nothing itself.\n\
         Command: `scripts/bench` ({runs} runs for safe-ps-kill, {cli_runs} for the Heroku CLI pair).\n\n\
         | API latency | safe-ps-kill (stop + verify) | heroku ps:stop + heroku ps | ratio | first request after process start: safe-ps-kill | … Heroku CLI |\n\
         |---|---|---|---|---|---|\n{rows}\n"
    ))
}
