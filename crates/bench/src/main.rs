//! `bench`: measures the tools as users run them (whole processes, wall time) beside the
//! Heroku CLI and the SQL it runs, on the same machine in the same run, and prints Markdown
//! for docs/BENCHMARKS.md. Run it through `scripts/bench`, which builds release binaries first.

mod deploy_step;
mod maintenance_window;
mod measure;
mod migrate_restart;
mod pg_blockers;
mod release_guard;
mod safe_ps_kill;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Absolute, because some measurements run the tools from another directory.
    let bin_dir = PathBuf::from(args.first().map(String::as_str).unwrap_or("target/release")).canonicalize()?;
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut report = String::new();
    report.push_str(&measure::machine_header());
    report.push_str(&safe_ps_kill::run(&bin_dir, runs)?);
    report.push_str(&pg_blockers::run(&bin_dir, runs)?);
    report.push_str(&maintenance_window::run(&bin_dir, runs)?);
    report.push_str(&migrate_restart::run(&bin_dir, runs)?);
    report.push_str(&release_guard::run(&bin_dir, runs)?);
    report.push_str(&deploy_step::run(&bin_dir, runs)?);
    print!("{report}");
    Ok(())
}
