//! The smallest intervention: the one pid whose cancel lets the most sessions run, with its
//! cost in words.

use serde::{Deserialize, Serialize};

use crate::forest::Graph;
use crate::labels::Label;
use crate::snapshot::{Session, Snapshot};

/// Why a session may not be cancelled by this tool, if it may not.
pub fn refusal(s: &Session) -> Option<&'static str> {
    if s.has(Label::Own) {
        Some("it is this tool's own session")
    } else if s.has(Label::NonClient) {
        Some("it is a PostgreSQL system process, not a client session")
    } else {
        None
    }
}

/// What cancelling this session costs, in words.
pub fn cost(s: &Session) -> &'static str {
    if s.has(Label::Backup) {
        "the backup fails and can be taken again later (heroku pg:backups:capture)"
    } else if s.has(Label::Migration) || s.has(Label::Ddl) {
        "the DDL rolls back and its migration fails; run it again once nothing blocks it"
    } else if s.has(Label::IdleInTransaction) {
        "its open transaction is rolled back: uncommitted work of that idle session is lost"
    } else if s.has(Label::Wraparound) {
        "the anti-wraparound vacuum starts over later, and the table stays at risk meanwhile"
    } else if s.has(Label::Autovacuum) {
        "autovacuum stops for now and will run again later"
    } else {
        "that statement fails with 'canceling statement due to user request'; its client sees an error"
    }
}

/// Whether a plain cancel is enough: an idle-in-transaction session has no statement to
/// cancel, so it must be terminated to release its locks.
pub fn needs_terminate(s: &Session) -> bool {
    s.has(Label::IdleInTransaction)
}

/// A proposed cancel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The pid to signal.
    pub pid: i32,
    /// `cancel`, or `terminate` for an idle transaction.
    pub action: crate::Signal,
    /// Sessions that can proceed once it is gone.
    pub unblocks: usize,
    /// What it costs.
    pub cost: String,
    /// Why this one, in a sentence.
    pub reason: String,
    /// Anything that may stop a plain cancel from working.
    pub note: Option<String>,
    /// Why this credential may not signal it (the server would refuse), when it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_credential: Option<String>,
}

fn sessions(n: usize) -> String {
    if n == 1 {
        "1 session".into()
    } else {
        format!("{n} sessions")
    }
}

/// Cost rank for tie-breaks: cheaper first.
fn rank(s: &Session) -> u8 {
    if s.has(Label::Autovacuum) && !s.has(Label::Wraparound) {
        0
    } else if s.has(Label::Backup) {
        1
    } else if s.has(Label::IdleInTransaction) {
        2
    } else if s.has(Label::Ddl) || s.has(Label::Migration) {
        4
    } else {
        3
    }
}

/// Why the server would refuse this credential's signal to `s`, if it would.
fn refused_by_server(s: &Session, role: Option<&str>) -> Option<String> {
    if s.can_signal {
        return None;
    }
    let theirs = s.user.as_deref().map(|u| format!("role {u}")).unwrap_or_else(|| "another role".into());
    let mine = role.map(|r| format!(" ({r})")).unwrap_or_default();
    Some(format!(
        "pid {} runs as {theirs}, and this credential{mine} may not signal it: that takes the session's own role, membership in pg_signal_backend, or a superuser (a superuser's session only a superuser)",
        s.pid
    ))
}

fn recommendation_for(s: &Session, unblocks: usize, reason: String, role: Option<&str>) -> Recommendation {
    // A backend blocked writing to a client that is not reading only sees a cancel when the
    // client reads again; escalation to terminate ends it regardless.
    let note = (s.wait_event.as_deref() == Some("ClientWrite")).then(|| {
        "it is waiting for its client to read (ClientWrite): a cancel may only take effect once the client reads again; add --escalate to terminate it if the cancel does not take".to_string()
    });
    Recommendation {
        pid: s.pid,
        action: if needs_terminate(s) { crate::Signal::Terminate } else { crate::Signal::Cancel },
        unblocks,
        cost: cost(s).to_string(),
        reason,
        note,
        needs_credential: refused_by_server(s, role),
    }
}

/// The primary recommendation (most sessions released; cheaper on ties) and, when a waiting
/// DDL heads a queue, the alternative of cancelling that DDL to release its queue at once.
pub fn recommend(snapshot: &Snapshot) -> (Option<Recommendation>, Option<Recommendation>) {
    let g = Graph::of(snapshot);
    let mut best: Option<(usize, u8, i32)> = None;
    for &b in g.victims.keys() {
        let Some(s) = snapshot.get(b) else { continue };
        if refusal(s).is_some() || s.has(Label::Wraparound) {
            continue;
        }
        let n = g.released_by_removing(b).len();
        let key = (n, rank(s), b);
        let better = match best {
            None => true,
            Some((bn, br, bp)) => n > bn || (n == bn && (rank(s), b) < (br, bp)),
        };
        if better && n > 0 {
            best = Some(key);
        }
    }
    let primary = best.and_then(|(n, _, pid)| {
        let s = snapshot.get(pid)?;
        let reason = if s.is_blocked() {
            format!("it waits for a lock and {} queue behind it", sessions(n))
        } else {
            format!("it holds the lock at the head of the chain; {} can proceed without it", sessions(n))
        };
        Some(recommendation_for(s, n, reason, snapshot.role.as_deref()))
    });
    // A waiting DDL with a queue behind it: cancelling it frees the queue now, at the cost of
    // the migration, even when the primary choice is its blocker.
    let alternative = snapshot
        .sessions
        .iter()
        .filter(|s| s.is_blocked() && (s.has(Label::Ddl) || s.has(Label::Migration)) && refusal(s).is_none())
        .filter(|s| Some(s.pid) != primary.as_ref().map(|p| p.pid))
        .map(|s| (g.released_by_removing(s.pid).len(), s))
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, s)| (*n, std::cmp::Reverse(s.pid)))
        .map(|(n, s)| {
            recommendation_for(
                s,
                n,
                format!("the {} queued behind this waiting DDL run at once", sessions(n)),
                snapshot.role.as_deref(),
            )
        });
    (primary, alternative)
}
