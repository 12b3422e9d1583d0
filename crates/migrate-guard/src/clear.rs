//! Before the first statement: who holds locks now. A session that would make DDL wait (a long
//! transaction, a Heroku Postgres backup's `COPY`, an idle transaction) would queue the site
//! behind the migration's first `ALTER`; the guard waits for it to end instead, with backoff,
//! saying every few seconds whom it waits for — up to `--wait-for-clear`. With
//! `--cancel-backups` a blocking backup is cancelled (verified) rather than waited for.

use std::time::{Duration, Instant};

use migration_policy::preflight::{self, Finding, Kind};
use pg_locks::{Conn, Signal, Snapshot};

use crate::report::Clearing;
use crate::voice::{dur, Voice};

/// How often a wait is said again.
const SAY_EVERY: Duration = Duration::from_secs(5);

/// What stopped the clearing short.
pub enum Stop {
    /// A signal arrived or the deadline passed.
    Interrupted,
}

/// How the clearing ended: `clear` in the returned [`Clearing`], and the last snapshot (for the
/// recommendation when it is not).
pub struct Cleared {
    /// What was waited for and done.
    pub clearing: Clearing,
    /// The last look.
    pub last: Snapshot,
    /// What still blocks (empty when clear).
    pub remaining: Vec<Finding>,
}

/// The knobs.
pub struct ClearOptions {
    /// Longest wait.
    pub wait_for: Duration,
    /// A transaction older than this blocks.
    pub max_xact_age: Duration,
    /// Cancel blocking backups.
    pub cancel_backups: bool,
}

/// Waits for what would make DDL wait to end (or cancels backups); `stop` is polled between looks.
pub fn wait_for_clear(
    conn: &mut Conn,
    opts: &ClearOptions,
    voice: &Voice,
    stop: impl Fn() -> bool,
) -> anyhow::Result<Result<Cleared, Stop>> {
    let started = Instant::now();
    let mut clearing = Clearing::default();
    let mut pause = Duration::from_millis(250);
    let mut said_at: Option<Instant> = None;
    loop {
        let snap = Snapshot::take(conn)?;
        let assessment = preflight::assess(&snap, opts.max_xact_age);
        if clearing.blockers.is_empty() && clearing.waited_ms == 0 {
            clearing.blockers = assessment.findings.clone();
            for f in &assessment.unvouched {
                voice.say(format!("cannot vouch for: {} (the lock-wait budget bounds any wait)", f.detail));
            }
        }
        let found = assessment.findings;
        // Time spent waiting for blockers; a first look that finds none waited for nothing.
        if !clearing.blockers.is_empty() {
            clearing.waited_ms = started.elapsed().as_millis() as u64;
        }
        if found.is_empty() {
            clearing.clear = true;
            return Ok(Ok(Cleared { clearing, last: snap, remaining: found }));
        }
        let backups: Vec<i32> = found.iter().filter(|f| f.kind == Kind::Backup).map(|f| f.pid).collect();
        if opts.cancel_backups && !backups.is_empty() {
            cancel_backups(conn, &snap, &backups, voice, &mut clearing)?;
            continue;
        }
        if started.elapsed() >= opts.wait_for {
            return Ok(Ok(Cleared { clearing, last: snap, remaining: found }));
        }
        if said_at.is_none_or(|t| t.elapsed() >= SAY_EVERY) {
            say_waiting(voice, &found, started.elapsed(), opts.wait_for);
            said_at = Some(Instant::now());
        }
        let until = Instant::now() + pause.min(opts.wait_for.saturating_sub(started.elapsed()));
        while Instant::now() < until {
            if stop() {
                clearing.waited_ms = started.elapsed().as_millis() as u64;
                return Ok(Err(Stop::Interrupted));
            }
            std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn say_waiting(voice: &Voice, found: &[Finding], waited: Duration, limit: Duration) {
    voice.say(format!(
        "waiting for {} that would make the migration's DDL wait (and the site behind it) — {} of up to {}:",
        cli_kit::output::count(found.len(), "session"),
        dur(waited),
        dur(limit)
    ));
    for f in found {
        voice.say(format!("  [{}] {}", f.kind, f.detail));
    }
}

fn cancel_backups(
    conn: &mut Conn,
    snap: &Snapshot,
    pids: &[i32],
    voice: &Voice,
    clearing: &mut Clearing,
) -> anyhow::Result<()> {
    for &pid in pids {
        let cost = snap.get(pid).map(pg_locks::cost).unwrap_or("the backup fails");
        voice.say(format!("--cancel-backups: cancelling the Heroku Postgres backup pid {pid} that would block the migration; cost: {cost}"));
    }
    // A backup stuck writing to a client that does not read cannot take a cancel (Postgres
    // handles it between messages); it is terminated then — the same cost: the backup fails.
    let opts = pg_locks::ActOptions { escalate: true, ..pg_locks::ActOptions::default() };
    let report = pg_locks::act(conn, snap, pids, Signal::Cancel, opts)?;
    for o in &report.outcomes {
        if o.took || !o.sent {
            voice.say(format!("✓ backup pid {} no longer blocks", o.pid));
            clearing.cancelled_backups.push(o.pid);
        } else {
            voice.say(format!("✗ the cancel of backup pid {} was not seen to take", o.pid));
        }
    }
    anyhow::ensure!(
        report.outcomes.iter().all(|o| o.took || !o.sent),
        "a backup's cancel did not take; see heroku pg:blockers"
    );
    Ok(())
}

/// The lines that end a refusal: what still blocks and the smallest fix (pg-blockers' own
/// recommendation), with the commands to run from a terminal.
pub fn refusal_lines(remaining: &[Finding], last: &Snapshot, app: Option<&str>) -> Vec<String> {
    let mut lines = vec![format!(
        "✗ {} still would make the migration's DDL wait; not starting it (the release fails, the app stays on its current release):",
        cli_kit::output::count(remaining.len(), "session")
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
