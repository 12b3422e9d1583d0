//! Every line migrate-restart says to a person, in one place. The orchestration reports what
//! happened as a typed event of its phase — [`Before`], [`Preflight`], [`Attempting`],
//! [`Debris`], [`Ending`], [`Cleanup`], [`Restarting`], [`ReleaseStart`], [`ReleaseEnd`],
//! [`Planning`], [`Checking`] — and shows it (`out.show(&render::Concluded::Finished { … })`); how
//! that reads — the words, the mark, which stream — is decided here and nowhere else. The JSON
//! documents are the typed reports (`report.rs`); these are their human side, said as the run
//! goes. Errors that end a run (refusals, bad input) stay one line beside the check that
//! raises them, as `cli_kit::error` prints them.

use std::collections::VecDeque;
use std::time::Duration;

use cli_kit::output::{bold, count, one, red, yellow};
use cli_kit::{format_duration, Line, Render, Tone};
use migration_policy::drive::DebrisEvent;
use migration_policy::lockwatch::WatchEvent;
use migration_policy::preflight::Finding;
use pg_locks::Enforcement;

use crate::report::Verdict;

/// What a run or a follow will do, said before anything starts.
#[derive(Debug)]
pub enum Before<'a> {
    /// What a run will do, before the confirmation.
    WillRun {
        app: &'a str,
        command: &'a str,
        /// ` (cnb: through launcher…)`, already worded by the platform.
        platform_note: String,
        /// How the lock timeout is applied.
        in_force: String,
        statement_timeout: Option<Duration>,
        retries: u32,
        then: String,
    },
    /// What `follow` will do, before the confirmation.
    WillFollow { dyno: &'a str, app: &'a str, then: String },
    /// A one-off dyno is running detached: how to pick it up from elsewhere.
    PickUpWith { command: String },
    /// The run could not be recorded on this machine (the printed command still works).
    PendingNotSaved { error: String },
    /// The watch reads the app's direct URL instead of the pooled one.
    WatchReadsDirect { direct: &'a str, app: &'a str },
    /// `--beside-release-phase`: a release phase runs, and the run goes ahead beside it.
    BesideReleasePhase { app: &'a str, version: Option<u64>, dyno: Option<&'a str> },
    /// `--lock-timeout` was given: its name is now `--lock-wait`.
    LockTimeoutRenamed,
    /// `--plan`'s broken queries have stopped arriving.
    OldCodeGone { breaks: usize },
    /// `--allow-breaking`: the run goes ahead although they may still arrive.
    AllowBreaking { why: String },
}

impl Render for Before<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Before::WillRun { app, command, platform_note, in_force, statement_timeout, retries, then } => one(
                Say,
                format!(
                    "Will run `{command}` on a one-off dyno of {app}{platform_note} ({in_force}{}, up to {retries} retries after a lock timeout), then {then}.",
                    statement_timeout.map(|s| format!(", statement_timeout {}", format_duration(s))).unwrap_or_default(),
                ),
            ),
            Before::WillFollow { dyno, app, then } => one(Say, format!("Will follow {dyno} of {app} to its end, then {then}.")),
            Before::PickUpWith { command } => {
                one(Note, format!("If this terminal or connection goes away, pick it up from any machine with:\n  {command}"))
            }
            Before::PendingNotSaved { error } => {
                one(Warn, format!("could not record the run on this machine ({error}); the command below still works"))
            }
            Before::WatchReadsDirect { direct, app } => one(
                Note,
                format!("the lock watch and its budget read {direct} of {app} directly: through the pooler they would queue behind the site's own queries when its pool is full"),
            ),
            Before::LockTimeoutRenamed => one(
                Warn,
                "--lock-timeout is now --lock-wait, as on every tool that enforces the budget; the old name keeps working for now",
            ),
            Before::OldCodeGone { breaks } => one(
                Ok,
                format!(
                    "none of the {} the plan says this migration breaks arrived in {}: the old code is gone",
                    if *breaks == 1 { "1 query".to_string() } else { format!("{breaks} queries") },
                    format_duration(migration_policy::contract::WINDOW)
                ),
            ),
            Before::AllowBreaking { why } => one(Warn, format!("{why}; --allow-breaking: running the migration anyway")),
            Before::BesideReleasePhase { app, version, dyno } => one(
                Warn,
                format!(
                    "a release phase of {app} runs ({}): --beside-release-phase, so this migration runs beside it",
                    [version.map(|v| format!("v{v}")), dyno.map(str::to_string)].into_iter().flatten().collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }
}

