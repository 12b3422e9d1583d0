//! The flags. Defaults fit a release phase: a 5s budget, three retries within ten minutes,
//! two minutes for blockers to clear, and a deadline just under the platform's one-hour limit
//! for a release phase (so the guard, not the platform's SIGKILL, ends the migration's DDL).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  # Procfile: the release phase runs the migration under the guard
  release: migrate-guard --lock-wait 5s -- bundle exec rake db:migrate

  # Django, waiting up to 5 minutes for a nightly backup to finish first
  release: migrate-guard --wait-for-clear 5m -- python manage.py migrate

  # Cancel a Heroku Postgres backup that blocks the migration (the backup fails; take it again)
  release: migrate-guard --cancel-backups -- ./bin/migrate

The last line the guard prints is its summary, for scripts:
  migrate-guard: outcome=succeeded attempts=1 cut=0 waited_ms=0 exit=0";

/// Runs a migration command with a lock-wait budget enforced from its own database
/// connection, safe retries, and an end to its statements when the dyno is stopped.
#[derive(Parser, Debug, Clone)]
#[command(name = "migrate-guard", version, after_help = EXAMPLES)]
pub struct Args {
    /// Longest a statement of the migration may wait for a lock (PGOPTIONS lock_timeout, and
    /// cancelled from the guard's own connection shortly after, whatever the migration set), and
    /// longest anyone may queue behind a lock it holds (see --lock-hold); `off`: no budget, the
    /// guard only watches (and still ends the statements on a stop)
    #[arg(allow_hyphen_values = true, long, value_name = "DUR|off", default_value = cli_kit::DEFAULT_LOCK_WAIT, value_parser = cli_kit::lock_wait_arg)]
    pub lock_wait: cli_kit::LockWait,

    /// The hold budget (None: the --lock-wait budget).
    #[arg(allow_hyphen_values = true, long, value_name = "DUR|off", value_parser = cli_kit::lock_wait_arg, help = cli_kit::LOCK_HOLD_HELP)]
    pub lock_hold: Option<cli_kit::LockWait>,

    /// Retries after a lock timeout
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,

    /// No retry starts later than this after the first attempt began
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "10m", value_parser = cli_kit::positive_duration_arg)]
    pub retry_for: Duration,

    /// Before the first statement, wait up to DUR for sessions that would make DDL wait (a long
    /// transaction, a backup, an idle transaction) to end; 0s: do not wait
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "2m", value_parser = cli_kit::duration_arg)]
    pub wait_for_clear: Duration,

    /// The migration's lock plan in the slug (`migrate-restart plan --json > FILE`, committed
    /// with the migration): before the first statement, wait only for sessions holding or
    /// waiting for a lock that conflicts with a planned one
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,

    /// A transaction older than this counts as one that would make DDL wait
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "60s", value_parser = cli_kit::positive_duration_arg)]
    pub max_xact_age: Duration,

    /// Skip the look for blockers before the first statement (the budget still applies): for a
    /// caller that looked already (migrate-restart runs its one-off migration this way)
    #[arg(long)]
    pub no_preflight: bool,

    /// With --plan: run even while the running release still sends queries the migration
    /// breaks (by default the guard refuses until that traffic has stopped), and say so
    #[arg(long)]
    pub allow_breaking: bool,

    /// Cancel a Heroku Postgres backup (`Heroku Postgres Backups`) that would block the
    /// migration, instead of waiting for it (the backup fails and can be taken again)
    #[arg(long)]
    pub cancel_backups: bool,

    /// Before a retry, drop the INVALID indexes the failed attempt left (DROP INDEX
    /// CONCURRENTLY, verified) instead of failing with the statement to run
    #[arg(long)]
    pub drop_invalid_indexes: bool,

    /// End the migration (its database statements first, verified) after this long; the
    /// platform stops a release phase after one hour
    #[arg(allow_hyphen_values = true, long, value_name = "DUR", default_value = "55m", value_parser = cli_kit::positive_duration_arg)]
    pub deadline: Duration,

    /// The config var holding the database URL
    #[arg(long, value_name = "VAR", default_value = "DATABASE_URL")]
    pub database_var: String,

    /// When the database cannot be watched, run anyway with only PGOPTIONS lock_timeout (by
    /// default the guard refuses: the release fails and the app stays on its release)
    #[arg(long)]
    pub unwatched: bool,

    /// Also write the report as JSON to FILE (for CI)
    #[arg(long, value_name = "FILE")]
    pub json_report: Option<PathBuf>,

    /// Say each look at the database and each SQL statement of the guard's own
    #[arg(short, long)]
    pub verbose: bool,

    /// The migration command and its arguments, after `--` (run as given, without a shell)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl Args {
    /// Parses the process's arguments; on a usage error prints one line (or clap's help) and
    /// returns the exit code to end with.
    pub fn parse_from_env() -> Result<Args, std::process::ExitCode> {
        Args::parse_from_iter(std::env::args_os())
    }

    /// [`Args::parse_from_env`] over given arguments. Its lines carry the guard's prefix (they
    /// land in the release output), and a COMMAND without `--` is said as that.
    pub fn parse_from_iter<I, T>(argv: I) -> Result<Args, std::process::ExitCode>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        cli_kit::args::parse_from(argv, "migrate-guard: ", |e, argv| {
            let no_separator = !argv.iter().any(|a| a == "--");
            (no_separator && e.kind() == clap::error::ErrorKind::UnknownArgument).then(|| {
                "put the migration command after `--`: migrate-guard [OPTIONS] -- COMMAND [ARGS]… (e.g. migrate-guard --lock-wait 5s -- bundle exec rake db:migrate)".to_string()
            })
        })
    }
}
