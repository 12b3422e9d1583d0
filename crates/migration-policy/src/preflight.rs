//! Before the migration: what in Postgres would make its DDL wait — and with it every query
//! that queues behind the waiting DDL.

use std::time::Duration;

use cli_kit::format_duration;
use pg_locks::{Label, Session, Snapshot};
use serde::{Deserialize, Serialize};

/// An idle transaction younger than this is ordinary application traffic.
const IDLE_IN_TRANSACTION_GRACE_SECS: f64 = 5.0;

/// What kind of reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A backup (or `pg_dump`, or `COPY … TO stdout`) is copying.
    #[serde(rename = "backup")]
    Backup,
    /// A transaction older than `--max-xact-age`.
    #[serde(rename = "long transaction")]
    LongTransaction,
    /// A session idle inside an open transaction.
    #[serde(rename = "idle in transaction")]
    IdleInTransaction,
    /// A session already waiting on a lock.
    #[serde(rename = "lock wait")]
    LockWait,
    /// Another role's session holding table locks, of an age this credential cannot see.
    #[serde(rename = "hidden")]
    Hidden,
    /// With a plan: a session holding (or waiting for) a lock that conflicts with one the
    /// migration will take, whatever its age.
    #[serde(rename = "in the way")]
    InTheWay,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        f.write_str(&word)
    }
}

/// One reason not to start yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The session.
    pub pid: i32,
    /// What kind of reason.
    pub kind: Kind,
    /// One line for people.
    pub detail: String,
}

fn age(secs: Option<f64>) -> String {
    secs.map(|s| format_duration(Duration::from_secs_f64(s.max(0.0)))).unwrap_or_else(|| "?".into())
}

/// What the preflight found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Reasons not to start.
    pub findings: Vec<Finding>,
    /// Sessions this credential may not see that hold table locks: whether one of them is a
    /// long transaction cannot be told, so the preflight cannot vouch for them (it says so
    /// instead of an all-clear; the lock timeout still bounds the wait).
    pub unvouched: Vec<Finding>,
}

/// What would block DDL: backups, transactions older than `max_xact_age`, idle transactions,
/// sessions already waiting on locks. Autovacuum is left out unless it is preventing
/// wraparound: it yields to a DDL's lock request by itself.
pub fn assess(snap: &Snapshot, max_xact_age: Duration) -> Assessment {
    let max = max_xact_age.as_secs_f64();
    let mut out = Vec::new();
    let mut unvouched = Vec::new();
    for s in &snap.sessions {
        if s.has(Label::Own) || s.has(Label::NonClient) || (s.has(Label::Autovacuum) && !s.has(Label::Wraparound)) {
            continue;
        }
        // Another role's session: its ages and state read NULL, its locks do not. Holding a
        // table lock means it is inside a transaction, of an age this credential cannot see.
        let tables: Vec<&String> = s.holds.iter().filter(|h| !h.starts_with("pg_")).collect();
        if s.query_hidden && !s.is_blocked() && !tables.is_empty() {
            let who = describe(s);
            let held = tables.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ");
            let finding = if s.has(Label::Backup) {
                Finding {
                    pid: s.pid,
                    kind: Kind::Backup,
                    detail: format!("{who} is copying (holds {held}; age hidden)"),
                }
            } else {
                Finding {
                    pid: s.pid,
                    kind: Kind::Hidden,
                    detail: format!("{who} holds {held}; its age is hidden from this credential"),
                }
            };
            if finding.kind == Kind::Backup {
                out.push(finding);
            } else {
                unvouched.push(finding);
            }
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
                kind: Kind::Backup,
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
                kind: Kind::LockWait,
                detail: format!("{who} already waits for {what} ({})", age(s.wait_secs())),
            });
        } else if s.has(Label::IdleInTransaction) && s.state_age_secs.unwrap_or(0.0) >= IDLE_IN_TRANSACTION_GRACE_SECS {
            out.push(Finding {
                pid: s.pid,
                kind: Kind::IdleInTransaction,
                detail: format!("{who} is idle inside a transaction open for {}", age(s.xact_age_secs)),
            });
        } else if s.xact_age_secs.unwrap_or(0.0) > max {
            out.push(Finding {
                pid: s.pid,
                kind: Kind::LongTransaction,
                detail: format!("{who} has a transaction open for {}", age(s.xact_age_secs)),
            });
        }
    }
    Assessment { findings: out, unvouched }
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
            backend_start_epoch: None,
            can_signal: true,
            query_hidden: false,
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
            sessions: vec![
                session(10, "Heroku Postgres Backups", "active", Some(3.0), copy),
                // The same client after its COPY was cancelled: connected, in no transaction.
                session(11, "Heroku Postgres Backups", "idle", None, copy),
                session(12, "console", "idle in transaction", Some(30.0), "UPDATE accounts SET x = 1"),
                session(13, "report", "active", Some(120.0), "SELECT * FROM big"),
                session(14, "web", "active", Some(0.5), "SELECT 1"),
            ],
            ..Snapshot::default()
        };
        let found: Vec<(i32, Kind)> =
            assess(&snap, Duration::from_secs(60)).findings.iter().map(|f| (f.pid, f.kind)).collect();
        assert_eq!(found, vec![(10, Kind::Backup), (12, Kind::IdleInTransaction), (13, Kind::LongTransaction)]);
    }

    #[test]
    fn another_roles_sessions_holding_locks_are_not_vouched_for() {
        let hidden = |pid: i32, app: &str, holds: &[&str]| {
            let mut s = session(pid, app, "active", None, "");
            s.query = None;
            s.query_hidden = true;
            s.state = None;
            s.state_age_secs = None;
            s.holds = holds.iter().map(|h| h.to_string()).collect();
            s.labels = pg_locks::label_session(&s, 1);
            s
        };
        let snap = Snapshot {
            own_pid: 1,
            server_version_num: 150000,
            sessions: vec![
                hidden(20, "report", &["users AccessShareLock"]),
                hidden(21, "Heroku Postgres Backups", &["field_history AccessShareLock"]),
                hidden(22, "web", &[]),
                hidden(23, "web", &["pg_class AccessShareLock"]),
            ],
            ..Snapshot::default()
        };
        let a = assess(&snap, Duration::from_secs(60));
        let kinds = |f: &[Finding]| f.iter().map(|f| (f.pid, f.kind)).collect::<Vec<_>>();
        assert_eq!(kinds(&a.findings), [(21, Kind::Backup)], "a backup is known by its name even when hidden");
        assert_eq!(kinds(&a.unvouched), [(20, Kind::Hidden)], "idle or catalog-only sessions hold no table");
        assert_eq!(Kind::IdleInTransaction.to_string(), "idle in transaction");
        assert!(a.unvouched[0].detail.contains("query hidden from this credential"), "{}", a.unvouched[0].detail);
    }
}
