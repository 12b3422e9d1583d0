//! `migrate-restart release -- COMMAND` and `--next`: follow a release that does not exist yet.
//! The platform's `git push` waits for the release phase and exits 0 even when it failed, so a
//! follower started after it finds a finished release; this one notes the app's newest release,
//! runs COMMAND (its output relayed as it comes, to stderr), and picks up the release COMMAND
//! creates as soon as the API lists it — while the push is still streaming — then follows and
//! guards it as `migrate-restart release` does.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_kit::{fail, interrupt, usage, Exit, Output};
use heroku_api::{Client, Release};

use super::render;
use crate::cli::ReleaseArgs;
use crate::report::DeployStep;

/// How often the app's newest release is read while waiting for the new one.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// What to wait for.
pub enum Plan {
    /// Run COMMAND and follow the release it creates.
    Command(Vec<String>),
    /// Wait up to the duration for the next release (made elsewhere).
    Next(Duration),
}

impl Plan {
    /// From the arguments: None to follow an existing release. Bad input is a usage error and
    /// nothing runs: `--` with no COMMAND, a COMMAND that cannot be started, a VERSION with either.
    pub fn from_args(args: &ReleaseArgs, dash_dash: bool) -> anyhow::Result<Option<Plan>> {
        let command = args.command.clone();
        if dash_dash && command.is_empty() {
            return Err(usage(
                "no COMMAND after `--`: e.g. migrate-restart release -a APP -- git push heroku main (or --next to wait for a deploy made elsewhere)",
            ));
        }
        if !command.is_empty() && (args.release.is_some() || args.next) {
            return Err(usage("give a VERSION, --next or -- COMMAND, not several"));
        }
        if command.is_empty() {
            return Ok(args.next.then_some(Plan::Next(args.next_timeout)));
        }
        cli_kit::program::check_startable(&command, "nothing was run")?;
        Ok(Some(Plan::Command(command)))
    }

    /// What will happen, for the plan line.
    pub fn describe(&self, app: &str) -> String {
        match self {
            Plan::Command(c) => {
                format!(
                    "Will run `{}` and follow the release it creates from the moment it exists",
                    cli_kit::shell::join(c)
                )
            }
            Plan::Next(t) => {
                format!("Will wait up to {} for the next release of {app} and follow it", cli_kit::format_duration(*t))
            }
        }
    }
}

/// A deploy step under way.
pub struct Running {
    child: Option<Child>,
    relay: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    /// What the report says of it.
    pub step: DeployStep,
}

/// How waiting for the new release ended.
pub enum Waited {
    /// The release exists (its phase may be running).
    Found(Release),
    /// COMMAND ended and created no release.
    NoRelease,
    /// `--next` waited its whole timeout.
    TimedOut,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

/// Notes the newest release, starts COMMAND (if any) and waits for a newer release.
pub fn start(client: &Client, out: &Output, app: &str, plan: Plan) -> anyhow::Result<(Running, Waited)> {
    let before = client.latest_release(app)?.map(|r| r.version);
    let (command, child, relay) = match &plan {
        Plan::Command(argv) => {
            let (child, relay) = spawn(argv)?;
            (argv.clone(), Some(child), relay)
        }
        Plan::Next(_) => (Vec::new(), None, None),
    };
    let mut running = Running {
        child,
        relay,
        started: Instant::now(),
        step: DeployStep {
            command,
            exit_status: None,
            before_version: before,
            release_version: None,
            seen_after_ms: None,
        },
    };
    let timeout = match plan {
        Plan::Next(t) => Some(t),
        Plan::Command(_) => None,
    };
    let waited = running.wait_for_release(client, out, app, timeout)?;
    Ok((running, waited))
}

fn spawn(argv: &[String]) -> anyhow::Result<(Child, Option<std::thread::JoinHandle<()>>)> {
    // Its stdout goes to this tool's stderr: with --json, stdout holds the report alone.
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(Exit::Usage, format!("cannot start `{}`: {e}; nothing was run", argv[0])))?;
    let relay = child.stdout.take().map(|mut from| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&buf[..n]).and_then(|_| err.flush());
            }
        })
    });
    Ok((child, relay))
}

impl Running {
    fn wait_for_release(
        &mut self,
        client: &Client,
        out: &Output,
        app: &str,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Waited> {
        loop {
            if interrupt::requested() {
                return Ok(Waited::Interrupted);
            }
            // Read whether COMMAND ended before the last look, so a release it made is never missed.
            let ended = self.poll_exit();
            if let Some(r) = client.latest_release(app)?.filter(|r| Some(r.version) > self.step.before_version) {
                self.step.release_version = Some(r.version);
                self.step.seen_after_ms = Some(self.started.elapsed().as_millis() as u64);
                out.debug(format!(
                    "v{} appeared after {}",
                    r.version,
                    cli_kit::format_duration(self.started.elapsed())
                ));
                return Ok(Waited::Found(r));
            }
            if ended {
                return Ok(Waited::NoRelease);
            }
            if timeout.is_some_and(|t| self.started.elapsed() >= t) {
                return Ok(Waited::TimedOut);
            }
            std::thread::sleep(LOOK_EVERY);
        }
    }

    /// True once COMMAND has ended (always true without one).
    fn poll_exit(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else { return false };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.step.exit_status = Some(cli_kit::shell::status_code(status));
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// After the release phase: COMMAND ends by itself (a push returns when the phase has
    /// ended); it is waited for a while, then left to run.
    pub fn finish(&mut self, out: &Output, grace: Duration) {
        let until = Instant::now() + grace;
        while self.child.is_some() && !self.poll_exit() {
            if Instant::now() >= until || interrupt::requested() {
                out.show(&render::ReleaseEnd::DeployStepStillRunning {
                    command: cli_kit::shell::join(&self.step.command),
                });
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.step.exit_status.is_some() {
            if let Some(r) = self.relay.take() {
                let _ = r.join();
            }
        }
    }
}
