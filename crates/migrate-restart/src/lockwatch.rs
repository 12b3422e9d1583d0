//! While the migration runs: say who holds any lock its sessions wait for — once per change,
//! not once per poll — and enforce the lock-wait budget from outside (pg-locks' [`Guard`], the
//! mechanism `migrate-restart release` uses too). A statement of the migration that has waited
//! past the budget is cancelled, verified: `PGOPTIONS` can be ignored (a driver that is not
//! libpq-based, a pooler) or overridden (`SET lock_timeout = 0` in the migration), and a DDL
//! that waits without a timeout is what keeps the site down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cli_kit::output::yellow;
use cli_kit::{Output, ResolvedDatabase};
use pg_locks::{Enforcement, Guard, Ownership};

/// How long a cancel has to be seen to take.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// What the watch saw and did during one attempt.
#[derive(Debug, Default, Clone)]
pub struct WatchLog {
    /// Each wait, as printed.
    pub waits: Vec<String>,
    /// What the outside budget cancelled.
    pub enforcements: Vec<Enforcement>,
}

/// Starts the watcher on the sessions named `session`; it ends when `stop` is set. `budget`:
/// cancel a statement that waited longer (None: only watch). A database it cannot reach is
/// reported once.
pub fn spawn(
    db: ResolvedDatabase,
    session: String,
    budget: Option<Duration>,
    out: Output,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WatchLog>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut client = match pg_locks::connect(&db.connect_options("migrate-restart-watch")) {
            Ok(c) => c,
            Err(e) => {
                out.warn(format!("lock watch off (and the outside lock-wait budget with it): {e}"));
                return;
            }
        };
        let mut guard = Guard::new(budget, false, CANCEL_GRACE);
        guard.claim(Ownership::AppName(session));
        while !stop.load(Ordering::SeqCst) {
            let next = match guard.look(&mut client) {
                Ok(look) => {
                    for w in &look.new_waits {
                        let line = format!("migration waits for {}, {}", w.lock, release_phase::text::holder_line(w));
                        out.note(format!("{} {line}", yellow().apply_to("⏳")));
                        if let Ok(mut l) = log.lock() {
                            l.waits.push(line);
                        }
                    }
                    if look.got_lock {
                        out.note("✓ the migration got its lock");
                    }
                    for e in look.enforcements {
                        for l in release_phase::text::enforcement_lines(&e, "migration") {
                            out.note(l);
                        }
                        if e.verified {
                            out.note(
                                "   its own lock_timeout was not in force (PGOPTIONS ignored or overridden); treated as a lock timeout",
                            );
                        }
                        if let Ok(mut l) = log.lock() {
                            l.enforcements.push(e);
                        }
                    }
                    look.next
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
