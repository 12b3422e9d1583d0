//! How the guard speaks in the release output (what `git push` streams and `heroku
//! releases:output` shows): every line on stderr, prefixed `migrate-guard: ` so a reader can
//! tell the guard from the migration, outside text made printable, the summary line last.
//! Every line's wording lives here: orchestration (`run`, `clear`) reports what happened as a
//! [`Said`] (or a watch event) and the voice says it.

use std::io::Write;
use std::time::Duration;

use cli_kit::output::count;
use cli_kit::{format_duration, printable, Line, Render, Tone};
use migration_policy::drive::DebrisEvent;
use migration_policy::lockwatch::WatchEvent;
use migration_policy::preflight::{Finding, Kind};
use migration_policy::text;
use pg_locks::Snapshot;

/// The guard's voice.
#[derive(Debug, Clone, Copy)]
pub struct Voice {
    verbose: bool,
}

impl Voice {
    /// `verbose`: also the guard's own looks and statements.
    pub fn new(verbose: bool) -> Voice {
        Voice { verbose }
    }

    /// One line, as the guard's (passwords redacted, control characters shown escaped).
    pub fn say(&self, line: impl AsRef<str>) {
        let line = cli_kit::redact(&printable(line.as_ref()));
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "migrate-guard: {line}");
    }

    /// Several lines.
    pub fn say_all(&self, lines: impl IntoIterator<Item = String>) {
        for l in lines {
            self.say(l);
        }
    }

    /// Only with `-v`.
    pub fn debug(&self, line: impl AsRef<str>) {
        if self.verbose {
            self.say(line);
        }
    }

    /// The summary line: exactly as built, nothing else on it.
    pub fn summary(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    /// Something the guard did or saw, in its words (each line is release-log text: its tone
    /// is already in its mark, `✓`/`✗`, and a log has no colour).
    pub fn show(&self, said: &impl Render) {
        self.say_all(said.lines().into_iter().map(|l| l.text));
    }

    /// A watch event.
    pub fn watch_event(&self, event: &WatchEvent) {
        match event {
            WatchEvent::Waits(w) => self.say_all(text::wait_lines(w, "migration").into_iter().map(plain)),
            WatchEvent::GotLock => self.say("the migration got its lock"),
            WatchEvent::Cut(e) => {
                self.say_all(text::enforcement_lines(e, "migration").into_iter().map(plain));
                if e.verified && !e.for_holding() {
                    self.say("   its own lock_timeout was not in force (PGOPTIONS ignored or overridden); treated as a lock timeout");
                }
            }
            WatchEvent::Unreachable(e) => self.say(format!(
                "✗ lost the watch connection ({e}): the lock-wait budget is no longer enforced from outside; PGOPTIONS lock_timeout still applies"
            )),
        }
    }
}

/// A line without the terminal styling the shared wording may carry (release logs are not
/// terminals).
fn plain(line: String) -> String {
    console::strip_ansi_codes(&line).into_owned()
}

/// `5s`, `1m 30s`.
pub fn dur(d: Duration) -> String {
    format_duration(d)
}

/// Why the guard stops the command before it ends on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A signal: SIGTERM (the dyno is being stopped) or SIGINT (an interrupt).
    Signal,
    /// `--deadline` passed.
    Deadline,
}

