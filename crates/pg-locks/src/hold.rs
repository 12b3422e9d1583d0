//! The hold side of the budget: a statement of the tool's that *holds* a lock other sessions
//! have queued behind for longer than the budget is cut — the other half of "the site is
//! blocked no longer than the budget". A rewrite, a non-concurrent index build or a validating
//! scan on production's data waits for nothing; it holds `AccessExclusiveLock` (or
//! `ShareLock`) for as long as the data takes, and every query on the table queues behind it.
//!
//! The clock is the **first waiter's** wait, never the statement's age: a long statement nobody
//! queues behind (a rewrite under maintenance mode, a table nothing reads) is never cut. A
//! waiter that queued behind the migration while it was still waiting for the lock has been
//! blocked since then, and that is what the site feels, so its wait counts from its start.
//!
//! Whose statement it is is proved the same way as for a wait ([`crate::Ownership`]), and the
//! cancel is conditional in one statement on the same statement still running (same pid, same
//! `query_start`) and still having a session queued behind it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::budget::{Claim, Enforcement, Holder, Wait};
use crate::connect::Connection;
use crate::error::Error;
use crate::forest::Graph;
use crate::labels::Label;
use crate::snapshot::{Session, Snapshot};

/// A claimed statement holding a lock other sessions queue behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// The holding session (the tool's).
    pub pid: i32,
    /// Why it was taken for the tool's.
    pub why: String,
    /// Its statement, on one line.
    pub query: String,
    /// `active`, or `idle in transaction` (between two statements of its transaction).
    pub state: Option<String>,
    /// How long its statement has run (for an idle transaction: how long the transaction has
    /// been open), in milliseconds.
    pub running_ms: u64,
    /// What it holds that the first waiter wants: `AccessExclusiveLock on users`.
    pub lock: String,
    /// Sessions waiting on it, directly or behind another waiter.
    pub queued: usize,
    /// The session that has waited longest for it.
    pub first_waiter: Holder,
    /// What that session waits for: `AccessShareLock on users`.
    pub first_waiter_wants: String,
    /// How long that session has waited, in milliseconds (None: the server does not say —
    /// PostgreSQL 12 and 13 have no `waitstart` — and the guard counts from when it first saw it).
    pub first_waited_ms: Option<u64>,
    /// The form of the statement that would not hold the lock this long, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_form: Option<String>,
    /// The statement, as the server's clock started it (to cut only the same one).
    #[serde(skip)]
    pub query_start_epoch: Option<f64>,
    /// The first waiter's own statement start (to count its wait from when it was first seen
    /// where the server does not say).
    #[serde(skip)]
    pub first_waiter_key: (i32, u64),
}

impl Hold {
    /// The statement it is: pid and start.
    pub fn key(&self) -> (i32, u64) {
        (self.pid, self.query_start_epoch.map(f64::to_bits).unwrap_or(0))
    }
}

/// What the hold side adds to an [`Enforcement`]: the cut statement held a lock, it did not
/// wait for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldCut {
    /// How long the statement had run when it was cut, in milliseconds.
    pub running_ms: u64,
    /// Sessions queued behind it when it was cut.
    pub queued: usize,
    /// The one that had waited longest, and what it wanted.
    pub first_waiter: Holder,
    /// `AccessShareLock on users`.
    pub first_waiter_wants: String,
    /// How it was ended: `cancel`, or `terminate` for a transaction idle between statements
    /// (a cancel does nothing there).
    pub action: crate::Signal,
    /// The form of the statement that would not hold the lock this long, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_form: Option<String>,
}

/// The claimed sessions holding a lock someone queues behind now. A claimed session that is
/// itself waiting is the wait side's; only sessions that are not the tool's and are clients
/// count as waiters.
pub fn holds(snap: &Snapshot, claims: &[Claim]) -> Vec<Hold> {
    let graph = Graph::of(snap);
    let claimed = |pid: i32| claims.iter().any(|c| c.pid == pid);
    claims
        .iter()
        .filter_map(|c| {
            let s = snap.get(c.pid)?;
            // A holder that also waits (for a lock on another table) still holds what it took:
            // only sessions waiting for a relation it holds count then — the ones queued behind
            // its waiting request are the wait side's.
            let behind_a_held_lock = |w: &Session| {
                !s.is_blocked()
                    || w.waiting_for
                        .as_ref()
                        .and_then(|l| l.object.as_deref())
                        .is_some_and(|o| held_mode(s, o).is_some())
            };
            let direct: Vec<&Session> = graph
                .victims
                .get(&s.pid)
                .into_iter()
                .flatten()
                .filter_map(|p| snap.get(*p))
                .filter(|w| !claimed(w.pid) && !w.has(Label::NonClient) && !w.has(Label::Own))
                .filter(|w| behind_a_held_lock(w))
                .collect();
            // The longest waiter; where the server gives no wait start, the oldest statement.
            let first = direct.iter().max_by(|a, b| {
                let key = |w: &Session| (w.waiting_for.as_ref().and_then(|l| l.wait_secs), w.query_age_secs);
                key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal)
            })?;
            let wants = first.waiting_for.as_ref();
            let object = wants.and_then(|w| w.object.clone());
            let lock = object
                .as_deref()
                .and_then(|o| held_mode(s, o).map(|m| format!("{m} on {o}")))
                .unwrap_or_else(|| format!("the lock pid {} wants", first.pid));
            let idle = s.has(Label::IdleInTransaction);
            let running = if idle { s.xact_age_secs } else { s.query_age_secs };
            Some(Hold {
                pid: s.pid,
                why: c.why.clone(),
                query: s.query_line(80),
                state: s.state.clone(),
                running_ms: (running.unwrap_or(0.0) * 1000.0) as u64,
                lock,
                queued: graph.downstream(s.pid).iter().filter(|p| !claimed(**p)).count(),
                first_waiter: crate::budget::holder_of(first),
                first_waiter_wants: wants
                    .map(|w| format!("{} on {}", w.mode, w.object.as_deref().unwrap_or(&w.locktype)))
                    .unwrap_or_else(|| "a lock".into()),
                first_waited_ms: wants.and_then(|w| w.wait_secs).map(|s| (s * 1000.0) as u64),
                safe_form: s.query.as_deref().and_then(crate::safe_form::safe_form).map(str::to_string),
                query_start_epoch: s.query_start_epoch,
                first_waiter_key: (first.pid, first.query_start_epoch.map(f64::to_bits).unwrap_or(0)),
            })
        })
        .collect()
}

