//! Injected failures: one-shot rules (503, 429 with Retry-After, a reset connection, a second
//! factor asked for) and the faults every request meets (latency, rate limits, small pages, a
//! slow or dropped log stream), so a user can rehearse a flaky API (`heroku-sim --fail-503`).

use std::time::Duration;

/// A fault rule: the next `remaining` requests matching `method`/`path_contains` get `kind`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Only this method (None: any).
    pub method: Option<String>,
    /// Only paths containing this (None: any).
    pub path_contains: Option<String>,
    /// How many more requests it applies to.
    pub remaining: u32,
    /// What happens.
    pub kind: FaultKind,
}

/// The kinds of injected failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 503 with a Heroku error body.
    ServiceUnavailable,
    /// 429 with this Retry-After (seconds).
    RateLimited(u32),
    /// The connection is reset without an answer.
    Reset,
    /// 403 `two_factor`, as for an action that needs a second factor.
    TwoFactor,
}

/// Faults that apply to every request.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Added before every answer.
    pub latency: Duration,
    /// Every Nth request answers 429.
    pub rate_limit_every: Option<u32>,
    /// Retry-After seconds sent with 429s.
    pub retry_after_secs: u32,
    /// Largest page a list answers with.
    pub page_size: usize,
    /// One-shot rules, checked in order.
    pub rules: Vec<FaultRule>,
    /// Log lines reach log sessions this late.
    pub log_delay: Duration,
    /// The next log stream drops after sending this many lines (one-shot).
    pub log_drop_after: Option<usize>,
    /// History lines a log session can ask for (the platform keeps 1,500).
    pub log_history_limit: usize,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            rate_limit_every: None,
            retry_after_secs: 1,
            page_size: 1000,
            rules: Vec::new(),
            log_delay: Duration::ZERO,
            log_drop_after: None,
            log_history_limit: 1500,
        }
    }
}
