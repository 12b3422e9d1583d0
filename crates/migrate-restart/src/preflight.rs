//! Before the migration: what in Postgres would make its DDL wait — and with it every query
//! that queues behind the waiting DDL.

use std::time::Duration;

use cli_kit::format_duration;
use pg_locks::{Label, Session, Snapshot};
use serde::Serialize;

/// An idle transaction younger than this is ordinary application traffic.
const IDLE_IN_TRANSACTION_GRACE_SECS: f64 = 5.0;

/// One reason not to start yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The session.
    pub pid: i32,
    /// `backup`, `long transaction`, `idle in transaction`, `lock wait`.
    pub kind: &'static str,
    /// One line for people.
    pub detail: String,
}

fn age(secs: Option<f64>) -> String {
    secs.map(|s| format_duration(Duration::from_secs_f64(s.max(0.0)))).unwrap_or_else(|| "?".into())
}

/// What would block DDL: backups, transactions older than `max_xact_age`, idle transactions,
/// sessions already waiting on locks. Autovacuum is left out unless it is preventing
/// wraparound: it yields to a DDL's lock request by itself.
pub fn findings(snap: &Snapshot, max_xact_age: Duration) -> Vec<Finding> {
    let max = max_xact_age.as_secs_f64();
    let mut out = Vec::new();
    for s in &snap.sessions {
        if s.has(Label::Own) || s.has(Label::NonClient) || (s.has(Label::Autovacuum) && !s.has(Label::Wraparound)) {
            continue;
        }
        let who = describe(s);
        if s.has(Label::Backup) {
            out.push(Finding {
                pid: s.pid,
                kind: "backup",
                detail: format!("{who} has been copying for {}", age(s.query_age_secs)),
            });
        } else if s.is_blocked() {
            let what = s
                .waiting_for
                .as_ref()
                .map(|w| format!("{} on {}", w.mode, w.object.as_deref().unwrap_or(&w.locktype)))
                .unwrap_or_default();
            out.push(Finding {
                pid: s.pid,
                kind: "lock wait",
                detail: format!("{who} already waits for {what} ({})", age(s.wait_secs())),
            });
        } else if s.has(Label::IdleInTransaction) && s.state_age_secs.unwrap_or(0.0) >= IDLE_IN_TRANSACTION_GRACE_SECS {
            out.push(Finding {
                pid: s.pid,
                kind: "idle in transaction",
                detail: format!("{who} is idle inside a transaction open for {}", age(s.xact_age_secs)),
            });
        } else if s.xact_age_secs.unwrap_or(0.0) > max {
            out.push(Finding {
                pid: s.pid,
                kind: "long transaction",
                detail: format!("{who} has a transaction open for {}", age(s.xact_age_secs)),
            });
        }
    }
    out
}

fn describe(s: &Session) -> String {
    let app = if s.application_name.is_empty() { "(no application_name)" } else { &s.application_name };
    format!("pid {} ({app}: {})", s.pid, s.query_line(60))
}
