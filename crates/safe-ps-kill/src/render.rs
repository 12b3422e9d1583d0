//! Every line safe-ps-kill says to a person, in one place: the orchestration (`lib.rs`,
//! `dbcheck`) reports what happened as a [`Said`] and shows it; the words, marks and streams
//! are decided here. The JSON side is the typed report (`report.rs`).

use std::time::{Duration, SystemTime};

use cli_kit::output::{bold, count, dim, one, red};
use cli_kit::{format_duration, Line, Render, ResolvedDatabase, Tone};
use heroku_api::Dyno;
use pg_locks::Snapshot;

use crate::report::{ReleasePhaseNote, WaitingStatement};

/// What happened to one stopped dyno.
#[derive(Debug)]
pub enum Fate<'a> {
    /// Seen gone after `took`; the dyno its formation started in its place, when one did.
    Gone { took: Duration, replaced_by: Option<&'a (String, String)> },
    /// Interrupted before it was seen gone.
    Unconfirmed,
    /// Still listed at the deadline, in this state.
    StillListed { waited: Duration, state: &'a str },
}

/// Something safe-ps-kill did or saw.
#[derive(Debug)]
pub enum Said<'a> {
    /// A type name resolved to its one dyno.
    Resolved { process_type: &'a str, dyno: &'a str },
    /// What will be stopped, as a table.
    Plan { dynos: &'a [Dyno], now: SystemTime },
    /// What stopping a release dyno does to its release.
    ReleasePhase { app: &'a str, note: &'a ReleasePhaseNote },
    /// The releases could not be read.
    ReleasesUnread { app: &'a str, error: String },
    /// `--dry-run`: nothing stopped, and the command that would.
    DryRun { command: String },
    /// Ctrl-C before the stop.
    InterruptedBeforeStop,
    /// What became of one stopped dyno.
    Outcome { app: &'a str, dyno: &'a Dyno, fate: Fate<'a> },
    /// Stopped dynos that ran statements: their sessions may live on.
    MayStillRun { dynos: Vec<&'a str> },
    /// The database check could not run.
    CheckSkipped { reason: &'a str },
    /// The database check: DDL left waiting, what holds it up, and the fix.
    DatabaseCheck {
        db: &'a ResolvedDatabase,
        snap: &'a Snapshot,
        blocked_total: usize,
        waiting: &'a [WaitingStatement],
    },
}

impl Render for Said<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Said::Resolved { process_type, dyno } => one(Say, format!("{process_type} → {}", bold().apply_to(dyno))),
            Said::Plan { dynos, now } => plan_lines(dynos, *now).into_iter().map(|l| Line::new(Say, l)).collect(),
            Said::ReleasePhase { app, note } => one(Say, release_phase_line(note, app)),
            Said::ReleasesUnread { app, error } => one(
                Warn,
                format!("could not read {app}'s releases to say what stopping the release dyno does: {error}"),
            ),
            Said::DryRun { command } => one(Say, format!("Dry run: nothing was stopped. To stop: {command}")),
            Said::InterruptedBeforeStop => one(Warn, "interrupted before the stop was sent: nothing was stopped"),
            Said::Outcome { app, dyno, fate } => outcome_lines(app, dyno, fate),
            Said::MayStillRun { dynos } => one(
                Say,
                format!(
                    "Statements started by {} may still be running or waiting on locks: stopping a dyno does not end its database sessions.",
                    dynos.join(", ")
                ),
            ),
            Said::CheckSkipped { reason } => one(Warn, format!("database check skipped: {reason}")),
            Said::DatabaseCheck { db, snap, blocked_total, waiting } => database_lines(db, snap, *blocked_total, waiting),
        }
    }
}

fn outcome_lines(app: &str, d: &Dyno, fate: &Fate) -> Vec<Line> {
    match fate {
        Fate::Gone { took, replaced_by } => {
            let replaced = match replaced_by {
                Some((name, state)) if *name == d.name => format!("; its formation started a new {name} ({state})"),
                Some((name, state)) => format!("; its formation started {name} in its place ({state})"),
                None => String::new(),
            };
            one(Tone::Ok, format!("{} stopped (gone after {}){replaced}", d.name, format_duration(*took)))
        }
        Fate::Unconfirmed => one(
            Tone::Warn,
            format!(
                "interrupted: a stop was sent to {} (by id {}) and it is not yet confirmed gone; check with `heroku ps -a {app}` or `safe-ps-kill {} -a {app} --dry-run`",
                d.name, d.id, d.name
            ),
        ),
        Fate::StillListed { waited, state } => one(
            Tone::Bad,
            format!(
                "{} {} after {} — the platform accepted the stop but the dyno is still listed ({state}); check `heroku ps -a {app}` and retry by name",
                d.name,
                red().apply_to("STILL RUNNING"),
                format_duration(*waited),
            ),
        ),
    }
}

/// What stopping a release dyno does to its release, in a sentence.
pub fn release_phase_line(n: &ReleasePhaseNote, app: &str) -> String {
    let stays = n.stays_on.map(|v| format!("v{v}")).unwrap_or_else(|| "its current release".into());
    match n.status.as_str() {
        "pending" => format!(
            "{} runs the release phase of v{}: stopping it marks v{} failed, and {app} stays on {stays} (no dyno restarts onto v{}).",
            n.dyno, n.version, n.version, n.version
        ),
        status => format!(
            "{} belongs to v{}, which is {status}: stopping it changes no release ({app} runs {stays}).",
            n.dyno, n.version
        ),
    }
}

/// The plan as a table: what will be stopped, with each dyno's age at `now`.
pub fn plan_lines(dynos: &[Dyno], now: SystemTime) -> Vec<String> {
    let rows: Vec<[String; 7]> = dynos
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                d.process_type.clone(),
                d.state.clone(),
                d.age(now).map(format_duration).unwrap_or_else(|| "?".into()),
                d.size.clone().unwrap_or_else(|| "-".into()),
                d.release.as_ref().map(|r| format!("v{}", r.version)).unwrap_or_else(|| "-".into()),
                d.command.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "TYPE", "STATE", "AGE", "SIZE", "RELEASE", "COMMAND"].map(String::from);
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (i, w) in widths.iter_mut().enumerate() {
            *w = (*w).max(r[i].chars().count());
        }
    }
    let mut lines = vec![format!("Will stop {}:", count(dynos.len(), "dyno"))];
    for (n, r) in std::iter::once(&header).chain(rows.iter()).enumerate() {
        let mut line = String::from("  ");
        for (i, w) in widths.iter().enumerate() {
            line.push_str(&format!("{:<w$}  ", r[i], w = *w));
        }
        line.push_str(&r[6]);
        lines.push(if n == 0 { dim().apply_to(line).to_string() } else { line });
    }
    lines
}

