//! Timing helpers: repeated runs, median and spread, and the machine description.

use std::process::Command;
use std::time::{Duration, Instant};

/// Summary of repeated timings.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Median.
    pub median: Duration,
    /// Fastest.
    pub min: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Stats {
    /// The median and spread of `samples` (at least one).
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        Stats { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] }
    }
}

/// The tool `name` of `bin_dir`, pointed at the simulator, with `home` as HOME and neither an
/// app nor a database from this environment.
pub fn tool(bin_dir: &std::path::Path, name: &str, sim: &heroku_sim::Sim, home: &std::path::Path) -> Command {
    let mut c = Command::new(bin_dir.join(name));
    c.env("HEROKU_HOST", sim.url())
        .env("HEROKU_API_KEY", sim.token())
        .env("HOME", home)
        .env_remove("HEROKU_APP")
        .env_remove("DATABASE_URL");
    c
}

/// Runs `f` `runs` times (after one warm-up) and summarises the wall time.
pub fn time(runs: usize, mut f: impl FnMut()) -> Stats {
    f();
    Stats::of(
        (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Runs a command and panics with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `12.3 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `12.3 ms (11.9–13.0)`.
pub fn cell(s: Stats) -> String {
    format!("{} ({:.1}–{:.1})", ms(s.median), s.min.as_secs_f64() * 1000.0, s.max.as_secs_f64() * 1000.0)
}

/// The machine, so numbers are read in context.
pub fn machine_header() -> String {
    let (cpu, mem_kb) = cpu_and_memory();
    let cpu = cpu.unwrap_or_else(|| "unknown CPU".into());
    let mem_kb = mem_kb.unwrap_or(0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let os = match std::env::consts::OS {
        "macos" => "macOS",
        "linux" => "Linux",
        other => other,
    };
    let date = String::from_utf8_lossy(
        &Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output().map(|o| o.stdout).unwrap_or_default(),
    )
    .trim()
    .to_string();
    format!(
        "Machine: {cpu}, {cores} cores, {} GiB RAM, {os}. Measured {date}. Times are medians of repeated whole-process runs (min–max in brackets).\n\n",
        mem_kb / 1024 / 1024
    )
}

/// The CPU's model name and the memory in KiB: Linux tells in /proc, macOS through sysctl.
#[cfg(target_os = "linux")]
fn cpu_and_memory() -> (Option<String>, Option<u64>) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()));
    (cpu, mem_kb)
}

#[cfg(not(target_os = "linux"))]
fn cpu_and_memory() -> (Option<String>, Option<u64>) {
    let sysctl = |name: &str| {
        let out = Command::new("sysctl").args(["-n", name]).output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let mem_kb = sysctl("hw.memsize").and_then(|bytes| bytes.parse::<u64>().ok()).map(|bytes| bytes / 1024);
    (sysctl("machdep.cpu.brand_string"), mem_kb)
}
