//! The HTTP machinery: headers, timeouts, retries, pagination, error mapping, the verbose hook.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client as HttpClient;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE, USER_AGENT};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{find_token_for, Token, TokenSource};
use crate::host::ApiHost;
use crate::Error;

/// The media type every Platform API v3 request asks for.
pub const ACCEPT_V3: &str = "application/vnd.heroku+json; version=3";

/// The variant the Heroku CLI asks for on the routes outside the published schema (formation
/// actions, the generation of an app): `commands/ps/restart.js`, `stop.js`.
pub const ACCEPT_V3_SDK: &str = "application/vnd.heroku+json; version=3.sdk";

/// One finished HTTP attempt, for `-v`. Never carries the token or bodies.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query (no host, no credentials).
    pub path: String,
    /// The status, or `None` when no answer came.
    pub status: Option<u16>,
    /// The `Request-Id` header Heroku returns.
    pub request_id: Option<String>,
    /// Wall time of this attempt.
    pub elapsed: Duration,
    /// 1 for the first try, 2 for the first retry…
    pub attempt: u32,
    /// What failed when `status` is `None`.
    pub error: Option<String>,
}

/// Called after every attempt.
pub type RequestLogger = Arc<dyn Fn(&RequestRecord) + Send + Sync>;

/// Called before the client waits out a 429's `Retry-After` (the request, then the wait), so a
/// tool is not silent for it.
pub type RateLimitNotice = Arc<dyn Fn(&str, Duration) + Send + Sync>;

/// How hard to try before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff after a 5xx or connection error; doubles each time.
    pub base_backoff: Duration,
    /// Longest single backoff.
    pub max_backoff: Duration,
    /// Longest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// Whether a request may be sent again after an answer that leaves its effect unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Sending it twice has the effect of sending it once (GET, stop, set quantities, maintenance on).
    Idempotent,
    /// Sending it twice could do it twice (create a one-off dyno, create a release).
    NotIdempotent,
}

/// Everything needed to build a [`Client`].
pub struct ClientBuilder {
    host: ApiHost,
    token: Token,
    token_source: TokenSource,
    user_agent: String,
    timeout: Duration,
    retry: RetryPolicy,
    logger: Option<RequestLogger>,
    on_rate_limit: Option<RateLimitNotice>,
}

impl ClientBuilder {
    /// A client for `host` with `token`; `tool` and `version` name the caller in the User-Agent.
    pub fn new(host: ApiHost, token: Token, tool: &str, version: &str) -> Self {
        ClientBuilder {
            host,
            token,
            token_source: TokenSource::EnvVar,
            user_agent: format!("{tool}/{version} heroku-deploy-safety ({})", std::env::consts::OS),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            logger: None,
            on_rate_limit: None,
        }
    }

    /// Host from `HEROKU_HOST`, token from `HEROKU_API_KEY` or `~/.netrc`.
    pub fn from_env(tool: &str, version: &str) -> Result<Self, Error> {
        let host = ApiHost::from_env()?;
        let (token, source) = find_token_for(&host.netrc_machines())?;
        let mut b = ClientBuilder::new(host, token, tool, version);
        b.token_source = source;
        Ok(b)
    }