/// The preflight: what on the database would make the migration wait.
#[derive(Debug)]
pub enum Preflight<'a> {
    /// The database goes through a pooler (it refused the startup options).
    ThroughPooler { database: String },
    /// `--wait-clear`: waiting for the findings to clear.
    WaitingToClear { limit: Duration, blockers: usize },
    /// Nothing would make the migration wait.
    Clear { database: String },
    /// No blocker seen, but sessions of other roles hold table locks of unknown age.
    Unvouched { database: String, unvouched: &'a [Finding] },
    /// Blockers found (then refused unless `--force`).
    Blockers { database: String, findings: &'a [Finding] },
    /// `--force`: starting anyway.
    Forced,
    /// `--plan`: findings of sessions in no planned lock's way, set aside.
    SetAside { findings: &'a [Finding] },
}

impl Render for Preflight<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Preflight::ThroughPooler { database } => one(
                Note,
                format!("{database} goes through a connection pooler (it refused the startup options): the preflight and the lock watch read the server's locks through it"),
            ),
            Preflight::WaitingToClear { limit, blockers } => {
                one(Note, format!("Waiting up to {} for {} to clear…", format_duration(*limit), count(*blockers, "blocker")))
            }
            Preflight::Clear { database } => {
                one(Ok, format!("preflight: nothing on {database} would make the migration wait"))
            }
            Preflight::Unvouched { database, unvouched } => {
                // Not an all-clear: this credential cannot see how old these transactions are.
                let mut lines = one(
                    Warn,
                    format!(
                        "preflight: no blocker seen on {database}, but table locks are held by {} of other roles, and this credential cannot see for how long; the lock timeout bounds the wait:",
                        count(unvouched.len(), "session")
                    ),
                );
                lines.extend(unvouched.iter().map(|f| Line::new(Warn, format!("  {}", f.detail))));
                lines
            }
            Preflight::Blockers { database, findings } => {
                let mut lines = one(
                    Say,
                    format!(
                        "{} on {database}: a migration's DDL would wait behind these, and every query on its tables behind it:",
                        red().apply_to("Preflight found blockers")
                    ),
                );
                lines.extend(
                    findings.iter().map(|f| Line::new(Say, format!("  {} {}", bold().apply_to(format!("[{}]", f.kind)), f.detail))),
                );
                lines
            }
            Preflight::SetAside { findings } => {
                let mut lines = one(
                    Note,
                    format!(
                        "preflight, narrowed to the plan: set aside {} holding no lock the migration's planned locks conflict with (the lock-wait budget still bounds any wait):",
                        count(findings.len(), "session")
                    ),
                );
                lines.extend(findings.iter().map(|f| Line::new(Note, format!("  [{}] {}", f.kind, f.detail))));
                lines
            }
            Preflight::Forced => {
                one(Warn, "--force: starting anyway; the lock timeout limits how long the DDL can hold up the app")
            }
        }
    }
}

