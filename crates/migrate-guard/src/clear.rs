//! Before the first statement: who holds locks now. A session that would make DDL wait (a long
//! transaction, a Heroku Postgres backup's `COPY`, an idle transaction) would queue the site
//! behind the migration's first `ALTER`; the guard waits for it to end instead, with backoff,
//! saying every few seconds whom it waits for — up to `--wait-for-clear`. With
//! `--cancel-backups` a blocking backup is cancelled (verified) rather than waited for.

use std::time::{Duration, Instant};

use migration_policy::plan_file;
use migration_policy::preflight::{self, Finding, Kind};
use pg_locks::lockplan::{self, LockPlan};
use pg_locks::{Conn, Connection, Signal, Snapshot};

use crate::report::Clearing;
use crate::voice::{Said, Voice};

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
pub struct ClearOptions<'a> {
    /// Longest wait.
    pub wait_for: Duration,
    /// A transaction older than this blocks.
    pub max_xact_age: Duration,
    /// Cancel blocking backups.
    pub cancel_backups: bool,
    /// `--plan`: wait only for the sessions in its way.
    pub plan: Option<&'a LockPlan>,
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
        let assessment = match opts.plan {
            None => assessment,
            Some(plan) => {
                let in_the_way = lockplan::obstacles(conn.client(), plan)?;
                let (kept, aside) = plan_file::narrow(assessment, plan, &in_the_way);
                if clearing.set_aside.is_empty() && !aside.is_empty() {
                    voice.show(&Said::SetAside { findings: &aside });
                }
                clearing.set_aside = aside;
                kept
            }
        };
        if clearing.blockers.is_empty() && clearing.waited_ms == 0 {
            clearing.blockers = assessment.findings.clone();
            for f in &assessment.unvouched {
                voice.show(&Said::CannotVouch { detail: &f.detail });
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
            voice.show(&Said::WaitingForClear { found: &found, waited: started.elapsed(), limit: opts.wait_for });
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

fn cancel_backups(
    conn: &mut Conn,
    snap: &Snapshot,
    pids: &[i32],
    voice: &Voice,
    clearing: &mut Clearing,
) -> anyhow::Result<()> {
    for &pid in pids {
        let cost = snap.get(pid).map(pg_locks::cost).unwrap_or("the backup fails");
        voice.show(&Said::CancellingBackup { pid, cost });
    }
    // A backup stuck writing to a client that does not read cannot take a cancel (Postgres
    // handles it between messages); it is terminated then — the same cost: the backup fails.
    let opts = pg_locks::ActOptions { escalate: true, ..pg_locks::ActOptions::default() };
    let report = pg_locks::act(conn, snap, pids, Signal::Cancel, opts)?;
    for o in &report.outcomes {
        if o.took || !o.sent {
            voice.show(&Said::BackupGone { pid: o.pid });
            clearing.cancelled_backups.push(o.pid);
        } else {
            voice.show(&Said::BackupCancelNotSeen { pid: o.pid });
        }
    }
    anyhow::ensure!(
        report.outcomes.iter().all(|o| o.took || !o.sent),
        "a backup's cancel did not take; see heroku pg:blockers"
    );
    Ok(())
}