/// What the guard did or saw before the migration starts: the watch, the clearing, the plan.
#[derive(Debug)]
pub enum Said<'a> {
    /// Bad input: one line, nothing started.
    Error(String),
    /// The database goes through a pooler: the watch reads the direct URL instead.
    WatchReadsDirect { var: &'a str, direct: &'a str },
    /// `--unwatched`: the database cannot be watched, PGOPTIONS alone.
    Unwatched { error: String },
    /// The database cannot be watched: refused.
    CannotWatch { error: String },
    /// `--plan` is not a plan for this database (made for another, or naming relations it
    /// does not have): refused, nothing started.
    PlanRefused { error: String },
    /// Stopped while waiting for blockers to clear.
    StoppedWhileClearing,
    /// The locks could not be read.
    LocksUnread { error: String },
    /// Waited, and now nothing blocks.
    ClearNow { waited: Duration },
    /// A session of another role holds table locks of unknown age.
    CannotVouch { detail: &'a str },
    /// `--plan`'s broken queries have stopped arriving: the contract step may run.
    OldCodeGone { breaks: usize },
    /// The running release still sends queries the migration breaks.
    BreaksStillArriving { arriving: &'a [migration_policy::contract::StillArriving], allowed: bool },
    /// Whether it does could not be told.
    BreaksUnchecked { error: String, allowed: bool },
    /// Waiting for blockers.
    WaitingForClear { found: &'a [Finding], waited: Duration, limit: Duration },
    /// `--plan`: sessions in no planned lock's way, not waited for.
    SetAside { findings: &'a [Finding] },
    /// `--cancel-backups`: cancelling one.
    CancellingBackup { pid: i32, cost: &'a str },
    /// The backup no longer blocks.
    BackupGone { pid: i32 },
    /// Its cancel did not take.
    BackupCancelNotSeen { pid: i32 },
    /// Still blocked at `--wait-for-clear`: refused, with the smallest fix.
    Refused { remaining: &'a [Finding], last: &'a Snapshot, app: Option<&'a str> },
    /// What is guarded, and how.
    Guarding {
        argv: String,
        dyno: &'a str,
        budget: String,
        sessions: &'a str,
        retries: u32,
        retry_for: Duration,
        deadline: Duration,
    },
    /// The baseline a retry compares with could not be read.
    NoBaseline { error: String },
}

impl Render for Said<'_> {
    fn lines(&self) -> Vec<Line> {
        self.words().into_iter().map(|t| Line::new(Tone::Say, t)).collect()
    }
}

impl Said<'_> {
    /// What the look for the old code found, before a contract step.
    fn contract_words(&self) -> Vec<String> {
        match self {
            Said::OldCodeGone { breaks } => vec![format!(
                "✓ none of the {} the plan says this migration breaks arrived in {}: the old code is gone",
                if *breaks == 1 { "1 query".to_string() } else { format!("{breaks} queries") },
                dur(migration_policy::contract::WINDOW)
            )],
            Said::BreaksStillArriving { arriving, allowed } => {
                let mut lines: Vec<String> = arriving
                        .iter()
                        .map(|a| {
                            format!(
                                "✗ the running release still sends `{}` — {:.0} calls a minute{} — and this migration breaks it",
                                cli_kit::printable(&a.query),
                                a.per_minute,
                                if a.running_now > 0 { format!(", {} running now", a.running_now) } else { String::new() }
                            )
                        })
                        .collect();
                lines.push(if *allowed {
                        "--allow-breaking: running the migration anyway; those queries fail from its commit until the old code is gone".into()
                    } else {
                        "the migration was not started: deploy the code that stops sending them first (the expand step), then release this one; --allow-breaking runs it anyway".into()
                    });
                lines
            }
            Said::BreaksUnchecked { error, allowed } => vec![if *allowed {
                format!("cannot tell whether the running release still sends the queries this migration breaks ({error}); --allow-breaking: running it anyway")
            } else {
                format!("✗ cannot tell whether the running release still sends the queries this migration breaks ({error}); the migration was not started: --allow-breaking runs it anyway")
            }],
            _ => Vec::new(),
        }
    }

    fn words(&self) -> Vec<String> {
        match self {
            Said::Error(e) => vec![format!("error: {e}")],
            Said::WatchReadsDirect { var, direct } => vec![format!(
                "{var} goes through a connection pooler: the watch and its budget read {direct} directly (through the pooler they would queue behind the site's own queries)"
            )],
            Said::Unwatched { error } => vec![format!(
                "cannot watch the database ({error}); --unwatched: running with PGOPTIONS lock_timeout only — nothing cuts a statement that turns it off"
            )],
            Said::CannotWatch { error } => vec![format!(
                "✗ cannot watch the database ({error}): the migration is not started half-guarded, so the release fails and the app stays on its current release. Fix the connection, or pass --unwatched to run with PGOPTIONS lock_timeout only"
            )],
            Said::PlanRefused { error } => vec![format!("✗ {error}")],
            Said::StoppedWhileClearing => {
                vec!["stopped while waiting for blockers to clear; the migration was never started".into()]
            }
            Said::LocksUnread { error } => {
                vec![format!("✗ could not read the database's locks ({error}); the migration was not started")]
            }
            Said::ClearNow { waited } => vec![format!("✓ nothing blocks the migration now (waited {})", dur(*waited))],
            Said::CannotVouch { detail } => {
                vec![format!("cannot vouch for: {detail} (the lock-wait budget bounds any wait)")]
            }
            Said::OldCodeGone { .. } | Said::BreaksStillArriving { .. } | Said::BreaksUnchecked { .. } => {
                self.contract_words()
            }
            Said::WaitingForClear { found, waited, limit } => {
                let mut lines = vec![format!(
                    "waiting for {} that would make the migration's DDL wait (and the site behind it) — {} of up to {}:",
                    count(found.len(), "session"),
                    dur(*waited),
                    dur(*limit)
                )];
                lines.extend(found.iter().map(|f| format!("  [{}] {}", f.kind, f.detail)));
                lines
            }
            Said::SetAside { findings } => {
                let mut lines = vec![format!(
                    "narrowed to the plan: not waiting for {} holding no lock the migration's planned locks conflict with (the budget still bounds any wait):",
                    count(findings.len(), "session")
                )];
                lines.extend(findings.iter().map(|f| format!("  [{}] {}", f.kind, f.detail)));
                lines
            }
            Said::CancellingBackup { pid, cost } => vec![format!(
                "--cancel-backups: cancelling the Heroku Postgres backup pid {pid} that would block the migration; cost: {cost}"
            )],
            Said::BackupGone { pid } => vec![format!("✓ backup pid {pid} no longer blocks")],
            Said::BackupCancelNotSeen { pid } => vec![format!("✗ the cancel of backup pid {pid} was not seen to take")],
            Said::Refused { remaining, last, app } => refusal_lines(remaining, last, *app),
            Said::Guarding { argv, dyno, budget, sessions, retries, retry_for, deadline } => vec![format!(
                "guarding `{argv}` on {dyno} ({budget}; sessions named {sessions}; up to {retries} retries within {}; deadline {})",
                dur(*retry_for),
                dur(*deadline)
            )],
            Said::NoBaseline { error } => vec![format!(
                "could not read indexes and migration versions before starting ({error}); a retry will not be checked for what a failed attempt left, so none is made"
            )],
        }
    }
}

/// What the guard did or saw once the migration runs: attempts, retries, the ending.
#[derive(Debug)]
pub enum Attempts<'a> {
    /// The command could not start.
    CannotStart { argv: String, error: String },
    /// Out of retries (or time) after lock timeouts.
    OutOfRetries { lock_timeouts: u32, budget: Duration, retries: u32, retry_for: Duration },
    /// A pooler refused PGOPTIONS: once more without.
    RetryWithoutPgoptions,
    /// A retry after a lock timeout.
    Retrying { n: u32, of: u32, pause: Duration, ceiling: Duration },
    /// The migration failed on its own.
    FailedOnItsOwn { code: Option<i32> },
    /// The hold budget cut the migration's statement: not retried.
    HeldTooLong,
    /// What the check before a retry found (the debris rule: cannot check, no retry).
    Debris(&'a DebrisEvent<'a>),
    /// Stopped in the pause between attempts.
    StoppedInThePause,
    /// Stopping the migration before it ends on its own: why, whether a signal was SIGTERM, and
    /// the deadline that passed.
    Stopping { why: Stopped, sigterm: bool, deadline: Duration },
    /// Its sessions could not be ended.
    EndFailed { error: String },
    /// …could not be checked.
    SessionsUnchecked,
    /// It had none left.
    NoSessionsLeft,
    /// Ended, none remains.
    SessionsEnded { pids: &'a [i32] },
    /// Some remain.
    SessionsRemain { pids: &'a [i32] },
    /// `--json-report` could not be written.
    ReportNotWritten { path: String, error: String },
}

impl Render for Attempts<'_> {
    fn lines(&self) -> Vec<Line> {
        self.words().into_iter().map(|t| Line::new(Tone::Say, t)).collect()
    }
}

impl Attempts<'_> {
    fn words(&self) -> Vec<String> {
        match self {
            Attempts::CannotStart { argv, error } => vec![format!("✗ could not start `{argv}`: {error}")],
            Attempts::OutOfRetries { lock_timeouts, budget, retries, retry_for } => vec![format!(
                "✗ the migration hit a lock timeout {} (budget {}); no retry left within --retries {retries} / --retry-for {}. The release fails; the app stays on its current release",
                times(*lock_timeouts),
                dur(*budget),
                dur(*retry_for)
            )],
            Attempts::RetryWithoutPgoptions => vec![
                "a connection pooler refused PGOPTIONS: retrying once without them; the budget is enforced from the guard's connection".into(),
            ],
            Attempts::Retrying { n, of, pause, ceiling } => vec![format!(
                "lock timeout (attempt {n} of {of}); retrying in {} (backoff up to {}, with jitter)",
                dur(*pause),
                dur(*ceiling)
            )],
            Attempts::FailedOnItsOwn { code } => vec![format!(
                "✗ the migration failed on its own (exit {}); not a lock timeout, so not retried",
                code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into())
            )],
            Attempts::HeldTooLong => vec![
                "✗ the migration failed: its statement was cut for holding a lock the site queued behind past the budget. Not retried: on the same data it would hold the lock as long again. Change it to the form named above, or run it in a maintenance window (heroku maintenance:window)".into(),
            ],
            Attempts::Debris(found) => debris_lines(found),
            Attempts::StoppedInThePause => {
                vec!["stopped between attempts; nothing of the migration is running".into()]
            }
            Attempts::Stopping { why: Stopped::Signal, sigterm: true, .. } => vec!["stop requested (SIGTERM: the dyno is being stopped): ending the migration's statements on the database, then the migration".into()],
            Attempts::Stopping { why: Stopped::Signal, sigterm: false, .. } => vec!["interrupted (SIGINT): ending the migration's statements on the database, then the migration".into()],
            Attempts::Stopping { why: Stopped::Deadline, deadline: d, .. } => vec![format!(
                "--deadline {} passed: ending the migration's statements on the database, then the migration",
                dur(*d)
            )],
            Attempts::EndFailed { error } => vec![format!("✗ could not end the migration's sessions: {error}")],
            Attempts::SessionsUnchecked => {
                vec!["✗ the migration's database sessions could not be checked: look with heroku pg:blockers".into()]
            }
            Attempts::NoSessionsLeft => vec!["✓ the migration had no statement left on the database".into()],
            Attempts::SessionsEnded { pids } => vec![format!(
                "✓ ended the migration's {} (pids {}): none remains",
                count(pids.len(), "session"),
                join_pids(pids)
            )],
            Attempts::SessionsRemain { pids } => {
                vec![format!("✗ the migration's sessions {pids:?} are still there; end them with heroku pg:blockers")]
            }
            Attempts::ReportNotWritten { path, error } => vec![format!("could not write --json-report {path}: {error}")],
        }
    }
}

fn join_pids(pids: &[i32]) -> String {
    pids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

fn times(n: u32) -> String {
    if n == 1 {
        "once".into()
    } else {
        format!("{n} times")
    }
}

/// The lines that end a refusal: what still blocks and the smallest fix (pg-blockers' own
/// recommendation), with the commands to run from a terminal.
pub fn refusal_lines(remaining: &[Finding], last: &Snapshot, app: Option<&str>) -> Vec<String> {
    let mut lines = vec![format!(
        "✗ {} still would make the migration's DDL wait; not starting it (the release fails, the app stays on its current release):",
        count(remaining.len(), "session")
    )];
    lines.extend(remaining.iter().map(|f| format!("  [{}] {}", f.kind, f.detail)));
    let a = app.map(|a| format!(" -a {a}")).unwrap_or_else(|| " -a APP".to_string());
    let confirm = app.unwrap_or("APP");
    match pg_locks::recommend(last) {
        (Some(r), _) => {
            lines.push(format!("recommended: {} pid {} — {}", r.action.word(), r.pid, r.reason));
            lines.push(format!("  cost: {}", r.cost));
            lines.push(format!("  run: heroku pg:blockers{a} --{} {} --confirm {confirm}", r.action.word(), r.pid));
        }
        // Nobody waits yet (the migration has not started), so there is no chain to break:
        // each blocker is named with what ending it costs.
        (None, _) => {
            for f in remaining.iter().filter(|f| f.kind != Kind::Backup) {
                let Some(s) = last.get(f.pid) else { continue };
                let signal = if pg_locks::needs_terminate(s) { "terminate" } else { "cancel" };
                lines.push(format!(
                    "  to end pid {}: heroku pg:blockers{a} --{signal} {} --confirm {confirm} (cost: {})",
                    f.pid,
                    f.pid,
                    pg_locks::cost(s)
                ));
            }
        }
    }
    if remaining.iter().any(|f| f.kind == Kind::Backup) {
        lines.push(format!(
            "  a backup blocks: heroku pg:backups:cancel{a}, or let the guard cancel it with --cancel-backups"
        ));
    }
    lines.push(format!("then retry the release: heroku releases:retry{a}"));
    lines
}

/// The check before a retry, in the release output.
fn debris_lines(found: &DebrisEvent<'_>) -> Vec<String> {
    match found {
        DebrisEvent::Uncheckable { why } => {
            vec![format!("✗ not retrying: what the failed attempt left cannot be checked ({why})")]
        }
        DebrisEvent::CheckFailed { error } => {
            vec![format!("✗ not retrying: could not check what the failed attempt left ({error})")]
        }
        DebrisEvent::AlreadyApplied { versions } => {
            vec![format!("already applied by the failed attempt: {}; the retry skips them", versions.join(", "))]
        }
        DebrisEvent::DroppingInvalid { .. } => Vec::new(),
        DebrisEvent::DroppedInvalid { names } => {
            vec![format!("dropped the INVALID {} the failed attempt left (verified gone)", names.join(", "))]
        }
        DebrisEvent::DropFailed { error } => {
            vec![format!("✗ could not drop the INVALID index the failed attempt left: {error}; not retrying")]
        }
        DebrisEvent::InvalidLeft { drop_statements, .. } => {
            let mut lines = vec!["✗ not retrying: the failed attempt left an INVALID index (a cancelled CREATE INDEX CONCURRENTLY); a retry would fail on it or build a second copy. Run, then retry the release (or deploy with --drop-invalid-indexes):".to_string()];
            lines.extend(drop_statements.iter().map(|s| format!("  {s}")));
            lines
        }
    }
}