/// Each attempt as it runs: its dyno, its output, the lock watch, the retry decision.
#[derive(Debug)]
pub enum Attempting<'a> {
    /// An attached attempt began.
    RunningAttached { command: &'a str, dyno: &'a str, in_force: String },
    /// A detached attempt began.
    RunningDetached { command: &'a str, dyno: &'a str, in_force: String },
    /// One line of the migration's own output.
    Output(&'a str),
    /// The slug's migrate-guard announced itself: the watch here steps back to a second line.
    GuardInTheSlug { second_line: pg_locks::Budgets },
    /// An event of the lock watch.
    Watch(&'a WatchEvent),
    /// The baseline a retry compares with could not be read.
    NoBaseline { error: String },
    /// A pooler refused PGOPTIONS.
    PoolerRefused { advice: String },
    /// …and nothing would bound the lock waits without them.
    PoolerRefusedUnwatched,
    /// …so once more without them, the budget enforced from outside.
    RetryWithoutPgoptions { budget: Duration },
    /// Output between two log reads may be missing (`history`: the stream dropped; otherwise a
    /// Fir session ended).
    LogGap { history: bool, since: &'a str, until: &'a str },
    /// A retry after a lock timeout.
    Retrying { cut_by_budget: bool, n: u32, of: u32, pause: Duration, ceiling: Duration },
    /// Ctrl-C in the pause between attempts.
    InterruptedBetweenAttempts,
}

impl Render for Attempting<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Attempting::RunningAttached { command, dyno, in_force } => {
                one(Note, format!("Running `{command}` on {dyno} ({in_force})…"))
            }
            Attempting::RunningDetached { command, dyno, in_force } => one(
                Note,
                format!("Running `{command}` on {dyno}, detached ({in_force}); it goes on if this terminal or connection goes away"),
            ),
            Attempting::Output(text) => one(Say, *text),
            Attempting::GuardInTheSlug { second_line } => one(
                Note,
                format!(
                    "the app's slug has migrate-guard: it guards this run from inside the dyno (its budget holds if this terminal goes away); the watch here stays as a second line, {}",
                    migration_policy::text::second_line_words(*second_line)
                ),
            ),
            Attempting::Watch(event) => watch_lines(event),
            Attempting::NoBaseline { error } => one(
                Warn,
                format!("could not read indexes and migration versions before starting ({error}); retries will not check what a failed attempt left"),
            ),
            Attempting::PoolerRefused { advice } => one(Warn, advice.clone()),
            Attempting::PoolerRefusedUnwatched => one(
                Bad,
                "no database is watched (--no-lock-watch, or no database known), so nothing would bound the migration's lock waits without PGOPTIONS: not retrying",
            ),
            Attempting::RetryWithoutPgoptions { budget } => one(
                Warn,
                format!(
                    "retrying once without PGOPTIONS; the lock-wait budget is enforced from outside at {}",
                    format_duration(*budget)
                ),
            ),
            Attempting::LogGap { history, since, until } => {
                let why = if *history {
                    "the log stream dropped and its history no longer reaches back to"
                } else {
                    "the log session ended and a Fir session has no history to reach back to"
                };
                one(Warn, format!("{why} {since}: output between then and {until} may be missing"))
            }
            Attempting::Retrying { cut_by_budget, n, of, pause, ceiling } => {
                let why = if *cut_by_budget {
                    "lock-wait budget: the migration's statement was cancelled after waiting past the budget"
                } else {
                    "lock timeout: the migration gave up waiting for a lock"
                };
                one(
                    Warn,
                    format!(
                        "{why} (attempt {n} of {of}); retrying in {} (backoff up to {}, with jitter)",
                        format_duration(*pause),
                        format_duration(*ceiling)
                    ),
                )
            }
            Attempting::InterruptedBetweenAttempts => one(Warn, "interrupted between attempts; nothing is running"),
        }
    }
}

/// What the check before a retry found (the one debris rule of [`migration_policy::drive`]).
#[derive(Debug)]
pub enum Debris<'a> {
    /// One finding, for this app.
    Found { app: &'a str, found: &'a DebrisEvent<'a> },
}

