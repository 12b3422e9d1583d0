//! While the migration runs: once a second, if its session waits on a lock, say who holds it
//! — once per change, not once per second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cli_kit::output::yellow;
use cli_kit::{format_duration, Output, ResolvedDatabase};
use pg_locks::{root_of, Snapshot};

/// Starts the watcher; it ends when `stop` is set. A database it cannot reach is reported once.
pub fn spawn(
    db: ResolvedDatabase,
    session: String,
    out: Output,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut client = match pg_locks::connect(&db.connect_options("migrate-restart-watch")) {
            Ok(c) => c,
            Err(e) => {
                out.warn(format!("lock watch off: {e}"));
                return;
            }
        };
        // What was last said, as (waiting pid, holder pid, lock): the line itself carries ages
        // that change every second, and a wait is said once per change, not once per poll.
        let mut last: Option<(i32, Option<i32>, String)> = None;
        while !stop.load(Ordering::SeqCst) {
            if let Ok(snap) = Snapshot::take(&mut client) {
                let key = wait_key(&snap, &session);
                let line = key.as_ref().and_then(|_| describe_wait(&snap, &session));
                if key != last {
                    if let Some(l) = &line {
                        out.note(format!("{} {l}", yellow().apply_to("⏳")));
                        if let Ok(mut s) = seen.lock() {
                            s.push(l.clone());
                        }
                    } else if last.is_some() {
                        out.note("✓ the migration got its lock");
                    }
                    last = key;
                }
            }
            // Sleep in short steps so the end of the migration is not delayed by the watcher.
            for _ in 0..10 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

/// Who waits, behind whom, for what: the part of a wait that makes it a different one.
fn wait_key(snap: &Snapshot, session: &str) -> Option<(i32, Option<i32>, String)> {
    let waiting = snap.sessions.iter().find(|s| s.application_name == session && s.is_blocked())?;
    let what = waiting.waiting_for.as_ref().map(|w| format!("{} {:?}", w.mode, w.object)).unwrap_or_default();
    Some((waiting.pid, root_of(snap, waiting.pid), what))
}

/// `migration waits for AccessExclusiveLock on users, held by pid 721 (reporting, active 20m) [backup]`.
pub fn describe_wait(snap: &Snapshot, session: &str) -> Option<String> {
    let waiting = snap.sessions.iter().find(|s| s.application_name == session && s.is_blocked())?;
    let what = waiting
        .waiting_for
        .as_ref()
        .map(|w| format!("{} on {}", w.mode, w.object.as_deref().unwrap_or(&w.locktype)))
        .unwrap_or_else(|| "a lock".into());
    let root = root_of(snap, waiting.pid).and_then(|p| snap.get(p));
    let holder = match root {
        Some(r) if r.query_hidden => format!(
            "held by pid {} ({}, state and age hidden from this credential){}",
            r.pid,
            r.application_name,
            if r.labels.is_empty() {
                String::new()
            } else {
                format!(" [{}]", r.labels.iter().map(|l| l.word()).collect::<Vec<_>>().join(", "))
            }
        ),
        Some(r) => {
            let labels: Vec<&str> = r.labels.iter().map(|l| l.word()).collect();
            let labels = if labels.is_empty() { String::new() } else { format!(" [{}]", labels.join(", ")) };
            let age =
                r.xact_age_secs.map(|a| format_duration(Duration::from_secs_f64(a))).unwrap_or_else(|| "?".into());
            format!(
                "held by pid {} ({}, {} for {age}){labels}: {}",
                r.pid,
                r.application_name,
                r.state.as_deref().unwrap_or("?"),
                r.query_line(60)
            )
        }
        None => "holder not visible".to_string(),
    };
    Some(format!("migration waits for {what}, {holder}"))
}
