//! scripts/install puts the binaries, completions and man pages under a prefix and installs the
//! plugin into the Heroku CLI on PATH: by default a packed copy, as users get it from a
//! registry; with `--link`, the checkout itself.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use heroku_sim::{scenario, Sim};
use test_support::heroku_cli::{text, HerokuCli};

const TOOLS: [&str; 4] = ["safe-ps-kill", "pg-blockers", "migrate-restart", "maintenance-window"];

fn install(cli: &HerokuCli, prefix: &Path, extra: &[&str]) -> Output {
    let script = test_support::workspace_root().join("scripts/install");
    let out = cli
        .command_for(&script)
        .args(["--debug", "--prefix", prefix.to_str().unwrap()])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/install {extra:?}: {}", text(&out));
    out
}

/// `heroku ps:safe-kill` through the installed plugin, with the tools neither on PATH nor in
/// HEROKU_DEPLOY_SAFETY_BIN: the plugin must find them in its own bin/.
fn safe_kill_through_the_plugin(cli: &HerokuCli) -> Output {
    cli.command()
        .env_remove("HEROKU_DEPLOY_SAFETY_BIN")
        .args(["ps:safe-kill", "release", "-a", "acme", "--confirm", "acme"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn install_into_a_prefix_then_the_plugin_packed_or_linked() {
    let mut world = scenario("stuck-release").unwrap();
    world.timing.stop_delay = Duration::from_millis(100);
    let sim = Sim::start(world).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let prefix = cli.home().join("prefix");
    install(&cli, &prefix, &[]);
    for t in TOOLS {
        assert!(prefix.join("bin").join(t).is_file(), "{t} not installed");
        assert!(prefix.join("share/bash-completion/completions").join(t).is_file(), "{t} bash completion");
        assert!(prefix.join("share/zsh/site-functions").join(format!("_{t}")).is_file(), "{t} zsh completion");
        assert!(prefix.join("share/man/man1").join(format!("{t}.1")).is_file(), "{t} man page");
    }
    let version = Command::new(prefix.join("bin/pg-blockers")).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("pg-blockers "), "{}", text(&version));

    // The packed plugin: installed (not linked), carrying the binaries, and quiet — a linked
    // ESM plugin makes the CLI warn on every run, which is noise in an incident.
    let plugins = cli.run(&["plugins"]);
    let listing = String::from_utf8_lossy(&plugins.stdout).into_owned();
    assert!(listing.contains("heroku-deploy-safety") && !listing.contains("(link)"), "{}", text(&plugins));
    let installed = cli.home().join(".local/share/heroku/node_modules/heroku-deploy-safety/bin/safe-ps-kill");
    assert!(installed.is_file(), "the packed plugin carries its binaries: {} missing", installed.display());
    let out = safe_kill_through_the_plugin(&cli);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("✓ release.2343 stopped"), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("auto-transpiled") && !stderr.contains("Warning"), "{}", text(&out));

    // --link replaces the install with a link to the checkout (for work on the plugin).
    install(&cli, &prefix, &["--link"]);
    let plugins = cli.run(&["plugins"]);
    assert!(String::from_utf8_lossy(&plugins.stdout).contains("(link)"), "{}", text(&plugins));
    assert!(!installed.exists(), "the packed copy was replaced by the link");
    let help = cli.run(&["ps:safe-kill", "--help"]);
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--confirm"), "{}", text(&help));
}