impl Render for Debris<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        let Debris::Found { app, found } = self;
        match found {
            DebrisEvent::Uncheckable { why } => not_checked(app, why),
            DebrisEvent::CheckFailed { error } => not_checked(app, error),
            DebrisEvent::AlreadyApplied { versions } => one(
                Warn,
                format!(
                    "already applied by the failed attempt (recorded since this run began): {}; the retry skips them",
                    versions.join(", ")
                ),
            ),
            DebrisEvent::DroppingInvalid { names, wait } => one(
                Note,
                format!(
                    "dropping the INVALID {} the failed attempt left: {} (DROP INDEX CONCURRENTLY waits up to {} for transactions using it; reads and writes go on)",
                    if names.len() == 1 { "index" } else { "indexes" },
                    names.join(", "),
                    format_duration(*wait)
                ),
            ),
            DebrisEvent::DroppedInvalid { names } => one(Ok, format!("dropped {} (verified gone)", names.join(", "))),
            DebrisEvent::DropFailed { error } => one(Bad, format!("could not drop it: {error}; not retrying")),
            DebrisEvent::InvalidLeft { names, drop_statements } => {
                let mut lines = one(
                    Bad,
                    format!(
                        "the failed attempt left {} INVALID (a cancelled CREATE INDEX CONCURRENTLY): a retry would fail on it or build a second copy. Not retrying. Drop it first, then run again:",
                        names.join(", ")
                    ),
                );
                lines.extend(drop_statements.iter().map(|s| Line::new(Say, format!("  {s}"))));
                lines.push(Line::new(
                    Say,
                    format!("(or re-run with --drop-invalid-indexes; see what holds the table: pg-blockers -a {app})"),
                ));
                lines
            }
        }
    }
}

/// The debris rule said: no retry without the check, and how to check by hand.
fn not_checked(app: &str, why: &str) -> Vec<Line> {
    let mut lines = one(
        Tone::Bad,
        format!(
            "not retrying: what the failed attempt left could not be checked ({why}); a retry could fail on an INVALID index it left or apply again what it recorded"
        ),
    );
    lines.push(Line::new(
        Tone::Say,
        format!(
            "Check by hand, then run again: heroku pg:psql -a {app} -c \"SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid\" (drop what it lists with DROP INDEX CONCURRENTLY), and the migration history table for versions already applied"
        ),
    ));
    lines
}

