//! Cancel or terminate sessions, then prove it: re-snapshot with bounded polling until the
//! targets no longer block anyone, escalate to terminate when asked, and count how many of
//! the previously blocked sessions are running again.

use std::time::{Duration, Instant};

use crate::connect::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::recommend::refusal;
use crate::snapshot::Snapshot;

/// Which signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// `pg_cancel_backend`: stop the running statement.
    Cancel,
    /// `pg_terminate_backend`: end the session (rolls back its transaction).
    Terminate,
}

impl Signal {
    fn function(self) -> &'static str {
        match self {
            Signal::Cancel => "pg_cancel_backend",
            Signal::Terminate => "pg_terminate_backend",
        }
    }

    /// `cancel` / `terminate`.
    pub fn word(self) -> &'static str {
        match self {
            Signal::Cancel => "cancel",
            Signal::Terminate => "terminate",
        }
    }
}

/// How long to watch for the effect, and whether to escalate.
#[derive(Debug, Clone, Copy)]
pub struct ActOptions {
    /// Longest wait for a signal to take effect.
    pub grace: Duration,
    /// Terminate sessions a cancel did not release.
    pub escalate: bool,
}

impl Default for ActOptions {
    fn default() -> Self {
        ActOptions { grace: Duration::from_secs(2), escalate: false }
    }
}

/// What happened to one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PidOutcome {
    /// The pid.
    pub pid: i32,
    /// The last signal sent.
    pub signal: Signal,
    /// Whether the server accepted the signal (false: the session had already ended).
    pub sent: bool,
    /// Whether it stopped blocking others before the deadline.
    pub took: bool,
    /// Whether a cancel was escalated to terminate.
    pub escalated: bool,
    /// Milliseconds from the first signal until it was seen to take.
    pub took_after_ms: Option<u64>,
}

/// The verified result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActReport {
    /// Per target.
    pub outcomes: Vec<PidOutcome>,
    /// Sessions that were waiting before.
    pub previously_blocked: usize,
    /// Of those, how many are running again (or finished).
    pub running_again: usize,
    /// Pids still waiting on a lock a target holds afterwards: what the cancel was for, not done.
    pub still_blocked: Vec<i32>,
    /// Pids still waiting, but now on sessions that are not targets: they were queued behind a
    /// session the signal freed (a DDL that got its lock and now runs), which is progress.
    #[serde(default)]
    pub queued_behind: Vec<i32>,
    /// The snapshot taken last.
    #[serde(skip)]
    pub after: Snapshot,
}

/// Refuses targets that are not in the snapshot (exit 2), this tool's own session or
/// PostgreSQL system processes (refused, exit 5).
pub fn validate_targets(snapshot: &Snapshot, pids: &[i32]) -> Result<(), Error> {
    for &pid in pids {
        let Some(s) = snapshot.get(pid) else {
            let blockers: Vec<String> =
                crate::forest::Forest::build(snapshot).roots.iter().map(|r| r.pid.to_string()).collect();
            let hint = if blockers.is_empty() {
                "nothing is blocked right now".to_string()
            } else {
                format!("root blockers now: {}", blockers.join(", "))
            };
            return Err(Error::new(
                ErrorKind::Usage,
                format!("pid {pid} is not a session of this database now ({hint}); nothing was cancelled"),
            ));
        };
        if let Some(why) = refusal(s) {
            return Err(Error::new(
                ErrorKind::Refused,
                format!("refusing to signal pid {pid}: {why}; nothing was cancelled"),
            ));
        }
    }
    Ok(())
}

fn send<C: Connection + ?Sized>(conn: &mut C, pid: i32, signal: Signal) -> Result<bool, Error> {
    let sql = format!("SELECT {}($1)", signal.function());
    let row = conn.client().query_one(&sql, &[&pid]).map_err(|e| {
        let mut err = Error::from_driver(&format!("{} pid {pid}", signal.word()), e);
        if err.kind == ErrorKind::Permission {
            err.message.push_str(
                "; the session belongs to another role — ask its owner, or use a credential with pg_signal_backend",
            );
        }
        err
    })?;
    Ok(row.get(0))
}

fn blocks_anyone(s: &Snapshot, pid: i32) -> bool {
    s.sessions.iter().any(|x| x.blocked_by.contains(&pid))
}

/// A signal took when the target blocks nobody and the statement seen before has ended: the
/// session is gone, no longer active, or running a newer statement. (Blocking nobody alone is
/// not proof: a target that blocked no one would pass trivially.)
fn took(before: &Snapshot, after: &Snapshot, pid: i32) -> bool {
    if blocks_anyone(after, pid) {
        return false;
    }
    match (before.get(pid), after.get(pid)) {
        (_, None) => true,
        (Some(b), Some(a)) => {
            let was_running = b.state.as_deref() == Some("active");
            let still_same = a.state.as_deref() == Some("active") && a.query_start_epoch == b.query_start_epoch;
            // An idle transaction ends only when the session does (or commits): it must leave the transaction.
            let idle_in_tx = b.has(crate::Label::IdleInTransaction)
                && a.has(crate::Label::IdleInTransaction)
                && a.xact_age_secs >= b.xact_age_secs;
            let statement_still_running = was_running && still_same;
            !(statement_still_running || idle_in_tx)
        }
        (None, Some(_)) => true,
    }
}

