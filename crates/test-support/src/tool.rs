//! Running one of the project's binaries the way a user's shell would: a clean environment
//! (no stray HEROKU_APP or DATABASE_URL, a temporary HOME), optionally pointed at heroku-sim.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A binary under test.
pub struct Tool {
    bin: PathBuf,
    home: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

impl Tool {
    /// `bin` is `env!("CARGO_BIN_EXE_<name>")`.
    pub fn new(bin: impl AsRef<Path>) -> Tool {
        Tool { bin: bin.as_ref().to_path_buf(), home: tempfile::tempdir().expect("temp HOME"), envs: Vec::new() }
    }

    /// Points the tool at a simulator: HEROKU_HOST and HEROKU_API_KEY.
    pub fn api(mut self, url: &str, token: &str) -> Tool {
        self.envs.push(("HEROKU_HOST".into(), url.into()));
        self.envs.push(("HEROKU_API_KEY".into(), token.into()));
        self
    }

    /// Points the tool at a running simulator.
    pub fn against(self, sim: &heroku_sim::Sim) -> Tool {
        self.api(&sim.url(), &sim.token())
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Tool {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// The temporary HOME.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A command with the environment applied and stdin closed (no terminal).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env_remove("HEROKU_APP")
            .env_remove("DATABASE_URL")
            .env_remove("HEROKU_API_KEY")
            .env_remove("HEROKU_HOST")
            .env("HOME", self.home.path())
            .env("XDG_STATE_HOME", self.home.path().join(".local/state"))
            .env("NO_COLOR", "1")
            .current_dir(self.home.path())
            .stdin(Stdio::null());
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c
    }

    /// Starts with `args` on a pseudo-terminal.
    pub fn pty(&self, args: &[&str]) -> crate::pty::PtySession {
        crate::pty::PtySession::spawn(self.command(args))
    }

    /// Runs with `args` in directory `dir`.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(args).current_dir(dir).output().expect("tool runs")
    }

    /// Runs with `args` and returns the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("tool runs")
    }
}

/// The captured output of a run, with helpers for assertions.
pub trait OutputExt {
    /// stdout as text.
    fn stdout_text(&self) -> String;
    /// stderr as text.
    fn stderr_text(&self) -> String;
    /// Exit code (-1 for a signal).
    fn code(&self) -> i32;
    /// Everything, for assertion messages.
    fn dump(&self) -> String;
    /// stdout as the one JSON document `--json` promises; panics, showing everything, if it
    /// is not one.
    fn json(&self) -> serde_json::Value;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    fn dump(&self) -> String {
        format!("exit {}\n--- stdout\n{}--- stderr\n{}", self.code(), self.stdout_text(), self.stderr_text())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.dump()))
    }
}

/// A child's pipe read on a background thread, so a test can watch what a process prints while
/// it still runs (a streamed line, a watch redraw, a pause).
pub struct LiveOutput {
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl LiveOutput {
    /// Starts reading `pipe` until it closes.
    pub fn start(mut pipe: impl std::io::Read + Send + 'static) -> LiveOutput {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        LiveOutput { seen, reader }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything, once the pipe has closed (after the process exited, nothing is missed).
    pub fn finish(self) -> String {
        let LiveOutput { seen, reader } = self;
        let _ = reader.join();
        let text = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        text
    }
}

/// What a run with its stdout closed early left behind.
pub struct ClosedPipeRun {
    /// The one line read before the pipe was closed.
    pub first_line: String,
    /// How the process ended.
    pub status: std::process::ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl ClosedPipeRun {
    /// Exit code (-1 for a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Runs `command` the way `command | head -1` would: reads the first line of stdout, then
/// closes the pipe while the process goes on, and waits for it to end.
pub fn run_closing_stdout_after_first_line(mut command: std::process::Command) -> ClosedPipeRun {
    use std::io::BufRead;
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("tool starts with piped stdout");
    let stderr = LiveOutput::start(child.stderr.take().expect("stderr piped"));
    let mut first_line = String::new();
    {
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout piped"));
        stdout.read_line(&mut first_line).expect("read the first line");
        // Dropping the reader closes the pipe: the next write gets EPIPE, as under `| head -1`.
    }
    let status = child.wait().expect("tool ends");
    ClosedPipeRun { first_line, status, stderr: stderr.finish() }
}
