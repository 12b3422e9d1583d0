//! The only code in the project that speaks HTTP to Heroku's Platform API.
//!
//! - [`ApiHost`]: `HEROKU_HOST` with the Heroku CLI's meaning, plain http only to loopback.
//! - [`find_token`]: `HEROKU_API_KEY`, else `~/.netrc`.
//! - [`Client`]: v3 headers, a timeout on every request, `Range` pagination, retries that
//!   never resend a request that could have taken effect, one-line [`Error`]s, a verbose hook.
//! - Typed resources in [`resources`].

pub mod auth;
mod client;
mod error;
pub mod host;
pub mod logs;
pub mod release_output;
pub mod rendezvous;
pub mod resources;
pub mod timestamp;

pub use auth::{find_token, find_token_for, Token, TokenSource};
pub use client::{
    Client, ClientBuilder, Idempotency, RequestLogger, RequestRecord, RetryPolicy, ACCEPT_V3, ACCEPT_V3_SDK,
};
pub use error::Error;
pub use host::ApiHost;
pub use resources::*;
