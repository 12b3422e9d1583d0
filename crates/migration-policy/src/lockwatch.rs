//! While the migration runs: who holds any lock its sessions wait for — once per change, not
//! once per poll — and the lock-wait budget enforced from outside the session (pg-locks'
//! [`Guard`], the mechanism `migrate-restart release` uses too). A statement of the migration
//! that has waited past the budget is cancelled, verified: `PGOPTIONS` can be ignored (a driver
//! that is not libpq-based, a pooler) or overridden (`SET lock_timeout = 0` in the migration),
//! and a DDL that waits without a timeout is what keeps the site down.
//!
//! The watch emits typed [`WatchEvent`]s; each tool words them (`migrate-restart` on the
//! operator's terminal, `migrate-guard` in the release output, `release-phase`'s follower).
//!
//! One [`Watcher`] does the looking; it runs on a thread ([`Watch::start`], beside a migration
//! that is being waited for) or is looked at inline by a loop that has other work between looks
//! (`release-phase`'s follower reads the output and the API too).
//!
//! **When migrate-guard is seen inside the dyno** (its first line in the output), the watch from
//! outside becomes a second line: its budget becomes the later of its own and the inside
//! guard's, plus [`SECOND_LINE`] ([`second_line`]). The two behaviours we had — raise by 2 s
//! (the one-off path) and disarm (the release-phase path) — were weighed: disarming leaves the
//! site unbounded when the inside guard cannot act (its connection lost, no free slot, an old
//! version); a second line still bounds it, and acting only after the inside guard would have
//! (at its own budget, read from its line) means the two never race to cancel one statement.
//! The safer of the two is the second line, in both paths.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pg_locks::{Budgets, ConnectOptions, Enforcement, Guard, Ownership, Wait};

/// How long a cancel has to be seen to take.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// How long after the inside guard would have acted the outside watch acts, as a second line.
pub const SECOND_LINE: Duration = Duration::from_secs(2);

/// The outside budget once migrate-guard is seen inside the dyno: the later of `outside` and
/// the inside guard's own (`inside`, from its first line, when it says it), plus
/// [`SECOND_LINE`]. None (watch only) stays None.
pub fn second_line(outside: Option<Duration>, inside: Option<Duration>) -> Option<Duration> {
    outside.map(|o| o.max(inside.unwrap_or_default()) + SECOND_LINE)
}

/// Both outside budgets once migrate-guard is seen inside the dyno, from its first line. The
/// hold side follows the inside guard's word: where it says it does not cut holds
/// (`--lock-hold off`, a deliberate long statement), the outside watch does not either; where
/// it says nothing of holds (a guard from before the hold budget), the outside one is the only
/// line and keeps its own, raised as for a wait.
pub fn second_lines(outside: Budgets, inside_line: &str) -> Budgets {
    let inside = crate::signs::guard_budget(inside_line);
    Budgets {
        wait: second_line(outside.wait, inside),
        hold: match crate::signs::guard_hold(inside_line) {
            crate::signs::InsideHold::Off => None,
            crate::signs::InsideHold::At(d) => second_line(outside.hold, Some(d)),
            crate::signs::InsideHold::Unsaid => second_line(outside.hold, inside),
        },
    }
}

/// The one watcher: which sessions are the migration's, their waits (each once per change),
/// and the budget enforced on them (pg-locks' [`Guard`]).
pub struct Watcher {
    client: pg_locks::Conn,
    guard: Guard,
}

impl Watcher {
    /// A watcher reading through `client`, claiming the sessions `ownership` names. `only_ddl`:
    /// the budgets cut only DDL (a release phase's data change waiting on a row is said, not
    /// cancelled).
    pub fn new(client: pg_locks::Conn, ownership: Vec<Ownership>, budgets: Budgets, only_ddl: bool) -> Watcher {
        let mut guard = Guard::new(budgets, only_ddl, CANCEL_GRACE);
        for o in ownership {
            guard.claim(o);
        }
        Watcher { client, guard }
    }

    /// Claims more sessions (a release dyno seen after the watch began).
    pub fn claim(&mut self, o: Ownership) {
        self.guard.claim(o);
    }

    /// Changes the budgets.
    pub fn set_budgets(&mut self, budgets: Budgets) {
        self.guard.set_budgets(budgets);
    }

    /// One look: what changed, as events, and how soon to look again. Nothing to look at before
    /// a session can be claimed.
    pub fn look(&mut self) -> Result<(Vec<WatchEvent>, Duration), pg_locks::Error> {
        if !self.guard.is_armed() {
            return Ok((Vec::new(), IDLE_LOOK));
        }
        let look = self.guard.look(&mut self.client)?;
        let mut events: Vec<WatchEvent> = look.new_waits.into_iter().map(WatchEvent::Waits).collect();
        if look.got_lock {
            events.push(WatchEvent::GotLock);
        }
        events.extend(look.enforcements.into_iter().map(WatchEvent::Cut));
        Ok((events, look.next))
    }

    /// The claimed sessions in a fresh snapshot (what a deadline ends).
    pub fn claims(&mut self) -> Result<(pg_locks::Snapshot, Vec<pg_locks::Claim>), pg_locks::Error> {
        let snap = pg_locks::Snapshot::take(&mut self.client)?;
        let claims = self.guard.claims(&snap);
        Ok((snap, claims))
    }

