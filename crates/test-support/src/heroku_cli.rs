//! The published Heroku CLI, pinned in tests/heroku-cli/package.json and installed there by
//! `npm ci` (scripts/test does it). Runs with a temporary HOME so no real credentials are read.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Path of the locally installed `heroku` executable, or a message saying how to install it.
pub fn heroku_bin() -> Result<PathBuf, String> {
    let bin = crate::workspace_root().join("tests/heroku-cli/node_modules/.bin/heroku");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} is missing: run `npm ci --prefix tests/heroku-cli` (scripts/test does)", bin.display()))
    }
}

/// A `heroku` invocation against `api_url` with `token`, with a fresh HOME.
pub struct HerokuCli {
    bin: PathBuf,
    home: tempfile::TempDir,
    api_url: String,
    token: String,
}

impl HerokuCli {
    /// Prepares the CLI; panics with the install hint when it is missing (a test that cannot
    /// run must fail, not pass).
    pub fn new(api_url: &str, token: &str) -> HerokuCli {
        let bin = heroku_bin().unwrap_or_else(|e| panic!("{e}"));
        HerokuCli { bin, home: tempfile::tempdir().expect("temp HOME"), api_url: api_url.into(), token: token.into() }
    }

    /// The temporary HOME (for plugin links).
    pub fn home(&self) -> &std::path::Path {
        self.home.path()
    }

    /// A command with the environment set; add args and run it.
    pub fn command(&self) -> Command {
        self.command_for(&self.bin)
    }

    /// Another program run with this CLI's environment (its HOME, its `heroku` first on PATH),
    /// e.g. an install script that calls `heroku plugins:install`.
    pub fn command_for(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new(program);
        let node_bin = self.bin.parent().expect("bin dir").to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![node_bin];
        paths.extend(std::env::split_paths(&path));
        c.env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_CACHE_HOME", self.home.path().join(".cache"))
            .env("XDG_DATA_HOME", self.home.path().join(".local/share"))
            .env("HEROKU_HOST", &self.api_url)
            .env("HEROKU_API_KEY", &self.token)
            .env("HEROKU_SKIP_NEW_VERSION_CHECK", "true")
            .env("HEROKU_DISABLE_AUTOUPDATE", "1")
            .env("HEROKU_TELEMETRY_DISABLED", "true")
            .env("DISABLE_TELEMETRY", "true")
            .env("NO_COLOR", "1")
            // One npm cache for every test's HOME, as a user's machine keeps one: a plugin
            // install fetches the plugin's pinned dependencies from the registry once per
            // machine rather than once per test (two installs took a minute each).
            .env("npm_config_cache", npm_cache())
            .env("npm_config_prefer_offline", "true")
            .env("npm_config_update_notifier", "false")
            .env("PATH", std::env::join_paths(paths).expect("PATH"))
            .env_remove("HEROKU_APP");
        c
    }

    /// Runs `heroku ARGS…` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("heroku CLI runs")
    }
}

/// The npm cache the tests share, under `target/` (created on first use).
fn npm_cache() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
        .join("npm-cache");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// stdout and stderr of an output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