/// How the last attempt ended.
#[derive(Debug)]
pub enum Concluded<'a> {
    /// Exited 0.
    Finished { dyno: &'a str, took: Duration },
    /// The local record of the migration time failed.
    NotRecorded { error: String },
    /// The marker and the platform disagree on the status.
    Contradictory { dyno: &'a str, marker: i32, platform: i32, tail: &'a VecDeque<String> },
    /// Exited non-zero.
    ExitedNonZero {
        dyno: &'a str,
        code: i32,
        lock_timeouts: Option<usize>,
        held_too_long: bool,
        app: &'a str,
        tail: &'a VecDeque<String>,
    },
    /// `--timeout` passed.
    PastTimeout { timeout: Duration },
    /// An attached run's connection was lost.
    LostAttached { dyno: &'a str, why: &'a str, state: String, app: &'a str },
    /// A detached run was no longer followed.
    LostDetached { dyno: &'a str, why: &'a str, state: String, follow: String },
    /// A Fir dyno that has ended: nothing to read back.
    EndedOnFir { dyno: &'a str, app: &'a str, platform: String },
}

impl Render for Concluded<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Concluded::Finished { dyno, took } => {
                one(Ok, format!("migration finished on {dyno} in {}", format_duration(*took)))
            }
            Concluded::NotRecorded { error } => one(Warn, format!("could not record the migration time locally: {error}")),
            Concluded::Contradictory { dyno, marker, platform, tail } => {
                let mut lines = one(
                    Bad,
                    format!("{dyno}'s exit status is contradictory: the command's marker says {marker}, the platform says {platform}; treating the migration as failed. Nothing was restarted."),
                );
                lines.extend(tail_lines(tail));
                lines
            }
            Concluded::ExitedNonZero { dyno, code, lock_timeouts, held_too_long, app, tail } => {
                let mut lines =
                    one(Bad, format!("the migration exited with status {code} on {dyno}; nothing was restarted"));
                if *held_too_long {
                    lines.push(Line::new(
                        Say,
                        format!("Its statement was cut for holding a lock the site queued behind past the budget, and was not retried: on the same data it would hold the lock as long again. Change it to the form named above, or run it inside heroku maintenance:window -a {app}"),
                    ));
                }
                if let Some(n) = lock_timeouts {
                    lines.push(Line::new(
                        Say,
                        format!("It timed out waiting for a lock {n} times; see what holds it: pg-blockers -a {app}"),
                    ));
                }
                lines.extend(tail_lines(tail));
                lines
            }
            Concluded::PastTimeout { timeout } => one(
                Bad,
                format!("the migration ran longer than --timeout {}; stopping it", format_duration(*timeout)),
            ),
            // Attached: the output never reached the log, and the dyno ends with the connection.
            Concluded::LostAttached { dyno, why, state, app } => one(
                Bad,
                format!(
                    "lost the connection to {dyno} ({why}); its state is {state}. The migration may still be running or may have finished: \
                     see `heroku logs -a {app} --dyno {dyno}` and check with `migrate-restart check -a {app}`. Nothing was restarted."
                ),
            ),
            Concluded::LostDetached { dyno, why, state, follow } => vec![
                Line::new(
                    Bad,
                    format!("stopped following {dyno} ({why}); its state is {state}. The migration may still be running or may have finished. Nothing was restarted."),
                ),
                Line::new(Say, format!("Pick it up from any machine: {follow}")),
            ],
            Concluded::EndedOnFir { dyno, app, platform } => one(
                Bad,
                format!(
                    "{dyno} has ended, and {app} is on {platform}, whose log sessions carry no history: its output and exit status cannot be read back. Nothing was restarted; see whether the migration applied with `migrate-restart check -a {app}`."
                ),
            ),
        }
    }
}

/// After Ctrl-C or the timeout: the dyno stopped, its database session ended.
#[derive(Debug)]
pub enum Cleanup<'a> {
    /// Stopping the dyno and ending its session.
    Stopping { dyno: &'a str, interrupted: bool },
    /// The dyno is seen gone.
    Stopped { dyno: &'a str },
    /// The dyno is not seen gone.
    NotSeenGone { dyno: &'a str, app: &'a str },
    /// The stop failed.
    StopFailed { dyno: &'a str, app: &'a str, error: String },
    /// A second Ctrl-C: stopped waiting.
    StoppedWaiting,
    /// No database to end the session on.
    NoDatabaseToClean,
    /// The session is gone.
    SessionEnded { name: &'a str, ended: usize },
    /// Sessions remain.
    SessionsRemain { name: &'a str, pids: &'a [i32], selector: String, fill_in: Option<String> },
    /// Ending the session failed.
    SessionNotEnded { error: String },
}

impl Render for Cleanup<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Cleanup::Stopping { dyno, interrupted } => {
                let again = if *interrupted { "Ctrl-C again" } else { "Ctrl-C" };
                one(Warn, format!("stopping {dyno} and ending its database session ({again} to stop waiting)…"))
            }
            Cleanup::Stopped { dyno } => one(Ok, format!("{dyno} stopped")),
            Cleanup::NotSeenGone { dyno, app } => {
                one(Bad, format!("{dyno} NOT SEEN GONE; check with safe-ps-kill {dyno} -a {app}"))
            }
            Cleanup::StopFailed { dyno, app, error } => {
                one(Bad, format!("could not stop {dyno}: {error}; run safe-ps-kill {dyno} -a {app}"))
            }
            Cleanup::StoppedWaiting => {
                one(Warn, "stopped waiting; the database session may remain: pg-blockers to check")
            }
            Cleanup::NoDatabaseToClean => {
                one(Warn, "no database to check: a statement the migration started may still wait on a lock")
            }
            Cleanup::SessionEnded { name, ended } => {
                one(Ok, format!("no database session named {name} remains (ended {ended})"))
            }
            Cleanup::SessionsRemain { name, pids, selector, fill_in } => {
                let mut lines =
                    one(Bad, format!("sessions {pids:?} named {name} are still there; see pg-blockers {selector}"));
                lines.extend(fill_in.iter().map(|f| Line::new(Note, f.clone())));
                lines
            }
            Cleanup::SessionNotEnded { error } => {
                one(Bad, format!("could not end the migration's database session: {error}"))
            }
        }
    }
}