    /// Its connection, to act on what it claims.
    pub fn client(&mut self) -> &mut pg_locks::Conn {
        &mut self.client
    }
}

/// How soon to look again while no session can be claimed yet.
const IDLE_LOOK: Duration = Duration::from_millis(250);

/// What the watch saw and did during one attempt.
#[derive(Debug, Default, Clone)]
pub struct WatchLog {
    /// Each wait, in one line: `migration waits for …, held by …`.
    pub waits: Vec<String>,
    /// What the budget cancelled.
    pub enforcements: Vec<Enforcement>,
    /// The watch could not read the database (the budget was not enforced): why.
    pub unreachable: Option<String>,
}

/// What the watch reports as it happens.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// A statement of the migration began to wait (or now waits behind someone else).
    Waits(Wait),
    /// The waits seen before are over, and not because the budget cancelled them.
    GotLock,
    /// The budget acted on a statement.
    Cut(Enforcement),
    /// The database could not be reached: no watch, no budget from outside.
    Unreachable(String),
}

/// The budgets a running watch enforces, changeable while it runs: when `migrate-guard` turns
/// out to guard the run from inside the dyno, the outside watch becomes a second line.
#[derive(Debug, Clone, Default)]
pub struct Budget(Arc<Mutex<Budgets>>);

impl Budget {
    /// These budgets.
    pub fn new(b: Budgets) -> Budget {
        Budget(Arc::new(Mutex::new(b)))
    }

    /// Changes them.
    pub fn set(&self, b: Budgets) {
        if let Ok(mut now) = self.0.lock() {
            *now = b;
        }
    }

    /// What they are now.
    pub fn get(&self) -> Budgets {
        self.0.lock().map(|b| *b).unwrap_or_default()
    }
}

/// Where the watch reads: a connection to open in its thread, or one opened before anything
/// started (so that a database the watch cannot reach refuses the run instead of leaving a
/// budget announced and not enforced).
pub enum Reads {
    /// Connect in the watch's thread; a failure is reported as [`WatchEvent::Unreachable`].
    Connect(ConnectOptions),
    /// Already connected.
    Connected(Box<pg_locks::Conn>),
}

/// Starts the watcher on the sessions `ownership` claims; it ends when `stop` is set.
/// `budget`: cut a statement that waited, or was waited on, longer (None on a side: only watch).
pub fn spawn(
    reads: Reads,
    ownership: Vec<Ownership>,
    budget: Budget,
    on_event: impl Fn(&WatchEvent) + Send + 'static,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WatchLog>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let record = |event: WatchEvent| {
            on_event(&event);
            if let Ok(mut l) = log.lock() {
                match event {
                    WatchEvent::Waits(w) => {
                        l.waits.push(format!("migration waits for {}, {}", w.lock, crate::text::holder_line(&w)))
                    }
                    WatchEvent::Cut(e) => l.enforcements.push(e),
                    WatchEvent::Unreachable(why) => l.unreachable = Some(why),
                    WatchEvent::GotLock => {}
                }
            }
        };
        let client = match reads {
            Reads::Connected(c) => *c,
            Reads::Connect(connect) => match pg_locks::connect(&connect) {
                Ok(c) => c,
                Err(e) => return record(WatchEvent::Unreachable(e.to_string())),
            },
        };
        let mut watcher = Watcher::new(client, ownership, budget.get(), false);
        while !stop.load(Ordering::SeqCst) {
            watcher.set_budgets(budget.get());
            let next = match watcher.look() {
                Ok((events, next)) => {
                    events.into_iter().for_each(&record);
                    next
                }
                Err(_) => Duration::from_secs(1),
            };
            // Sleep in short steps so the end of the migration is not delayed by the watcher.
            let until = Instant::now() + next;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
            }
        }
    })
}

/// A running watch: stop it and read what it saw.
pub struct Watch {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WatchLog>>,
    budget: Budget,
    handle: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts [`spawn`] with its own stop flag and log.
    pub fn start(
        reads: Reads,
        ownership: Vec<Ownership>,
        budget: Budgets,
        on_event: impl Fn(&WatchEvent) + Send + 'static,
    ) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<WatchLog>> = Arc::default();
        let budget = Budget::new(budget);
        let handle = spawn(reads, ownership, budget.clone(), on_event, stop.clone(), log.clone());
        Watch { stop, log, budget, handle: Some(handle) }
    }

    /// A watch that watches nothing (no database known).
    pub fn none() -> Watch {
        Watch { stop: Arc::default(), log: Arc::default(), budget: Budget::default(), handle: None }
    }

    /// The budget it enforces, to change while it runs.
    pub fn budget(&self) -> Budget {
        self.budget.clone()
    }

    /// What it has seen so far.
    pub fn log(&self) -> WatchLog {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops the watch and returns what it saw.
    pub fn finish(mut self) -> WatchLog {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.log()
    }

    /// Stops the watch and returns what it saw, waiting at most `limit` for its thread: when a
    /// stop is under way (the platform's SIGKILL follows SIGTERM), a look in flight on a loaded
    /// database must not delay what is left to say. A thread still looking is left to end on
    /// its own; it acts on nothing once stopped.
    pub fn finish_within(mut self, limit: Duration) -> WatchLog {
        self.stop.store(true, Ordering::SeqCst);
        let until = Instant::now() + limit;
        while self.handle.as_ref().is_some_and(|h| !h.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            let _ = self.handle.take().map(|h| h.join());
        }
        self.log()
    }
}
