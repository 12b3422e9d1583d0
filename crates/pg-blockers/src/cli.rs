//! The command line.

use std::time::Duration;

use cli_kit::{AppArgs, ConfirmArgs, DatabaseArgs, Exit, OutputArgs};

/// `--help` examples.
const EXAMPLES: &str = "  pg-blockers -a acme                          # the blocking forest of acme's DATABASE_URL
  pg-blockers HEROKU_POSTGRESQL_TEAL -a acme   # another attached database (TEAL works too)
  pg-blockers --database-url postgres://…      # any Postgres (or set DATABASE_URL)
  pg-blockers -a acme --cancel 4242 --confirm acme
  pg-blockers -a acme --cancel-roots --escalate --confirm acme
  pg-blockers -a acme --watch 2s               # redraw every 2s until Ctrl-C
  pg-blockers -a acme --json --exit-status     # for monitors: exit 6 when blocking is found\n";

/// The exit codes this tool returns, for `--help`.
const EXITS: &[(Exit, &str)] = &[
    (Exit::Success, "nothing blocked, or the fix was verified"),
    (Exit::Failed, "the database or the API failed"),
    (Exit::Usage, "bad flag, unknown pid or database"),
    (
        Exit::NotVerified,
        "a signal did not take before the deadline; with --exit-status: the database is a follower (it cannot vouch)",
    ),
    (Exit::NotAuthenticated, "login rejected / not allowed"),
    (Exit::Refused, "no --confirm, or the tool's own or a system session; nothing was signalled"),
    (Exit::BlockingFound, "blocking found (with --exit-status)"),
];

/// Show which Postgres sessions block which, name the root blocker (backups, long readers,
/// idle transactions, waiting DDL), and apply the smallest fix with verification.
///
/// Unlike `heroku pg:blocking`, this sees relation-lock waits and lock-queue order: a waiting
/// ALTER that blocks every later query on its table shows up with the session it waits for.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "pg-blockers",
    version,
    after_help = cli_kit::exit::after_help(EXAMPLES, EXITS),
    mut_arg("confirm", |a| a.help("Answer the confirmation: the app's name (the database's name with --database-url)"))
)]
pub struct Args {
    /// Config var or attachment of the app: DATABASE_URL, HEROKU_POSTGRESQL_TEAL_URL, TEAL (default DATABASE_URL)
    #[arg(value_name = "DATABASE")]
    pub database: Option<String>,

    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Only show chains where someone has waited at least this long (e.g. 5s)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", value_parser = cli_kit::duration_arg)]
    pub min_wait: Option<Duration>,

    /// Keep watching: redraw every DUR (default 2s) until Ctrl-C
    #[arg(long, value_name = "DUR", num_args = 0..=1, default_missing_value = "2s", value_parser = cli_kit::positive_duration_arg)]
    pub watch: Option<Duration>,

    /// Cancel the running statement of these pids (pg_cancel_backend), then verify
    #[arg(long, value_name = "PID", num_args = 1.., conflicts_with_all = ["terminate", "cancel_roots", "watch"])]
    pub cancel: Vec<i32>,

    /// End these sessions (pg_terminate_backend; their transactions roll back), then verify
    #[arg(long, value_name = "PID", num_args = 1.., conflicts_with_all = ["cancel_roots", "watch"])]
    pub terminate: Vec<i32>,

    /// Cancel every root blocker in the current snapshot, then verify
    #[arg(long, conflicts_with = "watch")]
    pub cancel_roots: bool,

    /// Terminate sessions a cancel did not release within the grace period
    #[arg(long)]
    pub escalate: bool,

    /// How long to wait for a signal to take effect
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "2s", value_parser = cli_kit::positive_duration_arg)]
    pub grace: Duration,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// Exit 6 when blocking is found (for monitors)
    #[arg(long)]
    pub exit_status: bool,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}
