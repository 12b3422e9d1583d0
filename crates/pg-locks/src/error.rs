//! Database errors in one line, classified so tools can pick the right exit code.

use std::fmt;

/// What kind of failure, for the exit-code contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The URL or an argument is malformed (exit 2).
    Usage,
    /// The server could not be reached or TLS failed (exit 1).
    Unreachable,
    /// The server rejected the login (exit 4).
    Auth,
    /// The role may not do this, e.g. cancel another role's session (exit 4).
    Permission,
    /// A query failed (exit 1).
    Query,
    /// Refused for safety: this tool will not signal that session (exit 5).
    Refused,
}

/// A database error; its text never contains a password.
#[derive(Debug)]
pub struct Error {
    /// The class.
    pub kind: ErrorKind,
    /// One line.
    pub message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }

    /// Classifies a driver error: SQLSTATE class 28 is a rejected login, 42501 a missing
    /// privilege, 3D000 an unknown database; I/O and timeouts mean unreachable.
    pub(crate) fn from_driver(context: &str, e: postgres::Error) -> Error {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let kind = match code {
                c if c.starts_with("28") => ErrorKind::Auth,
                "42501" => ErrorKind::Permission,
                "3D000" => ErrorKind::Usage,
                _ => ErrorKind::Query,
            };
            return Error::new(kind, format!("{context}: {}{} (SQLSTATE {code})", db.message(), hint(code)));
        }
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        Error::new(ErrorKind::Unreachable, format!("{context}: {detail}"))
    }
}

/// What a server error means in an outage, and the ways out with their cost.
fn hint(code: &str) -> &'static str {
    match code {
        // too_many_connections: also "remaining connection slots are reserved".
        "53300" => " — every connection slot is taken, so nothing can look inside without freeing one",
        // lock_not_available, query_canceled: this tool's own timeouts.
        "55P03" | "57014" => {
            " — this tool's own session gave up rather than wait in the lock queue it came to \
             inspect: something holds a lock on the system catalogs (a DDL in an open \
             transaction); nothing was changed"
        }
        _ => "",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
