//! What a migration will do to production, found before it runs — the plan behind
//! `migrate-restart plan`, and what `migrate-guard --plan` reads:
//!
//! - [`scratch`]: where the migration runs — the tool's own copy of the app's schema in a local
//!   server of the same major version ([`schema_copy`]), or a database the user names, never
//!   the app's own;
//! - [`record`]: the migration there under the lock recorder ([`pg_locks::lockplan`]): every
//!   statement's locks, in order, in its transaction;
//! - [`estimate`]: how long each statement holds them on production's data, measured on a
//!   sample shaped by production's statistics (no row of production's is read);
//! - [`breaks`]: production's own busiest statements prepared on the copy before and after;
//! - [`check`]: production's live locks read once, and the verdict.
//!
//! Production is only read: catalogs, statistics, `pg_stat_statements`, `pg_locks`.

pub mod breaks;
pub mod check;
pub mod estimate;
pub mod parallel;
pub mod record;
mod sample;
pub mod scratch;
mod sql_text;
pub mod utility;

pub use breaks::{Break, DEFAULT_TOP};
pub use check::{read_production, Production};
pub use record::record;
pub use scratch::Scratch;

use serde::{Deserialize, Serialize};

/// The app's schema, copied into a local server of the same major version for the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaCopy {
    /// The local server's major version: production's.
    pub server_major: u32,
    /// Statements that recreated the schema there.
    pub objects: usize,
    /// Rows of the migration-history tables copied (so the migration runs only what is new).
    pub history_rows: usize,
    /// How long reading the app's schema took, in milliseconds.
    pub read_ms: u64,
    /// The longest any one statement of the read held AccessShareLock on the app's tables, in
    /// milliseconds (no lock outlives its statement).
    pub lock_hold_ms: u64,
    /// What could not be recreated locally, and why.
    pub not_copied: Vec<NotCopied>,
}

/// One object of the schema the local server could not recreate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotCopied {
    /// `extension pg_stat_statements`, `table public.events`…
    pub what: String,
    /// The local server's message.
    pub error: String,
}

/// The plan's verdict, and the exit code with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanVerdict {
    /// Nothing holds a conflicting lock on a planned relation right now (exit 0).
    Clear,
    /// Sessions hold or wait for conflicting locks: the migration would wait, and what needs
    /// the tables would queue behind it (exit 6).
    WouldWait,
    /// Queries the running release sends fail on the migrated schema (exit 8): the release
    /// that serves traffic during the release phase and until the restart breaks.
    WouldBreak,
    /// A statement would hold a lock the site's queries queue behind for longer than the
    /// lock-wait budget (exit 10): under the guard it would be cut, without it the site waits.
    WouldBlock,
    /// A `CONCURRENTLY` statement would wait for open transactions, or nothing was recorded
    /// (the command ran no DDL the recorder sees) (exit 3).
    CannotVouch,
}