/// Polls until every one of `pids` has [`took`] or `grace` passes; returns the last snapshot
/// and when each pid was seen released.
fn watch<C: Connection + ?Sized>(
    client: &mut C,
    before: &Snapshot,
    pids: &[i32],
    grace: Duration,
    started: Instant,
    seen: &mut [Option<u64>],
) -> Result<Snapshot, Error> {
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(20);
    loop {
        let snap = Snapshot::take(client)?;
        for (i, &pid) in pids.iter().enumerate() {
            if seen[i].is_none() && took(before, &snap, pid) {
                seen[i] = Some(started.elapsed().as_millis() as u64);
            }
        }
        if seen.iter().all(Option::is_some) || Instant::now() >= deadline {
            return Ok(snap);
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Signals `pids` (validated against `before`), verifies, escalates if asked.
pub fn act<C: Connection + ?Sized>(
    client: &mut C,
    before: &Snapshot,
    pids: &[i32],
    signal: Signal,
    opts: ActOptions,
) -> Result<ActReport, Error> {
    validate_targets(before, pids)?;
    let started = Instant::now();
    let mut outcomes: Vec<PidOutcome> = Vec::new();
    for &pid in pids {
        let sent = send(client, pid, signal)?;
        outcomes.push(PidOutcome { pid, signal, sent, took: false, escalated: false, took_after_ms: None });
    }
    let mut seen = vec![None; pids.len()];
    let mut after = watch(client, before, pids, opts.grace, started, &mut seen)?;
    if opts.escalate && signal == Signal::Cancel && seen.iter().any(Option::is_none) {
        let pending: Vec<i32> = pids.iter().zip(&seen).filter(|(_, s)| s.is_none()).map(|(p, _)| *p).collect();
        for &pid in &pending {
            let sent = send(client, pid, Signal::Terminate)?;
            if let Some(o) = outcomes.iter_mut().find(|o| o.pid == pid) {
                o.signal = Signal::Terminate;
                o.escalated = true;
                o.sent |= sent;
            }
        }
        after = watch(client, before, pids, opts.grace, started, &mut seen)?;
    }
    for (o, s) in outcomes.iter_mut().zip(&seen) {
        o.took = s.is_some();
        o.took_after_ms = *s;
    }
    // The targets themselves are not counted: they were stopped, not released.
    let previously: Vec<i32> = before.blocked().map(|s| s.pid).filter(|p| !pids.contains(p)).collect();
    // Sessions queued behind one the signal freed wait a moment longer, for it to finish: given
    // a short settle, rather than counted as blocked by a race.
    let settle = Instant::now() + QUEUE_SETTLE;
    while !waiting(&after, &previously, pids).1.is_empty() && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
        after = Snapshot::take(client)?;
    }
    let (still_blocked, queued_behind) = waiting(&after, &previously, pids);
    Ok(ActReport {
        outcomes,
        previously_blocked: previously.len(),
        running_again: previously.len() - still_blocked.len() - queued_behind.len(),
        still_blocked,
        queued_behind,
        after,
    })
}

/// How long sessions queued behind a freed one get to move before the report.
const QUEUE_SETTLE: Duration = Duration::from_secs(1);

/// Of `previously` blocked sessions, those still waiting on a target, and those waiting on
/// someone else now.
fn waiting(after: &Snapshot, previously: &[i32], targets: &[i32]) -> (Vec<i32>, Vec<i32>) {
    let blocked: Vec<&crate::Session> =
        previously.iter().filter_map(|p| after.get(*p)).filter(|s| s.is_blocked()).collect();
    let (on_target, elsewhere): (Vec<&crate::Session>, Vec<&crate::Session>) =
        blocked.into_iter().partition(|s| s.blocked_by.iter().any(|b| targets.contains(b)));
    (on_target.iter().map(|s| s.pid).collect(), elsewhere.iter().map(|s| s.pid).collect())
}

/// What [`end_sessions_named`] found and left.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndReport {
    /// Sessions that carried the name.
    pub found: Vec<i32>,
    /// Sessions still there at the deadline.
    pub remaining: Vec<i32>,
}

/// Ends every session whose `application_name` is `name` (a migration's sessions, found by the
/// PGAPPNAME it was given); see [`end_sessions`].
pub fn end_sessions_named<C: Connection + ?Sized>(
    client: &mut C,
    name: &str,
    grace: Duration,
) -> Result<EndReport, Error> {
    end_sessions(client, &[crate::budget::Ownership::AppName(name.to_string())], grace)
}

/// Ends every session `ownership` claims (by the same rules as the lock-wait budget: its
/// application_name, or connected after the dyno started and running DDL): cancel first so a
/// waiting DDL leaves the lock queue at once, then terminate what is left (its client is gone
/// or going), and verify none of them remains within `grace`. Sessions are followed by pid
/// once found: a terminated DDL no longer runs DDL, yet is the same session until it is gone.
pub fn end_sessions<C: Connection + ?Sized>(
    client: &mut C,
    ownership: &[crate::budget::Ownership],
    grace: Duration,
) -> Result<EndReport, Error> {
    let claimed = |s: &Snapshot| -> Vec<i32> {
        let mut pids: Vec<i32> = ownership.iter().flat_map(|o| o.claims(s)).map(|c| c.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    };
    let found = claimed(&Snapshot::take(client)?);
    for &pid in &found {
        send(client, pid, Signal::Cancel)?;
    }
    for &pid in &found {
        send(client, pid, Signal::Terminate)?;
    }
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(20);
    loop {
        let snap = Snapshot::take(client)?;
        let remaining: Vec<i32> = found.iter().copied().filter(|p| snap.get(*p).is_some()).collect();
        if remaining.is_empty() || Instant::now() >= deadline {
            return Ok(EndReport { found, remaining });
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
