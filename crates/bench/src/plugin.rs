//! The plugin as users get it: installed into the pinned Heroku CLI from a real npm registry on
//! 127.0.0.1 (`heroku plugins:install`, install scripts off, a fresh HOME each time, the
//! platform package with the release binaries), then its overhead per command beside the
//! binary run directly and beside the Heroku CLI's own `heroku pg:blocking`, each a whole
//! process against the same simulator and database.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use heroku_sim::Sim;
use test_support::generation::Generation;
use test_support::heroku_cli::HerokuCli;
use test_support::registry::Registry;

use crate::measure::{cell, run_ok, time, Stats};

/// Each install's time, and the CLI the last one installed into.
fn install(bin_dir: &Path, sim: &Sim, runs: usize) -> anyhow::Result<(Vec<std::time::Duration>, HerokuCli)> {
    let dist = tempfile::tempdir()?;
    run_ok(Command::new(test_support::workspace_root().join("scripts/package")).args([
        "--from",
        bin_dir.to_str().unwrap_or_default(),
        "--out",
        dist.path().to_str().unwrap_or_default(),
        "--only",
        "npm",
    ]));
    let version = env!("CARGO_PKG_VERSION");
    let plugin_tgz = dist.path().join(format!("npm/heroku-deploy-safety-{version}.tgz"));
    let platform_tgz = dist.path().join(format!("npm/heroku-deploy-safety-linux-x64-{version}.tgz"));
    let registry = Registry::start();
    let authority = registry.url.trim_start_matches("http:").to_string();
    let npmrc =
        format!("{authority}:_authToken={}\n@heroku-deploy-safety:registry={}\n", registry.token(), registry.url);
    let fresh_cli = || -> anyhow::Result<HerokuCli> {
        let cli = HerokuCli::new(&sim.url(), &sim.token());
        std::fs::write(cli.home().join(".npmrc"), &npmrc)?;
        Ok(cli)
    };
    let publisher = fresh_cli()?;
    run_ok(publisher.command_for(Path::new("npm")).args([
        "publish",
        platform_tgz.to_str().unwrap_or_default(),
        "--registry",
        &registry.url,
    ]));
    let mut installs = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let cli = fresh_cli()?;
        let started = Instant::now();
        run_ok(
            cli.command()
                .env("npm_config_ignore_scripts", "true")
                .args(["plugins:install", &format!("file://{}", plugin_tgz.display())])
                .stdin(std::process::Stdio::null()),
        );
        installs.push(started.elapsed());
        last = Some(cli);
    }
    Ok((installs, last.ok_or_else(|| anyhow::anyhow!("no install ran"))?))
}

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<String> {
    let pg = test_support::acme::users_database()?;
    let sim = Sim::start(test_support::acme::acme_world(&pg, Generation::Cedar))?;
    let install_runs = runs.clamp(1, 3);
    let (installs, cli) = install(bin_dir, &sim, install_runs)?;
    let heroku = |args: &[&str]| {
        let mut c = cli.command();
        c.env_remove("HEROKU_DEPLOY_SAFETY_BIN").env("PGSSLMODE", "disable").args(args);
        c
    };
    let direct = time(runs, || {
        run_ok(crate::measure::tool(bin_dir, "pg-blockers", &sim, cli.home()).args(["-a", "acme", "--json"]));
    });
    let through_plugin = time(runs, || {
        run_ok(&mut heroku(&["pg:blockers", "-a", "acme", "--json"]));
    });
    let pg_blocking = time(runs, || {
        run_ok(&mut heroku(&["pg:blocking", "-a", "acme"]));
    });
    let cli_alone = time(runs, || {
        run_ok(&mut heroku(&["version"]));
    });
    let install = Stats::of(installs);
    let overhead = through_plugin.median.saturating_sub(direct.median);
    Ok(format!(
        "## The plugin: installed from a registry, and its overhead per command\n\n\
         `heroku plugins:install` of the packed plugin into the pinned Heroku CLI with install scripts off and \
         a fresh HOME each time; npm takes the platform package (the release binaries) from a real npm \
         registry on 127.0.0.1 (verdaccio) and the plugin's own dependencies from its cache. Then each command \
         as a whole process against the same simulator and database (nothing blocked). \
         Command: `BENCH_ONLY=plugin scripts/bench` ({install_runs} installs, {runs} runs of each command after one warm-up).\n\n\
         | what | wall time |\n|---|---|\n\
         | `heroku plugins:install heroku-deploy-safety` (platform package from the registry) | {} |\n\
         | `pg-blockers -a acme --json` (the binary alone) | {} |\n\
         | `heroku pg:blockers -a acme --json` (through the plugin) | {} |\n\
         | `heroku pg:blocking -a acme` (the Heroku CLI's own; psql) | {} |\n\
         | `heroku version` (the CLI starting, nothing else) | {} |\n\n\
         The plugin adds {:.0} ms to a command (its median beside the binary's): the Heroku CLI's start. \
         Through the plugin, `pg:blockers` takes {:.2}× the time of `heroku pg:blocking`.\n\n",
        cell(install),
        cell(direct),
        cell(through_plugin),
        cell(pg_blocking),
        cell(cli_alone),
        overhead.as_secs_f64() * 1000.0,
        through_plugin.median.as_secs_f64() / pg_blocking.median.as_secs_f64(),
    ))
}
