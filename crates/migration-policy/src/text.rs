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
    if let Some(held) = &e.held {
        return hold_cut_lines(e, held, whose);
    }
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

/// What the hold budget did to a statement others queued behind: what was cut, who queued and
/// for how long, how long the statement had run, and the form that would not hold the lock.
fn hold_cut_lines(e: &Enforcement, held: &pg_locks::HeldCut, whose: &str) -> Vec<String> {
    let budget = format_duration(Duration::from_millis(e.budget_ms));
    let ms = |m: u64| format_duration(Duration::from_millis(m));
    let verb = match held.action {
        pg_locks::Signal::Cancel => "cancel",
        pg_locks::Signal::Terminate => "terminate",
    };
    if !e.sent {
        return vec![format!(
            "Hold budget {budget}: pid {}'s statement ended, or nobody queued behind it any more, before the {verb}; nothing was cut",
            e.wait.pid
        )];
    }
    if !e.verified {
        return vec![format!(
            "✗ Hold budget {budget}: the {verb} of pid {} was not seen to take; check with heroku pg:blockers",
            e.wait.pid
        )];
    }
    let first = &held.first_waiter;
    let others = match held.queued.saturating_sub(1) {
        0 => String::new(),
        n => format!(", {n} more behind it"),
    };
    let what = match held.action {
        pg_locks::Signal::Cancel => format!("cancelled the {whose}'s `{}` (pid {})", e.wait.query, e.wait.pid),
        pg_locks::Signal::Terminate => format!(
            "ended the {whose}'s session (pid {}, idle in its transaction after `{}`)",
            e.wait.pid, e.wait.query
        ),
    };
    vec![
        format!(
            "{} Hold budget {budget}: {what}: it had run {} holding {}, and pid {} ({}) had queued behind it for {}{others}; {} run again",
            yellow().apply_to("✂"),
            ms(held.running_ms),
            e.wait.lock,
            first.pid,
            first.application_name,
            ms(e.wait.waited_ms),
            match e.released {
                1 => "1 query".to_string(),
                n => format!("{n} queries"),
            },
        ),
        format!("   queued first: pid {} wants {}: {}", first.pid, held.first_waiter_wants, first.query),
        format!("   its transaction rolled back: nothing of it is applied. Why this session: {}", e.wait.why),
        format!(
            "   the form that does not hold the lock this long: {}",
            held.safe_form.as_deref().unwrap_or(NO_SAFE_FORM)
        ),
    ]
}

/// What is said where no safe form of the statement is known.
pub const NO_SAFE_FORM: &str = "none known for this statement: split it so no single statement holds the lock past the budget, or run it in a maintenance window (heroku maintenance:window)";

/// What a second line still cuts: `cutting what still waits at 7.5s and what others have
/// queued behind for 7.5s`, or that it cuts nothing.
pub fn second_line_words(b: pg_locks::Budgets) -> String {
    let waits = b.wait.map(|d| format!("what still waits at {}", format_duration(d)));
    let holds = b.hold.map(|d| format!("what others have queued behind for {}", format_duration(d)));
    let parts: Vec<String> = waits.into_iter().chain(holds).collect();
    if parts.is_empty() {
        "cutting nothing".to_string()
    } else {
        format!("cutting {}", parts.join(" and "))
    }
}
