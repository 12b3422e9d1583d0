//! A lock-wait budget enforced from outside the session: when a statement of a session the tool
//! acts for (a migration, a release phase) has waited on a lock longer than the budget, cancel
//! that statement — and only that one — and verify it left the lock queue, so the queries queued
//! behind it run at once. It holds whatever the driver, the pooler or the app did with
//! `lock_timeout`.
//!
//! Whose session it is must be proved, not guessed: a session is claimed by its
//! `application_name` (given by the tool) or, for a release dyno, by connecting after the dyno
//! started *and* running DDL. The claim carries its reason, and the cancel is conditional on the
//! same statement still waiting (same pid, same `query_start`) at the instant it is sent.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::connect::Connection;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::forest::{root_of, Graph};
use crate::hold::{enforce_hold, holds, FirstSeen};
use crate::labels::Label;
use crate::snapshot::{Session, Snapshot};

/// How the sessions the tool acts for are recognised.
#[derive(Debug, Clone, PartialEq)]
pub enum Ownership {
    /// Sessions carrying this `application_name` (a migration started with `PGAPPNAME`).
    AppName(String),
    /// Sessions that connected at or after `since_epoch` (the server's clock, seconds since the
    /// epoch) and run DDL: a release dyno's, which carries no name of ours. `who` names the dyno.
    ConnectedAfter {
        /// When the dyno started.
        since_epoch: f64,
        /// `release.3`.
        who: String,
        /// Only sessions from this client address (the guard's own, inside the dyno: the
        /// dyno's address; None: from anywhere).
        client_addr: Option<String>,
    },
}

/// A session taken for the tool's, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Backend pid.
    pub pid: i32,
    /// The reason, in words: `began 2s after release.3 started; runs ALTER TABLE`.
    pub why: String,
}

impl Ownership {
    /// The sessions of `snap` this ownership claims (never the tool's own, never a system
    /// process, never one whose query is hidden unless its name proves it).
    pub fn claims(&self, snap: &Snapshot) -> Vec<Claim> {
        snap.sessions
            .iter()
            .filter(|s| s.pid != snap.own_pid && !s.has(Label::NonClient))
            .filter_map(|s| self.claim(s).map(|why| Claim { pid: s.pid, why }))
            .collect()
    }

    fn claim(&self, s: &Session) -> Option<String> {
        match self {
            Ownership::AppName(name) => {
                (s.application_name == *name).then(|| format!("its application_name is {name}"))
            }
            Ownership::ConnectedAfter { since_epoch, who, client_addr } => {
                let began = s.backend_start_epoch?;
                if began < *since_epoch || s.query_hidden || !s.has(Label::Ddl) {
                    return None;
                }
                if client_addr.as_ref().is_some_and(|a| s.client_addr.as_ref() != Some(a)) {
                    return None;
                }
                let verb = statement_kind(crate::labels::ddl_statement(s.query.as_deref().unwrap_or(""))?);
                let from = client_addr.as_ref().map(|a| format!(" from {who}'s address {a}")).unwrap_or_default();
                Some(format!("began {} after {who} started{from}; runs {verb}", seconds(began - since_epoch)))
            }
        }
    }
}

/// `ALTER TABLE`, `CREATE INDEX`…: the first two words of a statement, upper-cased.
fn statement_kind(q: &str) -> String {
    q.split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_ascii_uppercase()
}

fn seconds(s: f64) -> String {
    match s.max(0.0) {
        s if s < 10.0 => format!("{s:.1}s"),
        s if s < 60.0 => format!("{}s", s as u64),
        s => format!("{}m {}s", s as u64 / 60, s as u64 % 60),
    }
}

