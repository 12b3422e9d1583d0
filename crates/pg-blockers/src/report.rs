//! The typed reports: the blocking forest (`--json`, and each `--watch --json` line) and the
//! result of a cancel or terminate. docs/json/pg-blockers.md is parsed into these by a test.

use cli_kit::ResolvedDatabase;
use pg_locks::{ActReport, Forest, Node, Recommendation, Session, Signal, Snapshot};
use serde::{Deserialize, Serialize};

/// The blocking forest and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockersReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Which database was read.
    pub database: DatabaseRef,
    /// `server_version_num`.
    pub server_version_num: i32,
    /// The database is a follower (in recovery): the leader's waits are not visible here.
    pub follower: bool,
    /// For a follower of a Heroku app: the app's config var that most likely holds the leader
    /// (DATABASE_URL, else another Heroku Postgres URL), to run pg-blockers against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Read through a connection pooler (PgBouncer refused the startup options); the lock view
    /// is the server's all the same.
    pub through_pooler: bool,
    /// This tool's backend, never proposed as a target.
    pub own_pid: i32,
    /// Every backend in the snapshot, background processes included.
    pub session_count: usize,
    /// Client sessions only (this tool's included): what the human report counts.
    pub client_session_count: usize,
    /// Client sessions of other roles this credential may not see.
    pub hidden_sessions: usize,
    /// Sessions waiting on another's lock (after `--min-wait`).
    pub blocked_total: usize,
    /// One tree per root blocker.
    pub roots: Vec<Node>,
    /// Every session in the trees, in full.
    pub sessions: Vec<Session>,
    /// The smallest fix.
    pub recommendation: Option<Proposal>,
    /// A faster fix with another cost.
    pub alternative: Option<Proposal>,
}

/// Which database, without secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRef {
    /// How it was found: `DATABASE_URL of acme (postgresql-teal-12345)`, `--database-url …`.
    pub source: String,
    /// The app, when it came from one.
    pub app: Option<String>,
    /// Database name.
    pub dbname: String,
    /// Host.
    pub host: String,
}

impl From<&ResolvedDatabase> for DatabaseRef {
    fn from(db: &ResolvedDatabase) -> Self {
        DatabaseRef {
            source: db.describe(),
            app: db.app().map(str::to_string),
            dbname: db.dbname.clone(),
            host: db.host.clone(),
        }
    }
}

/// A recommendation with the command that applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// The pid to signal.
    pub pid: i32,
    /// `cancel` or `terminate`.
    pub action: Signal,
    /// Sessions that proceed once it is gone.
    pub unblocks: usize,
    /// What it costs.
    pub cost: String,
    /// Why this one.
    pub reason: String,
    /// What may stop a plain cancel from working.
    pub note: Option<String>,
    /// The pg-blockers command that applies it — when this credential may not signal the
    /// session, the command that would work (another credential).
    pub command: String,
    /// Why this credential may not signal it (the server would refuse), when it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_credential: Option<String>,
    /// The platform's own way, when there is one (`heroku pg:backups:cancel -a APP` for a
    /// Heroku Postgres backup), and its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_command: Option<String>,
    /// What the platform's way costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_cost: Option<String>,
}

impl Proposal {
    fn of(r: &Recommendation, db: &ResolvedDatabase, snap: &Snapshot) -> Proposal {
        let platform = crate::render::platform_way(r, db, snap);
        Proposal {
            pid: r.pid,
            action: r.action,
            unblocks: r.unblocks,
            cost: r.cost.clone(),
            reason: r.reason.clone(),
            note: r.note.clone(),
            command: crate::render::command_for("pg-blockers", db, r),
            needs_credential: r.needs_credential.clone(),
            platform_command: platform.as_ref().map(|p| p.0.clone()),
            platform_cost: platform.map(|p| p.1.to_string()),
        }
    }
}

/// What `--cancel`, `--terminate` or `--cancel-roots` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Which database (`source` of [`DatabaseRef`]).
    pub database: String,
    /// Sessions waiting before the signal.
    pub blocked_before: usize,
    /// The verified result; `None` when there was nothing to signal (`--cancel-roots` with
    /// no root blocker).
    pub action: Option<ActReport>,
}

/// The forest report of a snapshot.
pub fn blockers_report(
    db: &ResolvedDatabase,
    snap: &Snapshot,
    forest: &Forest,
    recs: &(Option<Recommendation>, Option<Recommendation>),
) -> BlockersReport {
    let mut pids: Vec<i32> = forest.roots.iter().flat_map(Node::pids).collect();
    pids.sort_unstable();
    pids.dedup();
    BlockersReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        database: DatabaseRef::from(db),
        server_version_num: snap.server_version_num,
        follower: snap.in_recovery,
        leader: None,
        through_pooler: snap.through_pooler,
        own_pid: snap.own_pid,
        session_count: snap.sessions.len(),
        client_session_count: snap.client_count(),
        hidden_sessions: snap.hidden_count(),
        blocked_total: forest.blocked_total,
        roots: forest.roots.clone(),
        sessions: pids.iter().filter_map(|p| snap.get(*p)).cloned().collect(),
        recommendation: recs.0.as_ref().map(|r| Proposal::of(r, db, snap)),
        alternative: recs.1.as_ref().map(|r| Proposal::of(r, db, snap)),
    }
}
