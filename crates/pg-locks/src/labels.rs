//! What kind of session this is: backup, autovacuum, idle in transaction, DDL, migration,
//! a non-client backend, or this tool's own session.

use serde::{Deserialize, Serialize};

use crate::snapshot::Session;

/// A session label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Heroku Postgres Backups, pg_dump, or a `COPY … TO stdout`.
    Backup,
    /// An autovacuum worker.
    Autovacuum,
    /// An autovacuum run to prevent transaction-id wraparound (cancelling it only delays it).
    Wraparound,
    /// Idle inside an open transaction, holding its locks.
    IdleInTransaction,
    /// Schema change: ALTER, DROP, CREATE INDEX, TRUNCATE, REINDEX, VACUUM FULL, CLUSTER, LOCK…
    Ddl,
    /// A migration started by migrate-restart (application_name `migrate-restart/<dyno>`).
    Migration,
    /// Not a client backend (walsender, parallel worker, checkpointer…): never cancelled.
    NonClient,
    /// This tool's own session: never cancelled.
    Own,
}

impl Label {
    /// The word shown in brackets in human output.
    pub fn word(self) -> &'static str {
        match self {
            Label::Backup => "backup",
            Label::Autovacuum => "autovacuum",
            Label::Wraparound => "to prevent wraparound",
            Label::IdleInTransaction => "idle in transaction",
            Label::Ddl => "DDL",
            Label::Migration => "migration",
            Label::NonClient => "system process",
            Label::Own => "this tool",
        }
    }
}

/// The application_name migrate-restart gives a migration's sessions (followed by `/<dyno>`).
pub const MIGRATION_APP_PREFIX: &str = "migrate-restart/";

/// Labels for one session.
pub fn label_session(s: &Session, own_pid: i32) -> Vec<Label> {
    let mut labels = Vec::new();
    let query = s.query.as_deref().unwrap_or("");
    let q = strip_leading_comments(query).to_ascii_lowercase();
    let app = s.application_name.as_str();
    if s.pid == own_pid {
        labels.push(Label::Own);
    }
    if app == "Heroku Postgres Backups"
        || app.starts_with("pg_dump")
        || (q.starts_with("copy ") && (q.contains(" to stdout") || q.contains(")to stdout")))
    {
        labels.push(Label::Backup);
    }
    if s.backend_type == "autovacuum worker" || q.starts_with("autovacuum:") {
        labels.push(Label::Autovacuum);
        if q.contains("to prevent wraparound") {
            labels.push(Label::Wraparound);
        }
    }
    if s.state.as_deref().is_some_and(|st| st.starts_with("idle in transaction")) {
        labels.push(Label::IdleInTransaction);
    }
    // A hidden query is still known to be a schema change when it asks for an
    // AccessExclusiveLock on a table: only ALTER, DROP, TRUNCATE, LOCK, VACUUM FULL, CLUSTER,
    // REINDEX and the like do.
    let hidden_ddl = s.query_hidden
        && s.waiting_for.as_ref().is_some_and(|w| w.mode == "AccessExclusiveLock" && w.locktype == "relation");
    if ddl_statement(&q).is_some() || hidden_ddl {
        labels.push(Label::Ddl);
    }
    if app.starts_with(MIGRATION_APP_PREFIX) {
        labels.push(Label::Migration);
    }
    // An ordinary role sees neither backend_type nor usename of system processes; a client
    // backend always has a role, so "no type and no role" is a system process too.
    let hidden_system = s.backend_type.is_empty() && s.user.is_none();
    let system =
        !s.backend_type.is_empty() && s.backend_type != "client backend" && s.backend_type != "autovacuum worker";
    if hidden_system || system {
        labels.push(Label::NonClient);
    }
    labels
}

fn strip_leading_comments(mut q: &str) -> &str {
    loop {
        q = q.trim_start();
        if let Some(rest) = q.strip_prefix("--") {
            q = rest.split_once('\n').map(|x| x.1).unwrap_or("");
        } else if let Some(rest) = q.strip_prefix("/*") {
            q = rest.split_once("*/").map(|x| x.1).unwrap_or("");
        } else {
            return q;
        }
    }
}

/// The first statement of a query text that is DDL: a client may send several statements in one
/// query (`SET lock_timeout = 0; ALTER TABLE …`), and pg_stat_activity shows them all.
pub fn ddl_statement(query: &str) -> Option<&str> {
    query.split(';').map(strip_leading_comments).find(|part| is_ddl(&part.to_ascii_lowercase()))
}

/// Statements that take strong locks on a table (lower-cased, comments stripped).
pub fn is_ddl(q: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "alter ",
        "drop ",
        "create index",
        "create unique index",
        "truncate",
        "reindex",
        "vacuum full",
        "vacuum (full",
        "cluster",
        "lock ",
        "create trigger",
        "create or replace trigger",
        "refresh materialized view",
        "comment on",
        "grant ",
        "revoke ",
    ];
    PREFIXES.iter().any(|p| q.starts_with(p)) && !q.starts_with("refresh materialized view concurrently")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(query: &str, app: &str, state: &str, backend_type: &str) -> Session {
        Session {
            pid: 7,
            user: None,
            application_name: app.into(),
            client_addr: None,
            backend_type: backend_type.into(),
            state: Some(state.into()),
            wait_event_type: None,
            wait_event: None,
            xact_age_secs: None,
            query_age_secs: None,
            state_age_secs: None,
            query: Some(query.into()),
            blocked_by: vec![],
            waiting_for: None,
            holds: vec![],
            database: None,
            labels: vec![],
            query_start_epoch: None,
            backend_start_epoch: None,
            can_signal: true,
            query_hidden: false,
        }
    }

    #[test]
    fn labels_what_the_incidents_show() {
        let backup = session(
            "COPY \"public\".\"field_history\" (\"id\") TO stdout;",
            "Heroku Postgres Backups",
            "active",
            "client backend",
        );
        assert_eq!(label_session(&backup, 1), vec![Label::Backup]);
        let copy = session("copy users to stdout", "psql", "active", "client backend");
        assert_eq!(label_session(&copy, 1), vec![Label::Backup]);
        let alter = session(
            "/* rails */ ALTER TABLE users ADD COLUMN nickname text",
            "migrate-restart/run.1001",
            "active",
            "client backend",
        );
        assert_eq!(label_session(&alter, 1), vec![Label::Ddl, Label::Migration]);
        let idle = session("SELECT 1", "web", "idle in transaction", "client backend");
        assert_eq!(label_session(&idle, 1), vec![Label::IdleInTransaction]);
        let av = session("autovacuum: VACUUM public.users (to prevent wraparound)", "", "active", "autovacuum worker");
        assert_eq!(label_session(&av, 1), vec![Label::Autovacuum, Label::Wraparound]);
        let wal = session("", "", "active", "walsender");
        assert_eq!(label_session(&wal, 1), vec![Label::NonClient]);
        let me = session("SELECT", "pg-blockers", "active", "client backend");
        assert_eq!(label_session(&me, 7), vec![Label::Own]);
        assert!(is_ddl("drop table field_history"));
        assert!(!is_ddl("select * from users"));
        assert!(!is_ddl("refresh materialized view concurrently x"));
    }
}