    /// The per-request timeout (connect through last byte). Default 30s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Installs the verbose hook.
    pub fn logger(mut self, logger: RequestLogger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// Installs the hook told before a 429's `Retry-After` wait.
    pub fn on_rate_limit(mut self, notice: RateLimitNotice) -> Self {
        self.on_rate_limit = Some(notice);
        self
    }

    /// Builds the client. Certificates are always verified against the one store every
    /// connection uses ([`tls_roots::client_config`]: system roots plus `SSL_CERT_FILE`).
    /// reqwest's own root loading is not used: it reads `SSL_CERT_FILE` *instead of* the
    /// system's roots, so the API and the rendezvous would trust different sets.
    pub fn build(self) -> Result<Client, Error> {
        let tls = tls_roots::client_config().map_err(Error::Config)?;
        // Log streams stay open as long as the dyno runs: no overall timeout, only on connect.
        let stream_http = HttpClient::builder()
            .timeout(None)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .use_preconfigured_tls(tls.clone())
            .build()
            .map_err(|e| Error::Config(format!("cannot set up HTTPS: {e}")))?;
        let http = HttpClient::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .use_preconfigured_tls(tls)
            .build()
            .map_err(|e| Error::Config(format!("cannot set up HTTPS: {e}")))?;
        Ok(Client {
            http,
            stream_http,
            host: self.host,
            token: self.token,
            token_source: self.token_source,
            user_agent: self.user_agent,
            retry: self.retry,
            logger: self.logger,
            on_rate_limit: self.on_rate_limit,
            calls: AtomicU64::new(0),
        })
    }
}

/// A Platform API client. Cheap to share by reference across threads.
pub struct Client {
    http: HttpClient,
    stream_http: HttpClient,
    host: ApiHost,
    token: Token,
    token_source: TokenSource,
    user_agent: String,
    retry: RetryPolicy,
    logger: Option<RequestLogger>,
    on_rate_limit: Option<RateLimitNotice>,
    calls: AtomicU64,
}

/// A request as the resource methods describe it.
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub idempotency: Idempotency,
    /// What the request is about, for a 404: "app `acme`".
    pub subject: String,
    /// The `Accept` media type: [`ACCEPT_V3`] unless the route needs a variant.
    pub accept: &'static str,
}

impl Call {
    pub fn get(path: String, subject: String) -> Self {
        Call { method: Method::GET, path, body: None, idempotency: Idempotency::Idempotent, subject, accept: ACCEPT_V3 }
    }
}

struct RawResponse {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// The HTTP client for long-lived streams (same trust store, no overall timeout).
    pub(crate) fn stream_http(&self) -> &HttpClient {
        &self.stream_http
    }

    /// The User-Agent every request carries.
    pub(crate) fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The API host this client talks to.
    pub fn host(&self) -> &ApiHost {
        &self.host
    }

    /// Where the token came from.
    pub fn token_source(&self) -> &TokenSource {
        &self.token_source
    }

    /// The token, for redaction lists. Never print it.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// How many HTTP attempts this client has made (retries included).
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sends one request (with retries as its idempotency allows) and decodes the JSON answer.
    pub(crate) fn send<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Error> {
        let resp = self.send_with_retries(call, None)?;
        decode(call, &resp.body)
    }

    /// Sends a request whose answer body does not matter.
    pub(crate) fn send_ignore_body(&self, call: &Call) -> Result<(), Error> {
        self.send_with_retries(call, None).map(|_| ())
    }

