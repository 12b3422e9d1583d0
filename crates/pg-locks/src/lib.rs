//! The only code in the project that reads Postgres locks.
//!
//! [`Snapshot::take`] reads every session and what blocks it in one query; [`Forest::build`]
//! turns that into root blockers → chains → victims; [`label_session`] says what each session
//! is (backup, autovacuum, DDL, migration, idle transaction…); [`recommend`] picks the one
//! cancel that lets the most sessions run; [`act`] cancels or terminates and verifies.

mod act;
mod budget;
mod connect;
mod error;
mod forest;
mod hold;
mod identity;
mod labels;
pub mod lockplan;
mod recommend;
mod safe_form;
mod snapshot;

pub use act::{
    act, end_sessions, end_sessions_named, validate_targets, ActOptions, ActReport, EndReport, PidOutcome, Signal,
};
pub use budget::{enforce, waits, Budgets, Claim, Enforcement, Guard, Holder, Look, Ownership, Wait};
pub use connect::{connect, parse_url, Conn, ConnectOptions, Connection, ParsedUrl, SslMode};
pub use error::{Error, ErrorKind};
pub use forest::{root_of, waiting_ddl, Forest, Graph, Node, WaitingDdl};
pub use hold::{enforce_hold, holds, HeldCut, Hold};
pub use identity::{database_identity, DatabaseIdentity, ServerDatabase};
pub use labels::{ddl_statement, is_ddl, label_session, Label, MIGRATION_APP_PREFIX};
pub use recommend::{cost, needs_terminate, recommend, refusal, Recommendation};
pub use safe_form::safe_form;
pub use snapshot::{LockWait, Session, Snapshot, HIDDEN_QUERY, SNAPSHOT_SQL};

/// postgres client type re-exported so tools need no direct dependency on the driver.
pub use postgres::Client;
