//! One round trip reads every session with what it waits for, what it holds and who blocks it.

use std::time::SystemTime;

use crate::connect::Connection;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::labels::{label_session, Label};

/// The snapshot query. Works on PostgreSQL 12–17 for an ordinary role: pg_stat_activity,
/// pg_locks and pg_blocking_pids need no extension or superuser (other roles' query text
/// may read `<insufficient privilege>` without pg_read_all_stats).
///
/// Ages are NULL where the timestamp is (no transaction, no statement yet) and are clamped at
/// zero in Rust (a session can start after the snapshot's `now()`); GREATEST would turn NULL
/// into 0 and make every idle session look like it has a transaction open.
/// `pg_blocking_pids` includes sessions ahead in the lock queue ("soft" blocks), which is how a
/// waiting ALTER is seen to block later readers that do not conflict with the current holder.
/// It is only called for sessions waiting on a lock, which keeps the query cheap. Whether a
/// session waits is read from `pg_locks` (an ungranted lock) as well as `wait_event_type`:
/// to a role that is not the session's owner (a second credential, `pg:credentials:create`)
/// pg_stat_activity shows NULL for another role's state and wait event, while pg_locks and
/// pg_blocking_pids show every role's locks.
/// `waitstart` exists from PostgreSQL 14; reading it through to_jsonb keeps 12 and 13 working.
/// Whether this credential may signal a session follows the server's own rule for
/// pg_cancel_backend/pg_terminate_backend: a superuser may signal anyone; nobody else may
/// signal a superuser's session; otherwise a member of the session's role, or of
/// pg_signal_backend, may.
pub const SNAPSHOT_SQL: &str = r#"
WITH waiting AS (
  SELECT DISTINCT ON (l.pid) l.pid, l.locktype, l.mode,
    CASE
      WHEN l.locktype IN ('relation', 'tuple', 'page', 'extend') AND l.relation IS NOT NULL THEN l.relation::regclass::text
      WHEN l.locktype = 'advisory' THEN 'advisory key ' || ((l.classid::bigint << 32) | l.objid::bigint)::text
      WHEN l.locktype = 'transactionid' THEN 'transaction ' || l.transactionid::text
      WHEN l.locktype = 'virtualxid' THEN 'virtual transaction ' || l.virtualxid
      ELSE l.locktype
    END AS object,
    extract(epoch FROM now() - (to_jsonb(l) ->> 'waitstart')::timestamptz)::float8 AS wait_age
  FROM pg_locks l
  WHERE NOT l.granted
  ORDER BY l.pid
), me AS (
  SELECT r.rolsuper AS superuser, pg_has_role('pg_signal_backend', 'MEMBER') AS signal_backend
  FROM pg_roles r WHERE r.rolname = current_user
), held AS (
  SELECT l.pid, array_agg(DISTINCT l.relation::regclass::text || ' ' || l.mode) AS held
  FROM pg_locks l
  WHERE l.granted AND l.locktype = 'relation'
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  GROUP BY l.pid
)
SELECT a.pid,
  a.usename::text,
  coalesce(a.application_name, ''),
  host(a.client_addr),
  coalesce(a.backend_type, ''),
  a.state,
  a.wait_event_type,
  a.wait_event,
  extract(epoch FROM now() - a.xact_start)::float8,
  extract(epoch FROM now() - a.query_start)::float8,
  extract(epoch FROM now() - a.state_change)::float8,
  a.query,
  CASE WHEN a.wait_event_type = 'Lock' OR w.pid IS NOT NULL THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END,
  w.locktype,
  w.mode,
  w.object,
  w.wait_age,
  coalesce(h.held, '{}'::text[]),
  a.datname::text,
  pg_backend_pid(),
  current_setting('server_version_num')::int,
  extract(epoch FROM a.query_start)::float8,
  pg_is_in_recovery(),
  extract(epoch FROM a.backend_start)::float8,
  CASE
    WHEN a.usesysid IS NULL THEN false
    WHEN me.superuser THEN true
    WHEN coalesce(target.rolsuper, false) THEN false
    WHEN pg_has_role(a.usesysid, 'MEMBER') THEN true
    ELSE coalesce(me.signal_backend, false)
  END,
  current_user::text
FROM pg_stat_activity a
LEFT JOIN waiting w ON w.pid = a.pid
LEFT JOIN held h ON h.pid = a.pid
LEFT JOIN pg_roles target ON target.oid = a.usesysid
LEFT JOIN me ON true
WHERE a.pid IS NOT NULL
ORDER BY a.pid
"#;

