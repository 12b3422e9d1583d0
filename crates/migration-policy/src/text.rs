//! How a guarded session's lock wait and the budget's cancel read, the same in every tool:
//! `whose` is `release` (a release phase) or `migration` (a one-off dyno, or the command
//! `migrate-guard` runs).

use std::time::Duration;

use cli_kit::format_duration;
use cli_kit::output::yellow;
use pg_locks::{Enforcement, Wait};

/// `held by pid 4100 (reporting, active for 20m 3s) [backup]: SELECT …`.
pub fn holder_line(w: &Wait) -> String {
    match &w.blocker {
        None => "its holder is not visible to this credential".into(),
        Some(h) => {
            let age =
                h.xact_age_secs.map(|a| format_duration(Duration::from_secs_f64(a))).unwrap_or_else(|| "?".into());
            let labels = if h.labels.is_empty() { String::new() } else { format!(" [{}]", h.labels.join(", ")) };
            match &h.state {
                Some(state) => {
                    format!("held by pid {} ({}, {state} for {age}){labels}: {}", h.pid, h.application_name, h.query)
                }
                None => format!(
                    "held by pid {} ({}, state and age hidden from this credential){labels}",
                    h.pid, h.application_name
                ),
            }
        }
    }
}

/// A new wait: what waits, behind whom, how many queue behind it, and why the session was
/// taken for the tool's.
pub fn wait_lines(w: &Wait, whose: &str) -> Vec<String> {
    let queued = match w.queued_behind {
        0 => String::new(),
        1 => " — 1 query queued behind it".into(),
        n => format!(" — {n} queries queued behind it"),
    };
    vec![
        format!("{} The {whose}'s `{}` (pid {}) waits for {}{queued}", yellow().apply_to("⏳"), w.query, w.pid, w.lock),
        format!("   {}", holder_line(w)),
        format!("   taken for the {whose}'s session: {}", w.why),
    ]
}

/// What the budget did to one statement.
pub fn enforcement_lines(e: &Enforcement, whose: &str) -> Vec<String> {
    let budget = format_duration(Duration::from_millis(e.budget_ms));
    let waited = format_duration(Duration::from_millis(e.wait.waited_ms));
    if !e.sent {
        return vec![format!(
            "Lock-wait budget {budget}: pid {}'s statement ended or moved on before the cancel; nothing was cancelled",
            e.wait.pid
        )];
    }
    if !e.verified {
        return vec![format!(
            "✗ Lock-wait budget {budget}: the cancel of pid {} was not seen to take; check with heroku pg:blockers",
            e.wait.pid
        )];
    }
    let released = match e.released {
        0 => String::new(),
        1 => "; the query queued behind it runs again".into(),
        n => format!("; {n} queries queued behind it run again"),
    };
    vec![
        format!(
            "{} Lock-wait budget {budget}: cancelled the {whose}'s `{}` (pid {}) after it waited {waited}{released}",
            yellow().apply_to("✂"),
            e.wait.query,
            e.wait.pid
        ),
        format!("   why this session: {}", e.wait.why),
        format!("   what it waited behind: {}", holder_line(&e.wait)),
    ]
}
