//! The command line.

use std::time::Duration;

use cli_kit::{AppArgs, ConfirmArgs, DatabaseArgs, Exit, OutputArgs};

/// `--help` examples.
const EXAMPLES: &str = "  migrate-restart -a acme                                   # the Procfile's release: command
  migrate-restart -a acme --command 'bin/rails db:migrate' --lock-wait 3s
  migrate-restart -a acme --restart web,worker --confirm acme
  migrate-restart -a acme --wait-clear 2m                   # wait for a backup to finish first
  migrate-restart -a acme --restart none --json             # inside a maintenance window
  migrate-restart check -a acme                             # dynos that predate the schema
  migrate-restart follow -a acme run.1001 --restart all     # pick up a detached migration from any machine
  migrate-restart release -a acme --confirm acme            # guard the pending release phase (lock-wait 5s)
  migrate-restart release v43 -a acme --lock-wait off       # only watch: output, dyno, who blocks its DDL
  migrate-restart plan -a acme --scratch-url postgres://localhost/acme_dev -- bin/rails db:migrate\n";

/// The exit codes this tool returns, for `--help`.
const EXITS: &[(Exit, &str)] = &[
    (Exit::Success, "migrated and every restarted dyno verified"),
    (Exit::Failed, "the migration failed (nothing restarted); release: the release phase failed"),
    (Exit::Usage, "bad flag, unknown process type, no database for the preflight"),
    (
        Exit::NotVerified,
        "restart not verified in time, or the dyno connection was lost (outcome unknown); plan: could not vouch",
    ),
    (Exit::NotAuthenticated, "not logged in / not allowed"),
    (
        Exit::Refused,
        "no --confirm without a terminal, or the preflight found blockers (--force, --wait-clear, --plan); release --plan: a session is in the planned locks' way; plan: a migration is running",
    ),
    (Exit::BlockingFound, "plan: the migration would wait behind the sessions it names"),
    (
        Exit::Interrupted,
        "interrupted: the one-off dyno was stopped and its database session ended (release: the release phase goes on)",
    ),
];

/// Run the release migration on a one-off dyno with a lock timeout, retry it when a lock
/// blocks it, then restart at once and prove every dyno booted after the migration.
///
/// Before starting it checks Postgres for what would make the DDL wait (backups, long or idle
/// transactions, existing lock waits); while it runs it says who holds any lock the migration
/// waits for. The real exit status comes back from the dyno, so a failed migration never
/// triggers a restart.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "migrate-restart",
    version,
    args_conflicts_with_subcommands = true,
    after_help = cli_kit::exit::after_help(EXAMPLES, EXITS)
)]
pub struct Args {
    /// The subcommand, when one is given.
    #[command(subcommand)]
    pub sub: Option<Sub>,

    /// A migration run (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// List dynos that booted before the schema last changed (stale-schema risk)
    Check(CheckArgs),
    /// Pick up a detached migration from any machine: its output, its exit status, then the restart
    Follow(FollowArgs),
    /// Follow the app's release phase as it runs: its output, who blocks its DDL, a lock-wait budget enforced from outside
    Release(ReleaseArgs),
    /// Which tables the migration will lock, in which mode (recorded on a scratch database),
    /// and who holds them on the app's database right now
    Plan(PlanArgs),
}