/// What pg_stat_activity shows as the query of a session this credential may not see.
const INSUFFICIENT_PRIVILEGE: &str = "<insufficient privilege>";

/// How a hidden query reads in human output.
pub const HIDDEN_QUERY: &str = "query hidden from this credential";

/// The lock a session waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockWait {
    /// `relation`, `transactionid`, `advisory`, `tuple`…
    pub locktype: String,
    /// e.g. `AccessExclusiveLock`.
    pub mode: String,
    /// Table name, `advisory key N`, `transaction N`…
    pub object: Option<String>,
    /// Seconds waited (PostgreSQL 14+; else the query's age).
    pub wait_secs: Option<f64>,
}

/// One backend as seen in the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Backend pid.
    pub pid: i32,
    /// Role.
    pub user: Option<String>,
    /// `application_name`.
    pub application_name: String,
    /// Client address.
    pub client_addr: Option<String>,
    /// `client backend`, `autovacuum worker`, …
    pub backend_type: String,
    /// `active`, `idle in transaction`, …
    pub state: Option<String>,
    /// `Lock`, `Client`, …
    pub wait_event_type: Option<String>,
    /// `relation`, `ClientWrite`, …
    pub wait_event: Option<String>,
    /// Seconds since the transaction began.
    pub xact_age_secs: Option<f64>,
    /// Seconds since the current/last query began.
    pub query_age_secs: Option<f64>,
    /// Seconds since the state changed.
    pub state_age_secs: Option<f64>,
    /// The query, whole; `None` when it is hidden from this credential.
    pub query: Option<String>,
    /// This credential may not see the session's activity (another role's session, without
    /// `pg_read_all_stats`): its query, state, wait event and ages read as NULL. Its locks are
    /// still seen, through pg_locks.
    pub query_hidden: bool,
    /// Pids this session waits for (hard and lock-queue blocks), deduplicated.
    pub blocked_by: Vec<i32>,
    /// The lock it waits for.
    pub waiting_for: Option<LockWait>,
    /// Relation locks it holds: `users AccessShareLock`.
    pub holds: Vec<String>,
    /// Database.
    pub database: Option<String>,
    /// What kind of session this is.
    pub labels: Vec<Label>,
    /// When the current statement started (seconds since the epoch): a different value later
    /// means the statement the tool saw has ended.
    #[serde(skip)]
    pub query_start_epoch: Option<f64>,
    /// When the session connected (seconds since the epoch, the server's clock): how a session
    /// opened by a release dyno is told from older ones.
    #[serde(skip)]
    pub backend_start_epoch: Option<f64>,
    /// This credential may cancel or terminate it (the server would not refuse).
    #[serde(default = "yes")]
    pub can_signal: bool,
}

fn yes() -> bool {
    true
}

impl Session {
    /// True when waiting on a lock held or queued by another session.
    pub fn is_blocked(&self) -> bool {
        !self.blocked_by.is_empty()
    }

    /// How long it has been waiting: the lock wait when known, else the query's age.
    pub fn wait_secs(&self) -> Option<f64> {
        self.waiting_for.as_ref().and_then(|w| w.wait_secs).or(self.query_age_secs)
    }

    /// Whether it carries `label`.
    pub fn has(&self, label: Label) -> bool {
        self.labels.contains(&label)
    }

    /// The query on one line, at most `max` characters (for people; JSON keeps it whole).
    pub fn query_line(&self, max: usize) -> String {
        if self.query_hidden {
            return HIDDEN_QUERY.to_string();
        }
        let q = self.query.as_deref().unwrap_or("");
        let one: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
        if one.chars().count() > max {
            let cut: String = one.chars().take(max.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            one
        }
    }
}

/// Every session at one instant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// This tool's own backend pid (never proposed for cancelling).
    pub own_pid: i32,
    /// `server_version_num`, e.g. 150004.
    pub server_version_num: i32,
    /// When it was taken (not part of the JSON: a saved snapshot reads as taken now).
    #[serde(skip, default = "SystemTime::now")]
    pub taken_at: SystemTime,
    /// Sessions by pid.
    pub sessions: Vec<Session>,
    /// The server is a standby (a follower): the leader's lock waits are not visible here.
    #[serde(default)]
    pub in_recovery: bool,
    /// Taken through a connection pooler (it refused the startup options, as PgBouncer does):
    /// the lock view is still the server's.
    #[serde(default)]
    pub through_pooler: bool,
    /// The role this credential is (`current_user`).
    #[serde(default)]
    pub role: Option<String>,
}