/// The strongest mode `s` holds on relation `object` (`users AccessShareLock` entries).
fn held_mode(s: &Session, object: &str) -> Option<String> {
    let prefix = format!("{object} ");
    s.holds
        .iter()
        .filter_map(|h| h.strip_prefix(&prefix))
        .filter_map(crate::lockplan::LockMode::parse)
        .max()
        .map(|m| m.name().to_string())
}

/// How long waiters were first seen, for servers that do not say when a wait began.
#[derive(Debug, Default)]
pub struct FirstSeen(BTreeMap<(i32, u64), Instant>);

impl FirstSeen {
    /// How long `hold`'s first waiter has waited: the server's count where it gives one, else
    /// the time since this guard first saw that waiter (an undercount, never an overcount: a
    /// statement is never cut early for a clock we cannot read).
    pub fn waited(&mut self, hold: &Hold) -> Duration {
        let seen = *self.0.entry(hold.first_waiter_key).or_insert_with(Instant::now);
        hold.first_waited_ms.map(Duration::from_millis).unwrap_or_else(|| seen.elapsed())
    }
}

/// Cuts `hold`'s statement if it is still the same one and still has a session queued behind
/// it — a cancel for a running statement, a terminate for a transaction idle between statements
/// — then verifies within `grace` that nobody queues behind it any more.
pub fn enforce_hold<C: Connection + ?Sized>(
    client: &mut C,
    before: &Snapshot,
    hold: &Hold,
    waited: Duration,
    budget: Duration,
    grace: Duration,
) -> Result<Enforcement, Error> {
    let idle = hold.state.as_deref() == Some("idle in transaction");
    let signal = if idle { "pg_terminate_backend" } else { "pg_cancel_backend" };
    // One statement decides and acts: the same statement, in the same state, still blocking.
    let sent: bool = client
        .client()
        .query_opt(
            &format!(
                "SELECT {signal}(a.pid) FROM pg_stat_activity a \
                 WHERE a.pid = $1 AND extract(epoch FROM a.query_start)::float8 = $2 AND a.state = $3 \
                 AND EXISTS (SELECT 1 FROM pg_stat_activity b WHERE b.pid <> a.pid AND b.backend_type = 'client backend' \
                   AND a.pid = ANY (pg_blocking_pids(b.pid)))"
            ),
            &[&hold.pid, &hold.query_start_epoch, &hold.state],
        )
        .map_err(|e| Error::from_driver(&format!("cancel pid {}", hold.pid), e))?
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false);
    let queued: Vec<i32> = Graph::of(before).downstream(hold.pid).into_iter().collect();
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(10);
    let (verified, after) = loop {
        let after = Snapshot::take(client)?;
        // Locks last until the transaction ends, not the statement: verified only when the
        // session is gone or nobody queues behind it any more.
        let gone =
            after.get(hold.pid).is_none() || Graph::of(&after).victims.get(&hold.pid).is_none_or(|v| v.is_empty());
        if gone || Instant::now() >= deadline {
            break (gone, after);
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(100));
    };
    let released = queued.iter().filter(|p| after.get(**p).is_none_or(|s| !s.blocked_by.contains(&hold.pid))).count();
    let overrun_ms = verified.then(|| {
        (waited.as_millis() as u64 + before.taken_at.elapsed().unwrap_or_default().as_millis() as u64)
            .saturating_sub(budget.as_millis() as u64)
    });
    Ok(Enforcement {
        wait: Wait {
            pid: hold.pid,
            why: hold.why.clone(),
            query: hold.query.clone(),
            lock: hold.lock.clone(),
            waited_ms: waited.as_millis() as u64,
            blocker: None,
            queued_behind: hold.queued,
            query_start_epoch: hold.query_start_epoch,
        },
        budget_ms: budget.as_millis() as u64,
        sent,
        verified: sent && verified,
        released,
        overrun_ms,
        held: Some(Box::new(HeldCut {
            running_ms: hold.running_ms,
            queued: hold.queued,
            first_waiter: hold.first_waiter.clone(),
            first_waiter_wants: hold.first_waiter_wants.clone(),
            action: if idle { crate::Signal::Terminate } else { crate::Signal::Cancel },
            safe_form: hold.safe_form.clone(),
        })),
    })
}
