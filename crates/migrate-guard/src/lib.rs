//! migrate-guard: the migration command run inside the dyno under a lock-wait budget.
//!
//! The steps, each its own function below: settle what can be checked without side effects
//! ([`setup`]); connect the watch (or refuse: a migration is never started half-guarded);
//! wait for what would make DDL wait to clear ([`clear`]); run the command ([`child`]) under
//! the watch and its budget ([`migration_policy::lockwatch`]) and retry by the shared policy
//! ([`migration_policy::next_step`]) after checking what the failed attempt left; on SIGTERM or
//! the deadline end the command's statements on the database, verified; say it all in the
//! release output ([`voice`]) and end with one summary line ([`report`]).

mod child;
mod clear;
mod cli;
pub mod report;
mod run;
mod setup;
mod voice;

pub use cli::Args;
pub use report::{GuardReport, Outcome};

/// Runs the guard; the exit code is the command's own, 1 when the guard ended it, 2 for bad
/// input, 5 when it refused to start the command.
pub fn run(args: Args) -> anyhow::Result<cli_kit::Exit> {
    run::guard(args)
}
