//! `maintenance-window status`: an open window, from this machine's journal or the live app.

use cli_kit::{api_client, Exit, Output};

use crate::live::{restore_command, Live};
use crate::render::Status;
use crate::report::StatusReport;
use crate::{cli, finish, journal, window, TOOL};

/// Shows whether a window is open, and how to close it.
pub fn run(args: cli::AppOnly) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    let j = journal::load(&app)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    // The live state is what matters most when no journal is here; with one, the journal
    // still answers if the API does not.
    let live = match (Live::read(&client, &app), &j) {
        (Ok(l), _) => Some(l),
        (Err(e), Some(_)) => {
            out.show(&Status::LiveUnread { app: &app, error: cli_kit::one_line(&e) });
            None
        }
        (Err(e), None) => return Err(e),
    };
    let opened_elsewhere = j.is_none() && live.as_ref().is_some_and(|l| l.maintenance);
    match (&j, &live) {
        (Some(j), _) => {
            out.show(&Status::Journaled {
                app: &app,
                pid: j.pid,
                alive: process_exists(j.pid),
                held: window::describe(j),
                now: live.as_ref().map(describe_live),
                restore: restore_command(j),
            });
        }
        (None, Some(l)) if l.maintenance => {
            out.show(&Status::OpenedElsewhere { app: &app, unjournaled: l.unjournaled(&app), now: describe_live(l) });
        }
        _ => out.show(&Status::NoWindow { app: &app }),
    }
    let open = j.is_some() || opened_elsewhere;
    let report = StatusReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        restore_command: j.as_ref().map(restore_command),
        app,
        open,
        opened_elsewhere,
        journal: j,
        live,
    };
    Ok(finish(&out, &report, if open { Exit::WindowOpen } else { Exit::Success }))
}

fn describe_live(l: &Live) -> String {
    let quantities: Vec<String> = l.quantities.iter().map(|(t, q)| format!("{t}={q}")).collect();
    format!("maintenance {}, {}", if l.maintenance { "on" } else { "off" }, quantities.join(", "))
}

/// Whether a process with this pid exists on this machine (portable: `kill(pid, 0)`, no
/// /proc): it exists when the signal could be sent, or when only permission was missing.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_live_process_exists_and_a_dead_one_does_not() {
        assert!(super::process_exists(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!super::process_exists(pid), "reaped: gone");
        assert!(!super::process_exists(0));
    }
}