fn say(text: String) -> Line {
    Line::new(Tone::Say, text)
}

fn secs(x: Option<f64>) -> String {
    x.map(|x| format_duration(Duration::from_secs_f64(x.max(0.0)))).unwrap_or_else(|| "?".into())
}

/// The database check for people: each DDL left waiting, who holds it up, the command that
/// clears it.
fn database_lines(
    db: &ResolvedDatabase,
    snap: &Snapshot,
    blocked_total: usize,
    waiting: &[WaitingStatement],
) -> Vec<Line> {
    let selector = db.selector_args();
    let mut out = Vec::new();
    if waiting.is_empty() {
        if blocked_total == 0 {
            out.push(Line::new(Tone::Ok, format!("No statement on {} is waiting on a lock.", db.describe())));
        } else {
            out.push(say(format!(
                "No DDL is waiting on {}, but {blocked_total} sessions wait on locks: pg-blockers {selector}",
                db.describe()
            )));
        }
    } else {
        out.push(say(format!(
            "{} on {}:",
            red().apply_to(format!("{} waiting for a lock", count(waiting.len(), "DDL statement"))),
            db.describe()
        )));
    }
    for w in waiting {
        let Some(s) = snap.get(w.pid) else { continue };
        let lock = w
            .waiting_for
            .as_ref()
            .map(|l| format!(" ({} on {})", l.mode, l.object.as_deref().unwrap_or(&l.locktype)))
            .unwrap_or_default();
        // PostgreSQL 12 and 13 have no pg_locks.waitstart: another role's wait is then untimed.
        let waited = w
            .wait_secs
            .map(|x| format!(" {}", secs(Some(x))))
            .unwrap_or_else(|| " (for how long, hidden from this credential)".into());
        out.push(say(format!(
            "  pid {} [{}] waits{waited}: {}{lock} — blocking {}",
            w.pid,
            w.application_name,
            s.query_line(80),
            w.blocking_total
        )));
        if let Some(root) = w.root_blocker.and_then(|r| snap.get(r)) {
            // Another role's session: its state and age read NULL to this credential.
            let how = match (root.state.as_deref(), root.xact_age_secs) {
                (Some(state), Some(_)) => format!("{state} for {}", secs(root.xact_age_secs)),
                (Some(state), None) => format!("{state}, its age hidden from this credential"),
                (None, _) => "its state and age hidden from this credential".to_string(),
            };
            out.push(say(format!(
                "    held up by pid {} ({}, {how}): {}",
                root.pid,
                root.application_name,
                root.query_line(60)
            )));
        }
        out.push(say(format!(
            "    {} {}   (the DDL rolls back; the {} behind it run)",
            bold().apply_to("fix now:"),
            w.command,
            w.blocking_total
        )));
    }
    if !waiting.is_empty() {
        out.push(say(format!("  see everything: pg-blockers {selector}")));
    }
    if let (Some(f), true) = (db.fill_in(), blocked_total > 0) {
        out.push(say(format!("  to run these: {f}")));
    }
    out
}
