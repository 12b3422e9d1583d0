//! migrate-restart: preflight, the migration on a one-off dyno with lock safety and retries,
//! then restart and verification; `check` for dynos that predate the schema, `follow` for a
//! run picked up from another machine, `release` for a release phase.
//!
//! One module per subcommand in `commands/` (`run`, `follow`, `check`, `release`, `plan`), each
//! with its wording beside it; what they share beside them: the session they open (`session`),
//! one attempt on a one-off dyno (`attempt`, read through `log_follower`), the database around
//! it (`database`), the ending (`conclude`) and its wording (`render`). The guarded run itself —
//! attempts, retries, the debris rule — is `migration_policy::drive`.

mod attempt;
mod cli;
mod commands;
mod conclude;
mod database;
mod ending;
mod log_follower;
mod pending;
pub mod procfile;
mod record;
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
        Some(Sub::Check(c)) => commands::check::run(c),
        Some(Sub::Follow(f)) => commands::follow::run(f),
        Some(Sub::Release(r)) => commands::release::run(r),
        Some(Sub::Plan(p)) => commands::plan::run(p),
        None => commands::run::run(args.run),
    }
}
