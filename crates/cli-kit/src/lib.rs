//! What every binary shares, so that the four tools people type and migrate-guard look and
//! behave alike:
//! app resolution ([`AppArgs`]), output modes ([`Output`]), confirmation ([`confirm_destructive`]),
//! the exit-code contract ([`Exit`]), styling, redaction, durations and the `main` wrapper.

pub mod api;
pub mod app;
pub mod args;
pub mod confirm;
pub mod database;
pub mod duration;
pub mod error;
pub mod exit;
pub mod interrupt;
pub mod invocation;
pub mod output;
pub mod poll;
pub mod program;
pub mod redact;
pub mod shell;
pub mod state;
pub mod units;

pub use api::api_client;
pub use app::AppArgs;
pub use confirm::{confirm_destructive, pick, ConfirmArgs};
pub use database::{resolve_database, DatabaseArgs, DatabaseSource, ResolvedDatabase};
pub use duration::{format_duration, parse_duration, parse_positive_duration};
pub use error::{exit_for, fail, one_line, refused, usage, CliError};
pub use exit::Exit;
pub use output::{printable, terminal_safe, Captured, Line, Output, OutputArgs, Render, Tone};
pub use poll::Poll;
pub use redact::{redact, register_secret, register_url_password};

/// The version of every tool's `--json` document (`schema_version`). Raised when a field
/// changes meaning or goes away; adding a field does not raise it.
pub const SCHEMA_VERSION: u32 = 1;

/// Runs a tool's `try_main` and turns its result into the process exit code: an error is
/// printed once, as `error: <one line>` on stderr, redacted, and mapped by [`exit_for`].
/// Panics are reported redacted too.
pub fn run_main(try_main: impl FnOnce() -> anyhow::Result<Exit>) -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = redact(&info.to_string());
        eprintln!("internal error (please report it): {msg}");
    }));
    match try_main() {
        Ok(exit) => exit.into(),
        Err(err) => {
            let exit = exit_for(&err);
            if output::take_json_owed() {
                // `--json` always ends with one document, failures included.
                output::write_error_document(&redact(&one_line(&err)), exit);
            }
            // An error may echo an argument or an API field: shown, never obeyed.
            let line = printable(&invocation::as_invoked(&one_line(&err)));
            let mut stderr = std::io::stderr().lock();
            let _ =
                std::io::Write::write_fmt(&mut stderr, format_args!("{} {line}\n", output::red().apply_to("error:")));
            exit.into()
        }
    }
}

/// Joins a scoped thread, re-raising its panic: a panic in a parallel request must not turn
/// into a silent default.
pub fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// clap value parser for durations that may be zero (`--min-wait 0s`).
pub fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s)
}

/// clap value parser for durations that must be positive (timeouts, intervals).
pub fn positive_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    parse_positive_duration(s)
}

/// The platform stops a release phase after one hour: a deadline past that would never act.
pub const RELEASE_PHASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// clap value parser for a release phase's deadline: positive, and within the platform's hour.
pub fn release_deadline_arg(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_positive_duration(s)?;
    if d > RELEASE_PHASE_LIMIT {
        return Err(format!(
            "`{s}` is past the platform's limit: it stops a release phase after 1h, so this deadline would never act; use at most 60m"
        ));
    }
    Ok(d)
}

/// The lock-wait budget every tool enforces by default: how long a statement of a migration may
/// wait for a lock before it is cancelled (and every query queued behind it runs).
pub const DEFAULT_LOCK_WAIT: &str = "5s";

/// `--lock-wait DUR|off`: the lock-wait budget, or none (`off`: only watch). One type and one
/// meaning on every tool that enforces the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockWait(pub Option<std::time::Duration>);

impl LockWait {
    /// The budgets a guard enforces: `--lock-wait` bounds both the wait for a lock and how long
    /// others may queue behind a lock a statement holds; `--lock-hold` (when given) replaces
    /// the hold side alone (`off`: holds are watched, never cut).
    pub fn budgets(self, lock_hold: Option<LockWait>) -> pg_locks::Budgets {
        pg_locks::Budgets { wait: self.0, hold: lock_hold.unwrap_or(self).0 }
    }
}

/// Both budgets, as the tools pass them to the watch.
pub use pg_locks::Budgets;

/// The `--lock-hold` help, the same on every tool that enforces the budget.
pub const LOCK_HOLD_HELP: &str = "Longest anyone may queue behind a lock a statement of the migration holds (a rewrite, an index build, a validating scan): the statement is cut then, its transaction rolls back and the queue runs; counted from the first waiter's wait, so a long statement nobody queues behind is never cut. Default: the --lock-wait budget; `off`: holds are only watched";

/// clap value parser for `--lock-wait DUR|off`.
pub fn lock_wait_arg(s: &str) -> Result<LockWait, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(LockWait(None));
    }
    parse_positive_duration(s).map(|d| LockWait(Some(d))).map_err(|e| format!("{e} (or `off` to only watch)"))
}
