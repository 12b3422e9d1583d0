//! The Heroku API client as every tool builds it: from the environment, token registered for
//! redaction, requests logged under `-v`.

use std::sync::Arc;

use heroku_api::{Client, ClientBuilder, RequestRecord};

use crate::output::{dim, Output};
use crate::redact::register_secret;

/// Builds the API client for `tool`, or the exit-4 "run `heroku login`" error.
pub fn api_client(tool: &str, version: &str, out: &Output) -> anyhow::Result<Client> {
    let mut builder = ClientBuilder::from_env(tool, version)?;
    if out.is_verbose() {
        let out = out.clone();
        builder =
            builder.logger(Arc::new(move |r: &RequestRecord| out.note(dim().apply_to(format_record(r)).to_string())));
    }
    // A rate limit's wait is said: always with -v, and on a terminal when it is long enough
    // to look like a hang.
    if out.is_verbose() || out.can_animate() {
        let out = out.clone();
        builder = builder.on_rate_limit(Arc::new(move |request: &str, wait: std::time::Duration| {
            if out.is_verbose() || wait >= RATE_LIMIT_SAID_AFTER {
                out.warn(format!(
                    "Heroku is rate-limiting this account (429 on {request}): waiting {} as its Retry-After asks",
                    crate::format_duration(wait)
                ));
            }
        }));
    }
    let client = builder.build()?;
    register_secret(client.token().expose());
    out.debug(match client.token_source() {
        heroku_api::TokenSource::EnvVar => {
            format!("API {} with the token from HEROKU_API_KEY", client.host().base_url())
        }
        heroku_api::TokenSource::Netrc(p) => {
            format!("API {} with the token from {}", client.host().base_url(), p.display())
        }
    });
    Ok(client)
}

/// A Retry-After wait this long is said on a terminal even without -v.
const RATE_LIMIT_SAID_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// `→ GET /apps/acme/dynos 200 12ms (Request-Id …)`.
pub fn format_record(r: &RequestRecord) -> String {
    let status = match (r.status, &r.error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => format!("error: {e}"),
        (None, None) => "no answer".into(),
    };
    let retry = if r.attempt > 1 { format!(" (retry {})", r.attempt - 1) } else { String::new() };
    let rid = r.request_id.as_deref().map(|id| format!(" Request-Id {id}")).unwrap_or_default();
    format!("→ {} {} {} {}ms{}{}", r.method, r.path, status, r.elapsed.as_millis(), rid, retry)
}
