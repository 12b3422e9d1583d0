//! One way errors reach the user: `error: <one line>` on stderr and the contract's exit code.

use std::fmt;

use crate::exit::Exit;

/// An error that knows its exit code. Attach one with [`fail`] or the `usage`/`refused` helpers;
/// errors without one are classified by [`exit_for`].
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// One line saying what was wrong and what to do.
    pub message: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// An error with an explicit exit code.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError { exit, message: message.into() })
}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    fail(Exit::Usage, message)
}

/// A safety refusal (exit 5).
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    fail(Exit::Refused, message)
}

/// The exit code an error maps to: an explicit [`CliError`] wins; then the first library error
/// in the chain says its own class ([`database_exit`], [`api_exit`]); anything else is 1.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.exit;
        }
        if let Some(e) = cause.downcast_ref::<pg_locks::Error>() {
            return database_exit(e.kind);
        }
        if let Some(e) = cause.downcast_ref::<heroku_api::Error>() {
            return api_exit(e);
        }
    }
    Exit::Failed
}

/// A database error's class. Exhaustive: a new kind does not compile until it has one.
pub fn database_exit(kind: pg_locks::ErrorKind) -> Exit {
    match kind {
        pg_locks::ErrorKind::Usage => Exit::Usage,
        pg_locks::ErrorKind::Auth | pg_locks::ErrorKind::Permission => Exit::NotAuthenticated,
        pg_locks::ErrorKind::Refused => Exit::Refused,
        pg_locks::ErrorKind::Unreachable | pg_locks::ErrorKind::Query => Exit::Failed,
    }
}

/// A Platform API error's class: not logged in or not allowed is 4, a thing that does not
/// exist or a configuration mistake is 2, the API or the network failing is 1. Exhaustive: a
/// new variant does not compile until it has one.
pub fn api_exit(e: &heroku_api::Error) -> Exit {
    use heroku_api::Error as E;
    match e {
        E::NotLoggedIn(_) | E::Unauthorized { .. } | E::Forbidden { .. } => Exit::NotAuthenticated,
        E::NotFound { .. } | E::Config(_) => Exit::Usage,
        E::Api { .. } | E::Transport { .. } | E::Decode { .. } => Exit::Failed,
    }
}

/// The one line printed for an error: its context chain joined with ": ", redacted.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // anyhow's context chain often repeats the inner message inside the outer one.
        if parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let line = parts.join(": ").replace('\n', " ");
    crate::redact::redact(&line)
}