/// A claimed statement waiting on a lock, and who holds the queue up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    /// The waiting session.
    pub pid: i32,
    /// Why it was taken for the tool's.
    pub why: String,
    /// The statement, on one line.
    pub query: String,
    /// `AccessExclusiveLock on users`.
    pub lock: String,
    /// Milliseconds it has waited.
    pub waited_ms: u64,
    /// The root blocker: the session at the head of the chain.
    pub blocker: Option<Holder>,
    /// Sessions queued behind the waiting statement (they wait for it, directly or not).
    pub queued_behind: usize,
    /// When the statement started (to cancel it only while it is the same one).
    #[serde(skip)]
    pub query_start_epoch: Option<f64>,
}

/// The session holding a wait up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Backend pid.
    pub pid: i32,
    /// `application_name`.
    pub application_name: String,
    /// `active`, `idle in transaction`… (None when hidden from this credential).
    pub state: Option<String>,
    /// Seconds its transaction has been open.
    pub xact_age_secs: Option<f64>,
    /// Its query on one line (or that it is hidden).
    pub query: String,
    /// `backup`, `idle in transaction`…
    pub labels: Vec<String>,
}

impl Wait {
    /// The part of a wait that makes it a different one (who waits, behind whom, for what).
    pub fn key(&self) -> (i32, Option<i32>, String) {
        (self.pid, self.blocker.as_ref().map(|b| b.pid), self.lock.clone())
    }
}

/// A session as a [`Holder`] (who holds a wait up, or who queued behind a hold).
pub(crate) fn holder_of(r: &Session) -> Holder {
    Holder {
        pid: r.pid,
        application_name: r.application_name.clone(),
        state: r.state.clone(),
        xact_age_secs: r.xact_age_secs,
        query: r.query_line(80),
        labels: r.labels.iter().map(|l| l.word().to_string()).collect(),
    }
}

/// The claimed sessions that wait on a lock now.
pub fn waits(snap: &Snapshot, claims: &[Claim]) -> Vec<Wait> {
    let graph = Graph::of(snap);
    claims
        .iter()
        .filter_map(|c| {
            let s = snap.get(c.pid)?;
            if !s.is_blocked() {
                return None;
            }
            let lock = s
                .waiting_for
                .as_ref()
                .map(|w| format!("{} on {}", w.mode, w.object.as_deref().unwrap_or(&w.locktype)))
                .unwrap_or_else(|| "a lock".into());
            let blocker = root_of(snap, s.pid).and_then(|p| snap.get(p)).map(holder_of);
            Some(Wait {
                pid: s.pid,
                why: c.why.clone(),
                query: s.query_line(80),
                lock,
                waited_ms: (s.wait_secs().unwrap_or(0.0) * 1000.0) as u64,
                blocker,
                queued_behind: graph.downstream(s.pid).len(),
                query_start_epoch: s.query_start_epoch,
            })
        })
        .collect()
}

/// What the budget did to one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enforcement {
    /// The wait it acted on, as seen just before.
    pub wait: Wait,
    /// The budget, in milliseconds.
    pub budget_ms: u64,
    /// The cancel was sent (false: the statement had ended or moved on first — nothing sent).
    pub sent: bool,
    /// The statement was seen to leave the lock queue.
    pub verified: bool,
    /// Of the sessions queued behind it, how many run again.
    pub released: usize,
    /// Milliseconds from the statement's budget running out until the cancel was verified.
    pub overrun_ms: Option<u64>,
    /// The statement held a lock others queued behind past the budget (it did not wait for
    /// one): `wait` then names the statement, the lock it held and the first waiter's wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Box<crate::hold::HeldCut>>,
}

impl Enforcement {
    /// Whether it cut a statement for holding a lock (not for waiting on one).
    pub fn for_holding(&self) -> bool {
        self.held.is_some()
    }
}

