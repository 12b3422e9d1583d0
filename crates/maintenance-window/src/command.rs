//! Running COMMAND inside the window: inherited stdio, HEROKU_APP set, signals handled.
//!
//! Ctrl-C on a terminal reaches COMMAND directly (it shares our process group); a SIGINT or
//! SIGTERM sent to maintenance-window alone is forwarded. A second interrupt stops waiting.
//!
//! COMMAND's stdout is inherited only when ours is a terminal and not `--json`. Otherwise it is
//! relayed line by line through [`Output`]: under `--json` stdout carries our one document and
//! nothing else, and a reader that closes our stdout (`| head`) must not kill COMMAND with
//! SIGPIPE in the middle of the window — its lines move to stderr instead.

use std::io::{BufRead, IsTerminal};
use std::process::{Command, Stdio};
use std::time::Duration;

use cli_kit::{interrupt, Output};

use crate::render::Running;

/// How COMMAND ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its exit status (128+N for a signal).
    Status(i32),
    /// It could not be started (exec failed in a way the check before the window did not
    /// foresee): it never ran.
    CannotStart,
    /// We stopped waiting after a second interrupt.
    Abandoned,
}

/// Runs `argv` with `HEROKU_APP=app`.
pub fn run(out: &Output, argv: &[String], app: &str) -> Ended {
    let relay = out.is_json() || !std::io::stdout().is_terminal();
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).env("HEROKU_APP", app);
    if relay {
        command.stdout(Stdio::piped());
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.show(&Running::CannotStart { program: &argv[0], error: e.to_string() });
            return Ended::CannotStart;
        }
    };
    let relayed = child.stdout.take().map(|pipe| relay_lines(out.clone(), pipe));
    let ended = wait(out, &mut child, argv);
    if let Some(done) = relayed {
        // A daemon COMMAND started may hold the pipe open: the rest of its output is not ours.
        let _ = done.recv_timeout(Duration::from_secs(2));
    }
    ended
}

/// Copies COMMAND's stdout to [`Output::say`] on a thread; the receiver hears when the pipe closed.
fn relay_lines(out: Output, pipe: std::process::ChildStdout) -> std::sync::mpsc::Receiver<()> {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(1..)) {
            let text = String::from_utf8_lossy(&line);
            out.show(&Running::CommandOutput(text.strip_suffix('\n').unwrap_or(&text)));
            line.clear();
        }
        let _ = done.send(());
    });
    finished
}

fn wait(out: &Output, child: &mut std::process::Child, argv: &[String]) -> Ended {
    let mut forwarded_terms = 0;
    let mut forwarded_ints = 0;
    let base_interrupts = interrupt::count();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ended::Status(cli_kit::shell::status_code(status)),
            Ok(None) => {}
            Err(_) => return Ended::Abandoned,
        }
        while forwarded_terms < interrupt::terms() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            forwarded_terms += 1;
        }
        while forwarded_ints < interrupt::sent_ints() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGINT);
            }
            forwarded_ints += 1;
        }
        if interrupt::count() >= base_interrupts + 2 {
            out.show(&Running::SecondInterrupt { program: &argv[0], pid: child.id() });
            return Ended::Abandoned;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
