//! Every line the release-phase follower says to a person, in one place: the orchestration
//! (`follow`, `verify`) reports what happened as a [`Following`] event and shows it; the words,
//! marks and streams are decided here. The report (`report.rs`) is the JSON side.

use std::time::Duration;

use cli_kit::output::{count, one, red};
use cli_kit::{format_duration, Line, Render, Tone};
use pg_locks::{Enforcement, Wait};

use crate::report::FormationDyno;

fn pids(list: &[i32]) -> String {
    list.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

/// What following a release phase did or saw.
#[derive(Debug)]
pub enum Following<'a> {
    /// The watch could not start: nothing will be cancelled.
    WatchNotStarted { error: String },
    /// The watch stopped mid-phase: nothing more will be cancelled.
    WatchLost { error: String },
    /// The release dyno was found.
    DynoFound { version: u64, dyno: &'a str, age: String, command: &'a str },
    /// migrate-guard runs inside the release dyno: this follower only watches.
    GuardInside { second_line: pg_locks::Budgets },
    /// The output stream cannot be read for now.
    OutputUnavailable { error: String },
    /// One line of the release command's output.
    Output(&'a str),
    /// A statement of the release began to wait.
    Waits(&'a Wait),
    /// …and got its lock.
    GotLock,
    /// The budget cut a wait (verified or not).
    Cut { app: &'a str, enforcement: &'a Enforcement },
    /// The deadline passed.
    Deadline { limit: Duration },
    /// The stop could not be sent.
    StopFailed { dyno: &'a str, id: &'a str, error: String },
    /// No release dyno was seen.
    NoDynoToStop,
    /// The release's statements could not be cancelled.
    CancelFailed { error: String },
    /// The dyno is gone from the list.
    Stopped { dyno: &'a str },
    /// It is still listed.
    StillListed { dyno: &'a str, app: &'a str },
    /// The release's statements were cancelled, and seen ended.
    Cancelled { pids: &'a [i32] },
    /// Some still run after the cancel.
    StillRunning { pids: &'a [i32] },
    /// Every formation dyno is up on the release.
    FormationUp { app: &'a str, version: u64, dynos: usize, took: Duration },
    /// These are not.
    FormationNotUp { dynos: Vec<&'a FormationDyno>, limit: Duration },
}

impl Render for Following<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Following::WatchNotStarted { error } => one(Warn, format!("lock watch off, nothing will be cancelled: {error}")),
            Following::WatchLost { error } => {
                one(Warn, format!("lock watch off, nothing more will be cancelled: {error}"))
            }
            Following::DynoFound { version, dyno, age, command } => {
                one(Note, format!("Release phase of v{version} running on {dyno} (started {age} ago): {command}"))
            }
            Following::GuardInside { second_line } => one(
                Note,
                match (second_line.wait, second_line.hold) {
                    (None, None) => "the release phase is guarded from inside the release dyno by migrate-guard: its decisions are in the output; this follower watches and cancels nothing".to_string(),
                    _ => format!(
                        "the release phase is guarded from inside the release dyno by migrate-guard: its decisions are in the output; this follower stays a second line, {} (after the guard would have)",
                        migration_policy::text::second_line_words(*second_line)
                    ),
                },
            ),
            Following::OutputUnavailable { error } => {
                one(Warn, format!("release output unavailable for now ({error}); following its status"))
            }
            Following::Output(text) => one(Say, *text),
            Following::Waits(w) => crate::text::wait_lines(w, "release").into_iter().map(|l| Line::new(Note, l)).collect(),
            Following::GotLock => one(Note, "✓ the release's statement got its lock"),
            Following::Cut { app, enforcement: e } => {
                if e.verified {
                    let mut lines: Vec<Line> =
                        crate::text::enforcement_lines(e, "release").into_iter().map(|l| Line::new(Say, l)).collect();
                    lines.push(Line::new(Say, format!("   The release phase will fail and {app} stays on its current release.")));
                    lines
                } else {
                    one(Bad, crate::text::enforcement_lines(e, "release").join(" "))
                }
            }
            Following::Deadline { limit } => one(
                Say,
                format!("{} Deadline {}: stopping the release phase", red().apply_to("⏱"), format_duration(*limit)),
            ),
            Following::StopFailed { dyno, id, error } => one(Bad, format!("could not stop {dyno} ({id}): {error}")),
            Following::NoDynoToStop => one(Warn, "the release dyno was never seen; nothing to stop by id"),
            Following::CancelFailed { error } => one(Bad, format!("could not cancel the release's statements: {error}")),
            Following::Stopped { dyno } => one(Say, format!("✓ {dyno} stopped (verified: gone from the dyno list)")),
            Following::StillListed { dyno, app } => {
                one(Bad, format!("{dyno} is still listed 30s after the stop: heroku ps -a {app}"))
            }
            Following::Cancelled { pids: p } => one(Say, format!("✓ cancelled the release's statements (pids {})", pids(p))),
            Following::StillRunning { pids: p } => one(Bad, format!("still running after the cancel: pids {}", pids(p))),
            Following::FormationUp { app, version, dynos, took } => one(
                Ok,
                format!("{} of {app} up on v{version} (in {})", count(*dynos, "dyno"), format_duration(*took)),
            ),
            Following::FormationNotUp { dynos, limit } => dynos
                .iter()
                .map(|d| {
                    let on = d.release_version.map(|v| format!("v{v}")).unwrap_or_else(|| "no release".into());
                    Line::new(Bad, format!("{} NOT VERIFIED after {}: {} on {on}", d.name, format_duration(*limit), d.state))
                })
                .collect(),
        }
    }
}