/// Cancels `wait`'s statement if it is still the same one and still waiting, then verifies
/// within `grace` that it left the queue and counts who runs again.
pub fn enforce<C: Connection + ?Sized>(
    client: &mut C,
    before: &Snapshot,
    wait: &Wait,
    budget: Duration,
    grace: Duration,
) -> Result<Enforcement, Error> {
    // One statement decides and acts: the cancel goes out only if the session still runs the
    // statement seen (same query_start) and still waits on a lock.
    let sent: bool = client
        .client()
        .query_opt(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
             WHERE pid = $1 AND extract(epoch FROM query_start)::float8 = $2 AND wait_event_type = 'Lock'",
            &[&wait.pid, &wait.query_start_epoch],
        )
        .map_err(|e| Error::from_driver(&format!("cancel pid {}", wait.pid), e))?
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false);
    let queued: Vec<i32> = Graph::of(before).downstream(wait.pid).into_iter().collect();
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(10);
    let (verified, after) = loop {
        let after = Snapshot::take(client)?;
        let gone = after.get(wait.pid).is_none_or(|s| !s.is_blocked() || s.query_start_epoch != wait.query_start_epoch);
        if gone || Instant::now() >= deadline {
            break (gone, after);
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(100));
    };
    let released = queued.iter().filter(|p| after.get(**p).is_none_or(|s| !s.is_blocked())).count();
    let overrun_ms = verified.then(|| {
        (wait.waited_ms + (before.taken_at.elapsed().unwrap_or_default().as_millis() as u64))
            .saturating_sub(budget.as_millis() as u64)
    });
    Ok(Enforcement {
        wait: wait.clone(),
        budget_ms: budget.as_millis() as u64,
        sent,
        verified: sent && verified,
        released,
        overrun_ms,
        held: None,
    })
}

/// The watch over the sessions a tool acts for: each new wait said once, and the budget
/// enforced when one is set. One mechanism for a migration (`migrate-restart`) and a release
/// phase (`migrate-restart release`, `maintenance-window --promote-from`).
#[derive(Debug)]
pub struct Guard {
    ownership: Vec<Ownership>,
    budgets: Budgets,
    only_ddl: bool,
    grace: Duration,
    last_keys: BTreeSet<(i32, Option<i32>, String)>,
    acted: BTreeSet<(i32, u64)>,
    first_seen: FirstSeen,
}

/// How long the site may be blocked by the tool's statements: waiting for a lock (`wait`), and
/// holding one others queue behind (`hold`, counted from the first waiter's wait). None: that
/// side is only watched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    /// A statement of the tool's waits on a lock no longer than this.
    pub wait: Option<Duration>,
    /// Nobody waits on a lock a statement of the tool's holds longer than this.
    pub hold: Option<Duration>,
}

impl Budgets {
    /// The same budget for both sides (`--lock-wait` covers both unless `--lock-hold` says).
    pub fn both(d: Option<Duration>) -> Budgets {
        Budgets { wait: d, hold: d }
    }
}

/// What one look found and did.
#[derive(Debug, Default)]
pub struct Look {
    /// Waits not seen at the previous look.
    pub new_waits: Vec<Wait>,
    /// The waits seen before are over, and not because the budget cancelled them.
    pub got_lock: bool,
    /// What the budget cancelled at this look.
    pub enforcements: Vec<Enforcement>,
    /// How soon to look again (sooner when a wait is about to reach the budget).
    pub next: Duration,
}

/// How often to look while nothing is close to the budget.
const LOOK_EVERY: Duration = Duration::from_millis(250);

impl Guard {
    /// A guard with `budgets` (None on a side: watch only). `only_ddl`: cut only DDL statements
    /// (a release phase's UPDATE waiting on a row is reported, never cancelled).
    pub fn new(budgets: Budgets, only_ddl: bool, grace: Duration) -> Guard {
        Guard {
            ownership: Vec::new(),
            budgets,
            only_ddl,
            grace,
            last_keys: BTreeSet::new(),
            acted: BTreeSet::new(),
            first_seen: FirstSeen::default(),
        }
    }

    /// Adds a way to recognise the tool's sessions.
    pub fn claim(&mut self, o: Ownership) {
        self.ownership.push(o);
    }

