//! `release`'s wording: which release is followed, what the follow does on the app's behalf,
//! and how the release phase ended.

use std::time::Duration;

use cli_kit::output::{one, red};
use cli_kit::{format_duration, Line, Render, Tone};
use pg_locks::lockplan::Obstacle;

use crate::commands::plan::render::obstacle_brief;

/// `release`: which release is followed, and what the follow does on the app's behalf.
#[derive(Debug)]
pub enum ReleaseStart<'a> {
    /// A pending release followed.
    FollowingPhase { app: &'a str, version: u64, description: &'a str, stays_on: String },
    /// A release already ended.
    ReleaseIs { app: &'a str, version: u64, description: &'a str, status: &'a str },
    /// The deploy step and what a failure leaves.
    DeployPlan { app: &'a str, plan: String, stays_on: String },
    /// The release has no release phase.
    NoReleasePhase { app: &'a str, version: u64 },
    /// The release the deploy step made, followed.
    FollowingNext { app: &'a str, version: u64, description: &'a str, seen_after: String },
    /// The deploy step succeeded and made no release.
    NoReleaseMade { app: &'a str, command: String },
    /// The deploy step failed and made no release.
    DeployFailedNoRelease { app: &'a str, command: String, code: i32 },
    /// `--next` waited in vain.
    NoNewRelease { app: &'a str, waited: Duration },
    /// Ctrl-C before a release appeared.
    InterruptedBeforeRelease,
    /// `--plan`: who is in the way of a planned lock now.
    PlanChecked { database: String, obstacles: &'a [Obstacle] },
    /// What the follow does on the app's behalf: the budget.
    LockWaitBudget { budget: Duration, database: String },
    /// …only watching.
    WatchingOnly { database: String },
    /// …no database.
    NoDatabaseToWatch,
    /// …the deadline.
    Deadline { deadline: Duration },
}

impl Render for ReleaseStart<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            ReleaseStart::FollowingPhase { app, version, description, stays_on } => one(
                Say,
                format!("Following the release phase of v{version} of {app} ({description}); if it fails, {app} stays on {stays_on}."),
            ),
            ReleaseStart::ReleaseIs { app, version, description, status } => {
                one(Say, format!("Release v{version} of {app} ({description}) is {status}."))
            }
            ReleaseStart::DeployPlan { app, plan, stays_on } => {
                one(Say, format!("{plan}; if its release phase fails, {app} stays on {stays_on}."))
            }
            ReleaseStart::NoReleasePhase { app, version } => one(
                Say,
                format!("v{version} of {app} has no release phase (its Procfile has no release: line): it succeeded at once."),
            ),
            ReleaseStart::FollowingNext { app, version, description, seen_after } => one(
                Say,
                format!("Following v{version} of {app} ({description}), seen {seen_after} after the deploy step began."),
            ),
            ReleaseStart::NoReleaseMade { app, command } => {
                one(Say, format!("`{command}` created no release of {app}: nothing to follow."))
            }
            ReleaseStart::DeployFailedNoRelease { app, command, code } => {
                one(Bad, format!("`{command}` failed (exit {code}) and created no release of {app}."))
            }
            ReleaseStart::NoNewRelease { app, waited } => one(
                Bad,
                format!(
                    "no new release of {app} within {} (--next-timeout): nothing was followed",
                    format_duration(*waited)
                ),
            ),
            ReleaseStart::InterruptedBeforeRelease => {
                one(Warn, "interrupted before a release appeared; the deploy step goes on, nothing was cancelled")
            }
            ReleaseStart::LockWaitBudget { budget, database } => one(
                Say,
                format!(
                    "Lock-wait budget {}: a DDL statement of the release that waits on a lock longer is cancelled on {database} (the release phase then fails).",
                    format_duration(*budget)
                ),
            ),
            ReleaseStart::WatchingOnly { database } => one(
                Say,
                format!("Watching {database} for the release's lock waits (--lock-wait off: nothing is cancelled)."),
            ),
            ReleaseStart::PlanChecked { database, obstacles } => {
                if obstacles.is_empty() {
                    return one(Ok, format!("the plan: nothing on {database} holds a lock the release's migration would wait for"));
                }
                let mut lines = one(Warn, format!("the plan: the release's migration would wait on {database} for:"));
                lines.extend(obstacles.iter().map(|o| Line::new(Warn, format!("  {}", obstacle_brief(o)))));
                lines
            }
            ReleaseStart::NoDatabaseToWatch => one(Warn, "no database to watch: following output and status only"),
            ReleaseStart::Deadline { deadline } => one(
                Say,
                format!(
                    "Deadline {}: after that the release dyno is stopped and its statements cancelled.",
                    format_duration(*deadline)
                ),
            ),
        }
    }
}

/// `release`: how the release phase ended.
#[derive(Debug)]
pub enum ReleaseEnd<'a> {
    /// The deploy step outlives the follow.
    DeployStepStillRunning { command: String },
    /// The push said 0 and the phase failed.
    PushSaidZero { command: String, version: u64 },
    /// The phase succeeded.
    PhaseSucceeded { version: u64, took: String },
    /// The phase failed: its last lines.
    PhaseFailed { app: &'a str, version: u64, took: String, stays_on: &'a str, tail: &'a [String] },
    /// The budget cancelled a statement of the phase: behind whom, and how to retry.
    PhaseCut { app: &'a str, query: &'a str, blocker: String, retry: &'a str },
    /// The hold budget cut its statement: others queued behind its lock too long.
    PhaseHeldTooLong { app: &'a str, query: Option<&'a str>, retry: &'a str },
    /// Ctrl-C: the phase goes on.
    PhaseInterrupted { app: &'a str, version: u64 },
    /// A newer release superseded it.
    Superseded { app: &'a str, version: u64, by: String },
    /// Still pending at `--timeout`.
    StillPending { app: &'a str, version: u64, timeout: Duration },
}

impl Render for ReleaseEnd<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            ReleaseEnd::DeployStepStillRunning { command } => {
                one(Warn, format!("`{command}` is still running; not waiting for it"))
            }
            ReleaseEnd::PushSaidZero { command, version } => one(
                Bad,
                format!("`{command}` exited 0, but the release phase of v{version} failed: this exits 1 (a push reports success whatever its release phase did)"),
            ),
            ReleaseEnd::PhaseSucceeded { version, took } => one(Ok, format!("The release phase of v{version} succeeded{took}.")),
            ReleaseEnd::PhaseFailed { app, version, took, stays_on, tail } => {
                let mut lines =
                    one(Bad, format!("The release phase of v{version} failed{took}: {app} stays on {stays_on}."));
                if !tail.is_empty() {
                    lines.push(Line::new(Say, "Its last lines:"));
                    lines.extend(tail.iter().map(|l| Line::new(Say, format!("  {} {l}", red().apply_to("│")))));
                }
                lines
            }
            ReleaseEnd::PhaseCut { app, query, blocker, retry } => one(
                Say,
                format!("The lock-wait budget cancelled its `{query}` behind {blocker}. Once that is gone (heroku pg:blockers -a {app}), retry:\n  {retry}"),
            ),
            ReleaseEnd::PhaseHeldTooLong { app, query, retry } => one(
                Say,
                format!("The hold budget cut its {}: the site's queries queued behind its lock past the budget. Retrying as it is would hold the lock as long again: change the migration to the form named above (or run it with heroku maintenance:window -a {app}), then retry:\n  {retry}", query.map(|q| format!("`{q}`")).unwrap_or_else(|| "statement (migrate-guard's lines above say which)".into())),
            ),
            ReleaseEnd::PhaseInterrupted { app, version } => one(
                Warn,
                format!("interrupted: the release phase of v{version} goes on (the interrupt cancelled nothing); follow it again with heroku migrate:release -a {app}"),
            ),
            ReleaseEnd::Superseded { app, version, by } => one(
                Warn,
                format!("v{version} was superseded by {by} before its release phase ended (status expired, not failed): it will never become current. Follow {by}: heroku migrate:release -a {app}"),
            ),
            ReleaseEnd::StillPending { app, version, timeout } => one(
                Bad,
                format!(
                    "v{version} is still pending after {}; the release phase goes on: heroku releases:output v{version} -a {app}",
                    format_duration(*timeout)
                ),
            ),
        }
    }
}