/// `migrate-restart plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// A database with the app's schema where the migration may run, instead of the copy the
    /// tool makes (a local copy; never the app's own; needs a superuser there). Without it the
    /// app's schema is copied into a local PostgreSQL server of the same major version
    /// (PG_BINDIR, or the system's), thrown away after
    #[arg(long, value_name = "URL", env = "SCRATCH_DATABASE_URL", hide_env_values = true)]
    pub scratch_url: Option<String>,

    /// How many of production's busiest statements (pg_stat_statements, by calls) are
    /// prepared on the copy before and after the migration, to find those it breaks
    #[arg(long, value_name = "N", default_value_t = crate::commands::plan::DEFAULT_TOP)]
    pub top: usize,

    /// The budget the deploy runs under: a statement that would hold a lock the site queues
    /// behind for longer is reported (verdict would_block, exit 10)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = cli_kit::DEFAULT_LOCK_WAIT, value_parser = cli_kit::positive_duration_arg)]
    pub lock_wait: std::time::Duration,

    /// The migration command, run locally with DATABASE_URL set to the scratch database
    /// (default: the `release:` line of ./Procfile, through sh)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    /// Which database the plan is checked against (the app's).
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `migrate-restart release`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReleaseArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// The release to follow: v43 (default: the newest)
    #[arg(value_name = "VERSION")]
    pub release: Option<String>,

    /// Follow the next release the app gets (one that does not exist yet), waiting up to
    /// --next-timeout for it: a CI job that starts the guard, then deploys elsewhere
    #[arg(long, conflicts_with = "release")]
    pub next: bool,

    /// How long --next waits for the release to appear
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "10m", value_parser = cli_kit::positive_duration_arg)]
    pub next_timeout: Duration,

    /// Run COMMAND (e.g. git push heroku main) and follow the release it creates, from the
    /// moment it exists; the exit status is the release's real outcome
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    /// Cancel a DDL statement of the release that waited on a lock this long, or that others have queued behind this long, so the queries queued behind it run (the release then fails); `off` only watches
    #[arg(allow_hyphen_values = true, long, value_name = "DUR|off", default_value = cli_kit::DEFAULT_LOCK_WAIT, value_parser = cli_kit::lock_wait_arg)]
    pub lock_wait: cli_kit::LockWait,

    /// The hold budget (None: the --lock-wait budget).
    #[arg(allow_hyphen_values = true, long, value_name = "DUR|off", value_parser = cli_kit::lock_wait_arg, help = cli_kit::LOCK_HOLD_HELP)]
    pub lock_hold: Option<cli_kit::LockWait>,

    /// Stop the release dyno and cancel its statements once the release phase has run this long
    /// (at most 60m: the platform stops a release phase after 1h)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", value_parser = cli_kit::release_deadline_arg)]
    pub deadline: Option<Duration>,

    /// Sessions with this application_name are the release's too (when the app sets one)
    #[arg(long, value_name = "NAME")]
    pub application_name: Option<String>,

    /// Longest to follow (the release phase goes on after it; the platform stops it at 1h)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "65m", value_parser = cli_kit::positive_duration_arg)]
    pub timeout: Duration,

    /// The release's lock plan (`migrate-restart plan --json > FILE`): before COMMAND runs,
    /// refuse (nothing deployed) while a session holds or waits for a lock that conflicts with
    /// a planned one; following a release, name them
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,

    /// How long the formation has to come up on the release after it succeeded
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "3m", value_parser = cli_kit::positive_duration_arg)]
    pub restart_timeout: Duration,

    /// Which database the release migrates.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `migrate-restart follow`.
