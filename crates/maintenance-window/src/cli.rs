//! The command line.

use std::time::Duration;

use cli_kit::{AppArgs, ConfirmArgs, Exit, OutputArgs};

/// `--help` examples.
const EXAMPLES: &str =
    "  maintenance-window plan -a acme                     # is a window needed for HEAD? which files?
  maintenance-window -a acme --confirm acme -- migrate-restart -a acme --restart none --confirm acme
  maintenance-window -a acme --promote-from acme-staging --confirm acme -- ./bin/post-deploy
  maintenance-window status -a acme                   # an open window: what was changed, when
  maintenance-window restore -a acme                  # put back exactly what was journaled
  maintenance-window restore -a acme --maintenance off --scale worker=3,clock=1 --confirm acme
                                                      # from another machine: the values the window printed\n";

/// The exit codes this tool returns, for `--help`.
const EXITS: &[(Exit, &str)] = &[
    (Exit::Other(0), "COMMAND's own status when it ran (one that cannot start: 2, nothing changed, or, found only by starting it, the window closed at once)"),
    (Exit::Success, "done (no window needed, or the window closed)"),
    (Exit::Failed, "failed"),
    (Exit::Usage, "bad flag, unknown process type, unreadable journal"),
    (Exit::NotVerified, "workers did not drain in time (window held)"),
    (Exit::NotAuthenticated, "not logged in / not allowed"),
    (Exit::Refused, "a window is open for the app, or it is in maintenance with types at 0 and no journal here, or no --confirm without a terminal"),
    (Exit::WindowOpen, "`status`: a window is open, or looks open"),
];

/// Run a deploy step inside the shortest possible maintenance window — and only when the
/// change needs one.
///
/// The window opens only when the diff between the running slug's commit and the target
/// touches migrations. Before changing anything it journals the app's state (maintenance flag,
/// quantities it scales down), so a window interrupted by anything — even kill -9 — can be seen
/// with `status` and undone with `restore`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "maintenance-window",
    version,
    args_conflicts_with_subcommands = true,
    after_help = cli_kit::exit::after_help(EXAMPLES, EXITS)
)]
pub struct Args {
    /// The subcommand, when one is given.
    #[command(subcommand)]
    pub sub: Option<Sub>,

    /// The window itself (when no subcommand is given).
    #[command(flatten)]
    pub window: WindowArgs,
}

/// Subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// Say whether a window is needed and which files make it so
    Plan(PlanArgs),
    /// Show an open window: the journal on this machine and the app's live state (exit 7 when open)
    Status(AppOnly),
    /// Put back the journaled maintenance flag and quantities, or the values given (safe to run twice)
    Restore(RestoreArgs),
}

/// The git side of the decision.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DiffArgs {
    /// Paths whose change needs a window (default: Rails db/migrate, db/schema.rb, db/structure.sql; Django **/migrations/**)
    #[arg(long = "if-changed", value_name = "PATHSPEC", num_args = 1..)]
    pub if_changed: Vec<String>,

    /// Base commit (default: the commit of the slug of the app's current release)
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,

    /// Target commit
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    pub target: String,
}

/// `plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,
    /// The git side of the decision.
    #[command(flatten)]
    pub diff: DiffArgs,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `status` and `restore`.
#[derive(clap::Args, Debug, Clone)]
pub struct AppOnly {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `restore`.
#[derive(clap::Args, Debug, Clone)]
pub struct RestoreArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// The maintenance flag to put back (when the window's journal is not on this machine)
    #[arg(long, value_enum, value_name = "on|off")]
    pub maintenance: Option<OnOff>,

    /// Quantities to put back, e.g. worker=3,clock=1 (with --maintenance)
    #[arg(long, value_name = "TYPE=N,…", value_delimiter = ',', requires = "maintenance")]
    pub scale: Vec<String>,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A maintenance flag value.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOff {
    /// Maintenance on.
    On,
    /// Maintenance off.
    Off,
}

/// What to do when COMMAND fails.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Keep maintenance on and workers down; print how to restore
    Hold,
    /// Reopen at once
    Restore,
}

/// The window itself.
#[derive(clap::Args, Debug, Clone)]
pub struct WindowArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// Process types to scale to 0 during the window (default: every non-web type with dynos)
    #[arg(long, value_name = "TYPE,…", value_delimiter = ',')]
    pub scale_down: Vec<String>,

    /// The git side of the decision.
    #[command(flatten)]
    pub diff: DiffArgs,

    /// Release the current slug of this app inside the window, before COMMAND (nothing is built while down)
    #[arg(long, value_name = "APP")]
    pub promote_from: Option<String>,

    /// The promotion starts the app's release phase: a DDL statement of it that waits on a lock this long is cancelled (the release then fails and the window holds); one that holds a lock is never cut inside the window, however long; `off` only watches
    #[arg(allow_hyphen_values = true, long, value_name = "DUR|off", default_value = cli_kit::DEFAULT_LOCK_WAIT, value_parser = cli_kit::lock_wait_arg)]
    pub lock_wait: cli_kit::LockWait,

    /// Longest to wait for the promotion's release phase (the window holds if it has not ended)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "65m", value_parser = cli_kit::positive_duration_arg)]
    pub release_timeout: Duration,

    /// The database the release phase migrates (watched while it runs).
    #[command(flatten)]
    pub db: cli_kit::DatabaseArgs,

    /// When COMMAND fails: hold the window, or restore at once
    #[arg(long, value_enum, default_value = "hold")]
    pub on_failure: OnFailure,

    /// How long scaled-down dynos have to stop
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "60s", value_parser = cli_kit::positive_duration_arg)]
    pub drain_timeout: Duration,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,

    /// The deploy step to run inside the window (after --), with HEROKU_APP set
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
