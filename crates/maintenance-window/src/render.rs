//! Every line maintenance-window says to a person, in one place. The orchestration reports
//! what happened as a typed event of its phase — [`Deciding`], [`Opening`], [`Running`],
//! [`Closing`], [`Status`], [`Restoring`] — and shows it (`out.show(&render::Closing::Closed
//! { … })`); the words, the marks and the stream are decided here. The JSON documents are the
//! typed reports (`report.rs`). Refusals stay one line beside the check that raises them.

use cli_kit::output::{bold, count, one, red};
use cli_kit::{format_duration, Line, Render, Tone};
use std::time::Duration;

use crate::plan::Decision;
use crate::report::Timings;

/// `plan`, and the first thing a window run says: whether a window is needed, and which files
/// make it so.
#[derive(Debug)]
pub enum Deciding<'a> {
    /// The decision.
    Decision { app: &'a str, decision: &'a Decision },
}

impl Render for Deciding<'_> {
    fn lines(&self) -> Vec<Line> {
        match self {
            Deciding::Decision { app, decision } => {
                decision_lines(app, decision).into_iter().map(|l| Line::new(Tone::Say, l)).collect()
            }
        }
    }
}

/// Whether a window is needed and which files make it so, for people.
pub fn decision_lines(app: &str, d: &Decision) -> Vec<String> {
    let range = format!("{}..{}", short(&d.base), d.target);
    if !d.needed {
        return vec![format!(
            "No window needed for {app}: nothing changed under {} ({range}, base = {}).",
            cli_kit::shell::join(&d.pathspecs),
            d.base_source
        )];
    }
    let mut lines = vec![format!(
        "{} for {app}: {} changed under {} ({range}, base = {}):",
        bold().apply_to("A window is needed"),
        count(d.files.len(), "file"),
        cli_kit::shell::join(&d.pathspecs),
        d.base_source
    )];
    lines.extend(d.files.iter().map(|f| format!("  {f}")));
    lines
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// `12.3s` for a report.
pub fn secs(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

/// What a window will do, and opening it.
#[derive(Debug)]
pub enum Opening<'a> {
    /// Before the confirmation: what the window does.
    WillOpen {
        app: &'a str,
        /// `(type, quantity before)` for each type scaled to 0.
        scaled: Vec<(&'a str, u32)>,
        /// The promotion, described.
        release: Option<String>,
        command: String,
    },
    /// A promotion starts the release phase; how the follow guards it.
    ReleasePhaseFirst { app: &'a str, budget: Option<Duration>, watched: bool },
    /// How to put everything back if this run dies.
    RestoreWith { command: String },
    /// Maintenance is on (and types scaled to 0).
    MaintenanceOn { app: &'a str, scaled: Vec<&'a str> },
    /// The promotion made its release.
    Released { app: &'a str, version: u64, from: String },
}

impl Render for Opening<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Opening::WillOpen { app, scaled, release, command } => {
                let scaling = if scaled.is_empty() {
                    String::new()
                } else {
                    let each: Vec<String> = scaled.iter().map(|(t, q)| format!("{t} ({q})")).collect();
                    format!(", scale {} to 0", each.join(", "))
                };
                let release = release.as_ref().map(|r| format!(", release {r}")).unwrap_or_default();
                one(
                    Say,
                    format!("Will turn maintenance on for {app}{scaling}{release}, run `{command}`, then put everything back."),
                )
            }
            Opening::ReleasePhaseFirst { app, budget, watched } => {
                let guard = match (budget, watched) {
                    (Some(budget), true) => format!(
                        "; a DDL statement of it that waits on a lock longer than {} is cancelled (the release then fails and the window holds)",
                        format_duration(*budget)
                    ),
                    (None, true) => "; its lock waits are watched, nothing is cancelled (--lock-wait off)".into(),
                    (_, false) => "; no database to watch".into(),
                };
                one(
                    Say,
                    format!("The release starts {app}'s release phase: COMMAND runs only after it succeeded{guard}."),
                )
            }
            Opening::RestoreWith { command } => {
                one(Note, format!("If this run dies, put everything back from any machine with:\n  {command}"))
            }
            Opening::MaintenanceOn { app, scaled } => {
                let scaled =
                    if scaled.is_empty() { String::new() } else { format!("; {} scaled to 0", scaled.join(", ")) };
                one(Note, format!("maintenance on for {app}{scaled}"))
            }
            Opening::Released { app, version, from } => one(Note, format!("released v{version} on {app} from {from}")),
        }
    }
}

/// The release phase and COMMAND, inside the window or without one.
#[derive(Debug)]
pub enum Running<'a> {
    /// No window needed: a promotion released with the site up.
    ReleasedWithoutWindow { app: &'a str, version: u64, from: String },
    /// No window needed: COMMAND runs with the site up.
    WithoutWindow { command: String },
    /// The release phase did not succeed, so COMMAND was not run (no window was open).
    CommandNotRun { version: u64, phase: &'static str, command: String },
    /// The release phase succeeded.
    PhaseSucceeded { version: u64 },
    /// It did not: how, and its last lines.
    PhaseEnded { version: u64, phase: &'static str, tail: &'a [String] },
    /// COMMAND could not start.
    CannotStart { program: &'a str, error: String },
    /// One line of COMMAND's output (relayed when stdout is not a terminal).
    CommandOutput(&'a str),
    /// A second Ctrl-C: COMMAND is no longer waited for.
    SecondInterrupt { program: &'a str, pid: u32 },
}

impl Render for Running<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Running::ReleasedWithoutWindow { app, version, from } => {
                one(Say, format!("Released v{version} on {app} from {from}, without maintenance."))
            }
            Running::WithoutWindow { command } => one(Say, format!("Running `{command}` without maintenance.")),
            Running::CommandNotRun { version, phase, command } => {
                one(Bad, format!("The release phase of v{version} {phase}: `{command}` was not run."))
            }
            Running::PhaseSucceeded { version } => one(Ok, format!("the release phase of v{version} succeeded")),
            Running::PhaseEnded { version, phase, tail } => {
                let mut lines = one(Bad, format!("the release phase of v{version} {phase}"));
                lines.extend(tail.iter().map(|l| Line::new(Say, format!("  {} {l}", red().apply_to("│")))));
                lines
            }
            Running::CannotStart { program, error } => one(Bad, format!("cannot start `{program}`: {error}")),
            Running::CommandOutput(text) => one(Say, *text),
            Running::SecondInterrupt { program, pid } => {
                one(Warn, format!("second interrupt: no longer waiting for `{program}` (pid {pid})"))
            }
        }
    }
}

/// How a window ended: closed (or put back after COMMAND failed), or held open.
#[derive(Debug)]
pub enum Closing<'a> {
    /// Everything put back; how long the site was down, step by step.
    Closed { failed: bool, timings: &'a Timings },
    /// COMMAND could not start inside the window: closed at once, everything put back.
    ClosedCommandNotStarted { command: String, timings: &'a Timings },
    /// The window stays open: why, what is held, how to reopen.
    Held { why: &'a str, held: Vec<String>, journal: Option<String>, app: &'a str, restore: String },
}

impl Render for Closing<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Closing::Closed { failed, timings: t } => {
                let verdict = if *failed { "restored after failure" } else { "closed" };
                one(
                    Ok,
                    format!(
                        "window {verdict}: the site was in maintenance for {} (open {}, promote {}, release phase {}, command {}, close {}); {} API calls inside",
                        secs(t.window_ms),
                        secs(t.open_ms),
                        secs(t.promote_ms),
                        secs(t.release_phase_ms),
                        secs(t.command_ms),
                        secs(t.close_ms),
                        t.api_calls_in_window
                    ),
                )
            }
            Closing::ClosedCommandNotStarted { command, timings: t } => one(
                Bad,
                format!(
                    "`{command}` could not start, so nothing was deployed: window closed at once, everything put back (the site was in maintenance for {})",
                    secs(t.window_ms)
                ),
            ),
            Closing::Held { why, held, journal, app, restore } => {
                let mut lines = one(
                    Bad,
                    format!("{} {why}. Holding the window; this is what is held:", red().apply_to("Window held:")),
                );
                lines.extend(held.iter().map(|l| Line::new(Say, format!("  {l}"))));
                lines.extend(journal.iter().map(|p| Line::new(Say, format!("  journal: {p}"))));
                lines.push(Line::new(Say, format!("Reopen with: maintenance-window restore -a {app}")));
                lines.push(Line::new(Say, format!("From another machine: {restore}")));
                lines
            }
        }
    }
}

