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
        // Only a session inside a transaction holds table locks: an idle connection (a backup
        // client whose COPY was cancelled, say) cannot make DDL wait.
        if s.xact_age_secs.is_none() && !s.is_blocked() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pid: i32, app: &str, state: &str, xact_age: Option<f64>, query: &str) -> Session {
        let mut s = Session {
            pid,
            user: Some("u".into()),
            application_name: app.into(),
            client_addr: None,
            backend_type: "client backend".into(),
            state: Some(state.into()),
            wait_event_type: None,
            wait_event: None,
            xact_age_secs: xact_age,
            query_age_secs: xact_age,
            state_age_secs: Some(30.0),
            query: Some(query.into()),
            blocked_by: vec![],
            waiting_for: None,
            holds: vec![],
            database: Some("d".into()),
            labels: vec![],
            query_start_epoch: None,
        };
        s.labels = pg_locks::label_session(&s, 1);
        s
    }

    #[test]
    fn running_backups_long_and_idle_transactions_count_an_idle_connection_does_not() {
        let copy = "COPY \"public\".\"t\" (\"id\") TO stdout;";
        let snap = Snapshot {
            own_pid: 1,
            server_version_num: 150000,
            taken_at: std::time::SystemTime::now(),
            sessions: vec![
                session(10, "Heroku Postgres Backups", "active", Some(3.0), copy),
                // The same client after its COPY was cancelled: connected, in no transaction.
                session(11, "Heroku Postgres Backups", "idle", None, copy),
                session(12, "console", "idle in transaction", Some(30.0), "UPDATE accounts SET x = 1"),
                session(13, "report", "active", Some(120.0), "SELECT * FROM big"),
                session(14, "web", "active", Some(0.5), "SELECT 1"),
            ],
        };
        let found: Vec<(i32, &str)> =
            findings(&snap, Duration::from_secs(60)).iter().map(|f| (f.pid, f.kind)).collect();
        assert_eq!(found, vec![(10, "backup"), (12, "idle in transaction"), (13, "long transaction")]);
    }
}
