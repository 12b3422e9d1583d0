//! `bench`: measures the tools as users run them (whole processes, wall time) beside the
//! Heroku CLI and the SQL it runs, on the same machine in the same run, and prints Markdown
//! for docs/BENCHMARKS.md. Run it through `scripts/bench`, which builds release binaries first.

mod deploy_step;
mod hold_budget;
mod hold_estimate;
mod lock_plan;
mod maintenance_window;
mod measure;
mod migrate_restart;
mod pg_blockers;
mod plugin;
mod release_guard;
mod running_release;
mod safe_ps_kill;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Absolute, because some measurements run the tools from another directory.
    let bin_dir = PathBuf::from(args.first().map(String::as_str).unwrap_or("target/release")).canonicalize()?;
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    // BENCH_ONLY=lock_plan (a section's module name) measures that section alone.
    let only = std::env::var("BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut report = String::new();
    report.push_str(&measure::machine_header());
    type Section = fn(&std::path::Path, usize) -> anyhow::Result<String>;
    let sections: [(&str, Section); 11] = [
        ("safe_ps_kill", safe_ps_kill::run),
        ("pg_blockers", pg_blockers::run),
        ("maintenance_window", maintenance_window::run),
        ("migrate_restart", migrate_restart::run),
        ("release_guard", release_guard::run),
        ("hold_budget", hold_budget::run),
        ("hold_estimate", hold_estimate::run),
        ("deploy_step", deploy_step::run),
        ("lock_plan", lock_plan::run),
        ("running_release", running_release::run),
        ("plugin", plugin::run),
    ];
    for (name, section) in sections {
        if wanted(name) {
            report.push_str(&section(&bin_dir, runs)?);
        }
    }
    print!("{report}");
    Ok(())
}