/// The restart after a migration, and its verification.
#[derive(Debug)]
pub enum Restarting<'a> {
    /// Types whose dynos all booted after the migration ended.
    AlreadyFresh { types: Vec<&'a str> },
    /// The whole app is restarted.
    All { app: &'a str },
    /// These types are restarted.
    Types { app: &'a str, types: &'a [String] },
    /// Nothing needed a restart.
    NothingToRestart { app: &'a str },
    /// Every restarted dyno is fresh and up.
    RestartVerified { dynos: usize, took: Duration },
    /// These are not.
    RestartNotVerified { dynos: Vec<&'a Verdict>, limit: Duration },
}

impl Render for Restarting<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Restarting::AlreadyFresh { types } => one(
                Note,
                format!("every dyno of {} booted after the migration ended: not restarted again", types.join(", ")),
            ),
            Restarting::All { app } => one(Note, format!("Restarting all dynos on {app}…")),
            Restarting::Types { app, types } => one(Note, format!("Restarting {} on {app}…", types.join(", "))),
            Restarting::NothingToRestart { app } => {
                one(Note, format!("Nothing to restart on {app}: every dyno booted after the migration ended"))
            }
            Restarting::RestartVerified { dynos, took } => one(
                Ok,
                format!(
                    "{} restarted after the migration and up (in {})",
                    count(*dynos, "dyno"),
                    format_duration(*took)
                ),
            ),
            Restarting::RestartNotVerified { dynos, limit } => dynos
                .iter()
                .map(|v| {
                    let why = if !v.fresh {
                        format!("still booted before the migration ({})", v.created_at)
                    } else {
                        format!("{} since the restart", v.state)
                    };
                    Line::new(Bad, format!("{} NOT VERIFIED after {}: {why}", v.name, format_duration(*limit)))
                })
                .collect(),
        }
    }
}

pub(crate) fn tail_lines(tail: &VecDeque<String>) -> Vec<Line> {
    let mut lines = vec![Line::new(Tone::Say, format!("Last {} lines of output:", tail.len()))];
    lines.extend(tail.iter().map(|l| Line::new(Tone::Say, format!("  {l}"))));
    lines
}

/// How the lock watch's events read on the operator's terminal (the guard words the same
/// events for a release log in its own voice).
fn watch_lines(event: &WatchEvent) -> Vec<Line> {
    match event {
        WatchEvent::Waits(w) => one(
            Tone::Note,
            format!(
                "{} migration waits for {}, {}",
                yellow().apply_to("⏳"),
                w.lock,
                migration_policy::text::holder_line(w)
            ),
        ),
        WatchEvent::GotLock => one(Tone::Note, "✓ the migration got its lock"),
        WatchEvent::Cut(e) => cut_lines(e),
        WatchEvent::Unreachable(e) => {
            one(Tone::Warn, format!("lock watch off (and the outside lock-wait budget with it): {e}"))
        }
    }
}

fn cut_lines(e: &Enforcement) -> Vec<Line> {
    let mut lines: Vec<Line> = migration_policy::text::enforcement_lines(e, "migration")
        .into_iter()
        .map(|l| Line::new(Tone::Note, l))
        .collect();
    if e.verified && !e.for_holding() {
        lines.push(Line::new(
            Tone::Note,
            "   its own lock_timeout was not in force (PGOPTIONS ignored or overridden); treated as a lock timeout",
        ));
    }
    lines
}
