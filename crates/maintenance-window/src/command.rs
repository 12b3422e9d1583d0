//! Running COMMAND inside the window: inherited stdio, HEROKU_APP set, signals handled.
//!
//! Ctrl-C on a terminal reaches COMMAND directly (it shares our process group); a SIGINT or
//! SIGTERM sent to maintenance-window alone is forwarded. A second interrupt stops waiting.

use std::process::Command;
use std::time::Duration;

use cli_kit::{interrupt, Output};

/// How COMMAND ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its exit status (128+N for a signal; 127 when it could not start).
    Status(i32),
    /// We stopped waiting after a second interrupt.
    Abandoned,
}

/// Runs `argv` with `HEROKU_APP=app`.
pub fn run(out: &Output, argv: &[String], app: &str) -> Ended {
    let mut child = match Command::new(&argv[0]).args(&argv[1..]).env("HEROKU_APP", app).spawn() {
        Ok(c) => c,
        Err(e) => {
            out.bad(format!("cannot start `{}`: {e}", argv[0]));
            return Ended::Status(127);
        }
    };
    let mut forwarded_terms = 0;
    let mut forwarded_ints = 0;
    let base_interrupts = interrupt::count();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                return Ended::Status(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
            }
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
            out.warn(format!("second interrupt: no longer waiting for `{}` (pid {})", argv[0], child.id()));
            return Ended::Abandoned;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
