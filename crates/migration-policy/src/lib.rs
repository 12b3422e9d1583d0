//! The attempt policy of a guarded migration, once, for the two places that run one:
//! `migrate-restart` (a one-off dyno watched from the operator's machine) and `migrate-guard`
//! (inside the dyno, around the migration command). Nothing here knows how the migration is
//! started — a dyno, a child process — only what an attempt ended with and what the database
//! shows:
//!
//! - [`policy`]: whether to try again after an attempt ([`policy::next_step`], a pure function
//!   over the attempts so far), and the jittered backoff before it;
//! - [`signs`]: what the migration's own output says (a lock timeout, a pooler's refusal) and the
//!   `PGOPTIONS` it is given;
//! - [`preflight`]: what in the database would make DDL wait before the first statement;
//! - [`plan_file`]: a lock plan read back, narrowing the preflight to the sessions in its way;
//! - [`contract`]: the queries a plan says the migration breaks, looked for live before the
//!   first statement (the contract step waits for the old code);
//! - [`debris`]: what a failed attempt left (INVALID indexes, recorded versions) before a retry;
//! - [`drive`]: the guarded run itself — attempts under the policy, the debris rule before each
//!   retry — over a [`drive::Runner`] each tool implements;
//! - [`lockwatch`]: the watch over the migration's sessions while it runs, with the lock-wait
//!   budget enforced from outside the session (pg-locks' [`pg_locks::Guard`]), as typed events;
//! - [`text`]: how a wait and a cut read, the same in every tool.

pub mod contract;
pub mod debris;
pub mod drive;
pub mod lockwatch;
pub mod plan_file;
pub mod policy;
pub mod preflight;
pub mod signs;
pub mod text;

pub use policy::{backoff, next_step, Policy, Step, Tried};
pub use signs::{is_lock_timeout, is_pooler_refusal, pgoptions, OUTSIDE_SLACK};
