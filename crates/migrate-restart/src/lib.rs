//! migrate-restart: preflight, the migration on a one-off dyno with lock safety and retries,
//! then restart and verification; `check` for dynos that predate the schema, `follow` for a
//! run picked up from another machine, `release` for a release phase.
//!
//! One module per subcommand (`migrate`, `follow_cmd`, `check`, `release`), what they share
//! beside them: the session they open (`session`), one attempt on a one-off dyno (`attempt`,
//! read through `log_follower`), the database around it (`database`), and the ending
//! (`conclude`). The retry decision is `migration_policy::next_step`, a pure function.

mod attempt;
mod check;
mod cli;
mod conclude;
mod database;
mod deploy_step;
mod ending;
mod follow_cmd;
mod log_follower;
mod migrate;
mod pending;
mod plan_cmd;
pub mod procfile;
mod record;
mod release;
mod render;
pub mod report;
mod restart;
mod session;

pub use cli::{Args, CheckArgs, FollowArgs, PlanArgs, ReleaseArgs, RunArgs, Sub};
pub use migration_policy::{is_lock_timeout, pgoptions};

use cli_kit::Exit;

const TOOL: &str = "migrate-restart";

/// Runs `migrate-restart` or one of its subcommands.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.sub {
        Some(Sub::Check(c)) => check::run(c),
        Some(Sub::Follow(f)) => follow_cmd::run(f),
        Some(Sub::Release(r)) => release::run(r),
        Some(Sub::Plan(p)) => plan_cmd::run(p),
        None => migrate::run(args.run),
    }
}