    /// GETs every page of a list, following `Next-Range` on 206 answers.
    pub(crate) fn list<T: DeserializeOwned>(&self, call: &Call, first_range: Option<String>) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut range = first_range;
        // A guard against a server that hands back the same range forever.
        for _ in 0..10_000 {
            let resp = self.send_with_retries(call, range.as_deref())?;
            let mut page: Vec<T> = decode(call, &resp.body)?;
            out.append(&mut page);
            let next = header_str(&resp.headers, "next-range");
            match (resp.status, next) {
                (206, Some(next)) if Some(next.as_str()) != range.as_deref() => range = Some(next),
                _ => return Ok(out),
            }
        }
        Err(Error::Decode { request: describe(call), detail: "pagination did not end after 10000 pages".into() })
    }

    /// GETs one page only, e.g. the newest release with `max=1`.
    pub(crate) fn first_page<T: DeserializeOwned>(&self, call: &Call, range: &str) -> Result<Vec<T>, Error> {
        let resp = self.send_with_retries(call, Some(range))?;
        decode(call, &resp.body)
    }

    fn send_with_retries(&self, call: &Call, range: Option<&str>) -> Result<RawResponse, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts;
            match self.send_once(call, range, attempt) {
                Err(err) => {
                    // A refused connection never reached Heroku, so even a create is safe to resend.
                    let safe = call.idempotency == Idempotency::Idempotent || err.is_connect();
                    if safe && !last {
                        std::thread::sleep(self.backoff(attempt));
                        continue;
                    }
                    // Which host: a HEROKU_HOST typo reads as "could not connect" otherwise.
                    let where_ = if std::env::var_os("HEROKU_HOST").is_some_and(|h| !h.is_empty()) {
                        format!(" to {} (HEROKU_HOST)", self.host.authority())
                    } else {
                        format!(" to {}", self.host.authority())
                    };
                    return Err(Error::Transport {
                        request: describe(call),
                        detail: match transport_detail(&err) {
                            d if d.contains(": ") => d.replacen(": ", &format!("{where_}: "), 1),
                            d => format!("{d}{where_}"),
                        },
                        attempts: attempt,
                        not_retried_unsafe: !safe,
                    });
                }
                Ok(resp) if resp.status == 429 && !last => {
                    let wait = retry_after(&resp.headers)
                        .map(|d| d.min(self.retry.max_retry_after))
                        .unwrap_or_else(|| self.backoff(attempt));
                    if let Some(notice) = &self.on_rate_limit {
                        notice(&describe(call), wait);
                    }
                    std::thread::sleep(wait);
                }
                Ok(resp) if resp.status >= 500 && call.idempotency == Idempotency::Idempotent && !last => {
                    std::thread::sleep(self.backoff(attempt));
                }
                Ok(resp) if (200..300).contains(&resp.status) => return Ok(resp),
                Ok(resp) => return Err(self.error_for(call, resp)),
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << (attempt.saturating_sub(1)).min(16);
        (self.retry.base_backoff * factor).min(self.retry.max_backoff)
    }

    fn send_once(&self, call: &Call, range: Option<&str>, attempt: u32) -> Result<RawResponse, reqwest::Error> {
        let url = format!("{}{}", self.host.base_url(), call.path);
        let mut req = self
            .http
            .request(call.method.clone(), url)
            .header(ACCEPT, call.accept)
            .header(USER_AGENT, &self.user_agent)
            .header(AUTHORIZATION, bearer(&self.token));
        if let Some(range) = range {
            req = req.header(RANGE, range);
        }
        if let Some(body) = &call.body {
            req = req.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = req.send().and_then(|resp| {
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes()?.to_vec();
            Ok(RawResponse { status, headers, body })
        });
        if let Some(log) = &self.logger {
            let (status, request_id, error) = match &result {
                Ok(r) => (Some(r.status), header_str(&r.headers, "request-id"), None),
                Err(e) => (None, None, Some(transport_detail(e))),
            };
            log(&RequestRecord {
                method: call.method.to_string(),
                path: call.path.clone(),
                status,
                request_id,
                elapsed: started.elapsed(),
                attempt,
                error,
            });
        }
        result
    }

    fn error_for(&self, call: &Call, resp: RawResponse) -> Error {
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let id = body.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let message = body.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
            String::from_utf8_lossy(&resp.body).chars().take(200).collect::<String>().trim().to_string()
        });
        match resp.status {
            401 => Error::Unauthorized { message },
            403 => Error::Forbidden { id, message },
            404 => Error::NotFound { subject: call.subject.clone(), message },
            status => Error::Api { status, id, message, request_id: header_str(&resp.headers, "request-id") },
        }
    }
}

fn bearer(token: &Token) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token-characters"));
    v.set_sensitive(true);
    v
}

fn decode<T: DeserializeOwned>(call: &Call, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode { request: describe(call), detail: e.to_string() })
}

fn describe(call: &Call) -> String {
    format!("{} {}", call.method, call.path)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = header_str(headers, "retry-after")?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A transport error in words, without the URL (which reqwest includes and which may carry a host we'd rather not echo twice).
pub(crate) fn transport_detail(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the answer was cut off"
    } else {
        "connection failed"
    };
    let mut source = std::error::Error::source(err);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    match innermost {
        Some(inner) => format!("{kind}: {inner}"),
        None => kind.to_string(),
    }
}

/// Percent-encodes one path segment (app, dyno, release identities are user input).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