/// `status`: an open window, from the journal or the live app.
#[derive(Debug)]
pub enum Status<'a> {
    /// The live state could not be read; the journal answers.
    LiveUnread { app: &'a str, error: String },
    /// A journaled window.
    Journaled { app: &'a str, pid: u32, alive: bool, held: Vec<String>, now: Option<String>, restore: String },
    /// In maintenance with no journal here: opened elsewhere.
    OpenedElsewhere { app: &'a str, unjournaled: String, now: String },
    /// No window.
    NoWindow { app: &'a str },
}

impl Render for Status<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Status::LiveUnread { app, error } => {
                one(Warn, format!("could not read {app}'s live state ({error}); showing the journal only"))
            }
            Status::Journaled { app, pid, alive, held, now, restore } => {
                let who = if *alive {
                    format!("pid {pid} may still be running it")
                } else {
                    format!("the process that opened it (pid {pid}) is gone")
                };
                let mut lines = one(Say, format!("{} for {app}: {who}", red().apply_to("An open maintenance window")));
                lines.extend(held.iter().map(|l| Line::new(Say, format!("  {l}"))));
                lines.extend(now.iter().map(|n| Line::new(Say, format!("  now: {n}"))));
                lines.push(Line::new(Say, format!("Put back exactly what was journaled: maintenance-window restore -a {app}")));
                lines.push(Line::new(Say, format!("From another machine: {restore}")));
                lines
            }
            Status::OpenedElsewhere { app, unjournaled, now } => vec![
                Line::new(Bad, unjournaled.clone()),
                Line::new(Say, format!("  now: {now}")),
                Line::new(
                    Say,
                    format!("Restore with the command the window printed when it opened (maintenance-window restore -a {app} --maintenance off --scale TYPE=N,… --confirm {app}), or ask whoever opened it."),
                ),
            ],
            Status::NoWindow { app } => one(Ok, format!("No open maintenance window for {app}.")),
        }
    }
}

/// `restore`: putting back what a window changed.
#[derive(Debug)]
pub enum Restoring<'a> {
    /// Nothing to put back.
    NothingOpen { app: &'a str },
    /// What will be put back, and from where.
    WillRestore { app: &'a str, plan: &'a str, from_journal: bool },
    /// Put back.
    Restored { app: &'a str, plan: &'a str },
}

impl Render for Restoring<'_> {
    fn lines(&self) -> Vec<Line> {
        match self {
            Restoring::NothingOpen { app } => {
                one(Tone::Ok, format!("No open maintenance window for {app}; nothing to restore."))
            }
            Restoring::WillRestore { app, plan, from_journal } => {
                let whence = if *from_journal { " (from this machine's journal)" } else { "" };
                one(Tone::Say, format!("Will put back on {app}: {plan}{whence}"))
            }
            Restoring::Restored { app, plan } => one(Tone::Ok, format!("restored {app}: {plan}")),
        }
    }
}