    /// Changes the budgets: when another guard acts first (`migrate-guard` inside the dyno),
    /// this one steps back to a second line or to watching.
    pub fn set_budgets(&mut self, budgets: Budgets) {
        self.budgets = budgets;
    }

    /// Whether it knows any of the tool's sessions yet.
    pub fn is_armed(&self) -> bool {
        !self.ownership.is_empty()
    }

    /// The sessions claimed in `snap`, each once.
    pub fn claims(&self, snap: &Snapshot) -> Vec<Claim> {
        let mut claims: Vec<Claim> = Vec::new();
        for o in &self.ownership {
            for c in o.claims(snap) {
                if !claims.iter().any(|x| x.pid == c.pid) {
                    claims.push(c);
                }
            }
        }
        claims
    }

    /// One look: a snapshot, the claimed sessions' waits, the budget.
    pub fn look<C: Connection + ?Sized>(&mut self, client: &mut C) -> Result<Look, Error> {
        let mut look = Look { next: LOOK_EVERY, ..Look::default() };
        if self.ownership.is_empty() {
            return Ok(look);
        }
        let snap = Snapshot::take(client)?;
        let waits = waits(&snap, &self.claims(&snap));
        let keys: BTreeSet<_> = waits.iter().map(Wait::key).collect();
        look.new_waits = waits.iter().filter(|w| !self.last_keys.contains(&w.key())).cloned().collect();
        let ended_by_budget = self.last_keys.iter().any(|(pid, _, _)| self.acted.iter().any(|(p, _)| p == pid));
        look.got_lock = keys.is_empty() && !self.last_keys.is_empty() && !ended_by_budget;
        self.last_keys = keys;
        if let Some(budget) = self.budgets.wait {
            for w in &waits {
                let id = (w.pid, w.query_start_epoch.map(f64::to_bits).unwrap_or(0));
                if self.acted.contains(&id) || !self.may_cut(&snap, w.pid) {
                    continue;
                }
                let waited = Duration::from_millis(w.waited_ms);
                if waited < budget {
                    // Look again just after the budget runs out, not a poll interval later.
                    look.next = look.next.min((budget - waited).max(Duration::from_millis(20)));
                    continue;
                }
                let e = enforce(client, &snap, w, budget, self.grace)?;
                if e.sent {
                    self.acted.insert(id);
                }
                look.enforcements.push(e);
            }
        }
        if let Some(budget) = self.budgets.hold {
            let claims = self.claims(&snap);
            for h in holds(&snap, &claims) {
                if self.acted.contains(&h.key()) || !self.may_cut(&snap, h.pid) {
                    continue;
                }
                // A session claimed by when it connected and what it runs (a release dyno's,
                // which carries no name of ours) is cut only while that DDL runs: never ended
                // between statements, where nothing but its name could prove it the migration's.
                if !self.named_ours(&snap, h.pid) && h.state.as_deref() != Some("active") {
                    continue;
                }
                let waited = self.first_seen.waited(&h);
                if waited < budget {
                    look.next = look.next.min((budget - waited).max(Duration::from_millis(20)));
                    continue;
                }
                let e = enforce_hold(client, &snap, &h, waited, budget, self.grace)?;
                if e.sent {
                    self.acted.insert(h.key());
                }
                look.enforcements.push(e);
            }
        }
        Ok(look)
    }

    /// Whether `pid` is claimed by its name (`application_name` given by the tool).
    fn named_ours(&self, snap: &Snapshot, pid: i32) -> bool {
        self.ownership
            .iter()
            .filter(|o| matches!(o, Ownership::AppName(_)))
            .any(|o| o.claims(snap).iter().any(|c| c.pid == pid))
    }

    /// Whether the budget may cut this claimed session's statement (with `only_ddl`, only DDL).
    fn may_cut(&self, snap: &Snapshot, pid: i32) -> bool {
        !self.only_ddl || snap.get(pid).is_some_and(|s| s.has(Label::Ddl))
    }
}