#[derive(clap::Args, Debug, Clone)]
pub struct FollowArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// The migration's one-off dyno (default: the one this machine started and has not concluded)
    #[arg(value_name = "DYNO")]
    pub dyno: Option<String>,

    /// What to restart after success: all, TYPE,…, or none (default: what the run that started it chose; required when this machine has no record of it)
    #[arg(long, value_name = "all|TYPE,…|none")]
    pub restart: Option<String>,

    /// Longest to follow before giving up (the migration goes on)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "1h", value_parser = cli_kit::positive_duration_arg)]
    pub timeout: Duration,

    /// How long restarted dynos have to come up
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "3m", value_parser = cli_kit::positive_duration_arg)]
    pub restart_timeout: Duration,

    /// Which database (to end the migration's session after Ctrl-C).
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `migrate-restart check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// The time the schema changed: RFC 3339 (2026-11-22T06:00:00Z) or an age (10m = ten minutes ago)
    #[arg(allow_hyphen_values = true, long, value_name = "TIME")]
    pub since: Option<String>,

    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Running a migration.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Which app (-a, HEROKU_APP, -r, the heroku git remote).
    #[command(flatten)]
    pub app: AppArgs,

    /// The migration command (default: the `release:` line of ./Procfile)
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,

    /// One-off dyno size
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,

    /// Longest a statement of the migration may wait for a lock: its sessions' lock_timeout (via
    /// PGOPTIONS), and cancelled from outside shortly after, whatever the migration set; and
    /// longest anyone may queue behind a lock it holds (see --lock-hold); `off`: no budget, the
    /// watch only says who holds what (`--lock-timeout`, its old name, still works)
    #[arg(allow_hyphen_values = true, long, alias = "lock-timeout", value_name = "DUR|off", default_value = cli_kit::DEFAULT_LOCK_WAIT, value_parser = cli_kit::lock_wait_arg)]
    pub lock_wait: cli_kit::LockWait,

    /// The hold budget (None: the --lock-wait budget).
    #[arg(allow_hyphen_values = true, long, value_name = "DUR|off", value_parser = cli_kit::lock_wait_arg, help = cli_kit::LOCK_HOLD_HELP)]
    pub lock_hold: Option<cli_kit::LockWait>,

    /// statement_timeout for the migration's sessions (via PGOPTIONS; default: none)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", value_parser = cli_kit::positive_duration_arg)]
    pub statement_timeout: Option<Duration>,

    /// Retries after a lock timeout
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,

    /// Before a retry, drop the INVALID indexes the failed attempt left (DROP INDEX CONCURRENTLY, verified) instead of stopping with the command to run
    #[arg(long)]
    pub drop_invalid_indexes: bool,

    /// What to restart after success: all, a comma-separated list of process types, or none
    #[arg(long, value_name = "all|TYPE,…|none", default_value = "all")]
    pub restart: String,

    /// Skip the database check before the start (the lock watch and its budget still run
    /// during the migration; --no-lock-watch turns those off)
    #[arg(long)]
    pub no_preflight: bool,

    /// Do not watch the database during the migration: nothing enforces the lock-wait budget
    /// from outside, only PGOPTIONS lock_timeout (which the migration may override)
    #[arg(long)]
    pub no_lock_watch: bool,

    /// A transaction older than this makes the preflight refuse
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "60s", value_parser = cli_kit::positive_duration_arg)]
    pub max_xact_age: Duration,

    /// The migration's lock plan (`migrate-restart plan --json > FILE`): the preflight refuses
    /// only for sessions holding or waiting for a lock that conflicts with a planned one, and
    /// says what it set aside
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,

    /// Wait up to DUR for preflight findings to clear instead of refusing at once
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", value_parser = cli_kit::positive_duration_arg)]
    pub wait_clear: Option<Duration>,

    /// Start even though the preflight found blockers
    #[arg(long)]
    pub force: bool,

    /// Run even while a release phase runs (its migration and this one at once)
    #[arg(long)]
    pub beside_release_phase: bool,

    /// With --plan: run even while the running release still sends queries the migration
    /// breaks (by default the run is refused until that traffic has stopped), and say so
    #[arg(long)]
    pub allow_breaking: bool,

    /// Longest a migration attempt may run (the dyno is also told to stop then)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "1h", value_parser = cli_kit::positive_duration_arg)]
    pub timeout: Duration,

    /// Attach to the dyno through the rendezvous instead of running it detached and following
    /// its log (output without log delay; the migration then ends with the connection)
    #[arg(long)]
    pub attach: bool,

    /// How long restarted dynos have to come up
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "3m", value_parser = cli_kit::positive_duration_arg)]
    pub restart_timeout: Duration,

    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// The answer to the confirmation.
    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}
