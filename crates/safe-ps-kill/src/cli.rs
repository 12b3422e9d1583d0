//! The command line.

use std::time::Duration;

use cli_kit::{AppArgs, ConfirmArgs, DatabaseArgs, Exit, OutputArgs};

/// `--help` examples.
const EXAMPLES: &str =
    "  safe-ps-kill release -a acme                   # release → release.2343, asks, stops, verifies
  safe-ps-kill release.2343 -a acme --confirm acme
  safe-ps-kill worker -a acme --all --confirm acme
  safe-ps-kill run -a acme --dry-run             # resolve and show, stop nothing
  safe-ps-kill release -a acme --confirm acme --json\n";

/// The exit codes this tool returns, for `--help`.
const EXITS: &[(Exit, &str)] = &[
    (Exit::Success, "stopped and seen gone (or --dry-run)"),
    (Exit::Failed, "the API failed"),
    (Exit::Usage, "unknown dyno, ambiguous type without a terminal, bad --wait"),
    (Exit::NotVerified, "a dyno was STILL RUNNING at the deadline"),
    (Exit::NotAuthenticated, "not logged in / not allowed"),
    (Exit::Refused, "no terminal and no --confirm, or --confirm names another app; nothing was stopped"),
];

/// Stop a dyno by its id and prove it is gone.
///
/// A process-type name resolves to its dynos first (`release` → `release.2343`): the platform
/// accepts a stop addressed to a bare type name and stops nothing, which is how a stuck
/// release phase survived `heroku ps:kill release`. After stopping a release or one-off dyno it
/// checks Postgres for DDL its statements left waiting, since stopping a dyno does not end them.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "safe-ps-kill",
    version,
    after_help = cli_kit::exit::after_help(EXAMPLES, EXITS)
)]
pub struct Args {
    /// A dyno name (release.2343, web.1) or a process type (release, run, web)
    #[arg(value_name = "DYNO|TYPE")]
    pub target: Option<String>,

    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// Stop every dyno of the process type (needs --confirm without a terminal)
    #[arg(long)]
    pub all: bool,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// How long to wait for the dynos to disappear
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "30s", value_parser = cli_kit::positive_duration_arg)]
    pub wait: Duration,

    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Resolve and show what would be stopped; stop nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}