impl Default for Snapshot {
    /// An empty snapshot taken now (what a report read back from JSON carries).
    fn default() -> Self {
        Snapshot {
            own_pid: 0,
            server_version_num: 0,
            taken_at: SystemTime::now(),
            sessions: Vec::new(),
            in_recovery: false,
            through_pooler: false,
            role: None,
        }
    }
}

impl Snapshot {
    /// Takes a snapshot in one query.
    pub fn take<C: Connection + ?Sized>(conn: &mut C) -> Result<Snapshot, Error> {
        let reading = |e| Error::from_driver("reading pg_stat_activity and pg_locks", e);
        let through_pooler = conn.per_statement_timeouts().is_some();
        let rows = match conn.per_statement_timeouts() {
            None => conn.client().query(SNAPSHOT_SQL, &[]).map_err(reading)?,
            // Through a pooler: the timeouts live and die with this transaction.
            Some((lock, statement)) => {
                let mut tx = conn.client().transaction().map_err(reading)?;
                tx.batch_execute(&format!(
                    "SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
                    lock.as_millis(),
                    statement.as_millis()
                ))
                .map_err(reading)?;
                let rows = tx.query(SNAPSHOT_SQL, &[]).map_err(reading)?;
                tx.commit().map_err(reading)?;
                rows
            }
        };
        let mut own_pid = 0;
        let mut server_version_num = 0;
        let mut in_recovery = false;
        let mut role = None;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in rows {
            own_pid = row.get(19);
            server_version_num = row.get(20);
            in_recovery = row.get(22);
            role = row.get(25);
            sessions.push(session_of(&row));
        }
        for s in &mut sessions {
            s.labels = label_session(s, own_pid);
        }
        Ok(Snapshot {
            own_pid,
            server_version_num,
            taken_at: SystemTime::now(),
            sessions,
            in_recovery,
            through_pooler,
            role,
        })
    }

    /// The session with this pid.
    pub fn get(&self, pid: i32) -> Option<&Session> {
        self.sessions.iter().find(|s| s.pid == pid)
    }

    /// Sessions waiting on another session's lock.
    pub fn blocked(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|s| s.is_blocked())
    }

    /// Client sessions (this tool's own included): the server's background processes
    /// (checkpointer, WAL writer, the logical replication launcher, …) are not sessions anyone
    /// can act on, whatever pg_stat_activity lists.
    pub fn client_count(&self) -> usize {
        self.sessions.iter().filter(|s| !s.has(Label::NonClient)).count()
    }

    /// Client sessions whose activity this credential may not see (system processes, which
    /// no ordinary role sees either, are not counted).
    pub fn hidden_count(&self) -> usize {
        self.sessions.iter().filter(|s| s.query_hidden && !s.has(Label::NonClient)).count()
    }
}

/// One row of the snapshot query as a session (its labels come after, from the whole snapshot).
fn session_of(row: &postgres::Row) -> Session {
    let pid: i32 = row.get(0);
    let mut blocked_by: Vec<i32> = row.get::<_, Option<Vec<i32>>>(12).unwrap_or_default();
    blocked_by.sort_unstable();
    blocked_by.dedup();
    blocked_by.retain(|p| *p != pid);
    let locktype: Option<String> = row.get(13);
    let age = |i: usize| row.get::<_, Option<f64>>(i).map(|v| v.max(0.0));
    let waiting_for = locktype.map(|locktype| LockWait {
        locktype,
        mode: row.get::<_, Option<String>>(14).unwrap_or_default(),
        object: row.get(15),
        wait_secs: age(16),
    });
    let query: Option<String> = row.get(11);
    let query_hidden = query.as_deref() == Some(INSUFFICIENT_PRIVILEGE);
    Session {
        pid,
        user: row.get(1),
        application_name: row.get(2),
        client_addr: row.get(3),
        backend_type: row.get(4),
        state: row.get(5),
        wait_event_type: row.get(6),
        wait_event: row.get(7),
        xact_age_secs: age(8),
        query_age_secs: age(9),
        state_age_secs: age(10),
        query: if query_hidden { None } else { query },
        query_hidden,
        blocked_by,
        waiting_for,
        holds: row.get(17),
        database: row.get(18),
        labels: Vec::new(),
        query_start_epoch: row.get(21),
        backend_start_epoch: row.get(23),
        can_signal: row.get(24),
    }
}
