//! Errors from the API client, each one line a user can act on.

use std::fmt;

/// What went wrong talking to the Platform API.
#[derive(Debug)]
pub enum Error {
    /// The local configuration is unusable (e.g. `HEROKU_HOST` is plain http to a remote host).
    Config(String),
    /// No token was found anywhere.
    NotLoggedIn(String),
    /// The API answered 401: the token is missing, expired or revoked.
    Unauthorized {
        /// Heroku's own message.
        message: String,
    },
    /// The API answered 403.
    Forbidden {
        /// Heroku's error id, e.g. `two_factor` or `forbidden`.
        id: String,
        /// Heroku's own message.
        message: String,
    },
    /// The API answered 404 for something the request named.
    NotFound {
        /// What the request was about, e.g. "app `acme`" or "dyno `release.2343` of acme".
        subject: String,
        /// Heroku's own message.
        message: String,
    },
    /// Any other error status, after retries where they were allowed.
    Api {
        /// HTTP status.
        status: u16,
        /// Heroku's error id, when the body had one.
        id: String,
        /// Heroku's own message (or the start of the body).
        message: String,
        /// The Request-Id header, for a support ticket.
        request_id: Option<String>,
    },
    /// The request never got an HTTP answer (connect, TLS, timeout, reset).
    Transport {
        /// e.g. `GET /apps/acme/dynos`.
        request: String,
        /// What failed, without URLs or headers.
        detail: String,
        /// How many attempts were made.
        attempts: u32,
        /// True when the request may have reached Heroku and was deliberately not retried.
        not_retried_unsafe: bool,
    },
    /// A 2xx answer whose body was not what the schema promises.
    Decode {
        /// e.g. `GET /apps/acme/dynos`.
        request: String,
        /// The parser's complaint.
        detail: String,
    },
}

impl Error {
    /// True for 401/403 and missing credentials: the "not authenticated or not allowed" class.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::NotLoggedIn(_) | Error::Unauthorized { .. } | Error::Forbidden { .. })
    }

    /// True when the API said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) | Error::NotLoggedIn(m) => f.write_str(m),
            Error::Unauthorized { message } => write!(
                f,
                "not logged in or token rejected ({}): run `heroku login` or set HEROKU_API_KEY",
                message.trim_end_matches('.')
            ),
            Error::Forbidden { id, message } if id == "two_factor" => write!(
                f,
                "this action needs two-factor authentication ({}): run `heroku login` interactively, or use an API key with the needed access",
                message.trim_end_matches('.')
            ),
            Error::Forbidden { message, .. } => write!(f, "not allowed: {}", message.trim_end_matches('.')),
            Error::NotFound { subject, message } => {
                write!(f, "{subject} not found ({})", message.trim_end_matches('.'))
            }
            Error::Api { status, id, message, request_id } => {
                write!(f, "Heroku API error {status}")?;
                if !id.is_empty() {
                    write!(f, " {id}")?;
                }
                write!(f, ": {}", message.trim_end_matches('.'))?;
                if let Some(rid) = request_id {
                    write!(f, " (Request-Id {rid})")?;
                }
                Ok(())
            }
            Error::Transport { request, detail, attempts, not_retried_unsafe } => {
                write!(f, "{request} failed: {detail}")?;
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                if *not_retried_unsafe {
                    write!(f, "; not retried because it may already have taken effect — check the app's state before trying again")?;
                }
                Ok(())
            }
            Error::Decode { request, detail } => {
                write!(f, "{request}: unexpected response from Heroku: {detail}")
            }
        }
    }
}

impl std::error::Error for Error {}
