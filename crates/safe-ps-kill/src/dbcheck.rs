//! After stopping a release or one-off dyno: its database sessions are not ended by the stop.
//! Show any DDL still waiting for a lock, what it blocks, and the command that clears it.

use std::collections::BTreeMap;

use crate::report::{DatabaseCheck, WaitingStatement};
use cli_kit::output::{bold, red};
use cli_kit::{format_duration, DatabaseArgs, Output, ResolvedDatabase};
use heroku_api::Dyno;
use pg_locks::{waiting_ddl, Snapshot};

/// Release-phase and one-off dynos run migrations and other statements worth checking.
pub fn runs_statements(d: &Dyno) -> bool {
    d.is_one_off()
}

/// Runs the check and prints it; returns the report's part. Never fails the command: a database
/// that cannot be reached is one line saying the check was skipped and why.
pub fn check(
    out: &Output,
    app: &str,
    db: &DatabaseArgs,
    vars: &BTreeMap<String, String>,
    stopped: &[Dyno],
) -> DatabaseCheck {
    let names: Vec<&str> = stopped.iter().filter(|d| runs_statements(d)).map(|d| d.name.as_str()).collect();
    out.say(format!(
        "Statements started by {} may still be running or waiting on locks: stopping a dyno does not end its database sessions.",
        names.join(", ")
    ));
    let resolved = match cli_kit::database::from_flag_or_app(db, app, vars) {
        Ok(r) => r,
        Err(e) => return skipped(out, &format!("--database-url is unusable: {}", cli_kit::one_line(&e))),
    };
    let Some(resolved) = resolved else {
        return skipped(
            out,
            &format!("{app} has no DATABASE_URL config var; pass --database-url to check another database"),
        );
    };
    let mut client = match pg_locks::connect(&resolved.connect_options(super::TOOL)) {
        Ok(c) => c,
        Err(e) => return skipped(out, &e.to_string()),
    };
    let snap = match Snapshot::take(&mut client) {
        Ok(s) => s,
        Err(e) => return skipped(out, &e.to_string()),
    };
    report(out, &resolved, &snap)
}

fn skipped(out: &Output, reason: &str) -> DatabaseCheck {
    out.warn(format!("database check skipped: {reason}"));
    DatabaseCheck::Skipped { reason: reason.to_string() }
}

fn report(out: &Output, db: &ResolvedDatabase, snap: &Snapshot) -> DatabaseCheck {
    let waiting = waiting_ddl(snap);
    let blocked_total = snap.blocked().count();
    let selector = db.selector_args();
    let confirm = db.confirm_name();
    let mut items = Vec::new();
    if waiting.is_empty() {
        if blocked_total == 0 {
            out.ok(format!("No statement on {} is waiting on a lock.", db.describe()));
        } else {
            out.say(format!(
                "No DDL is waiting on {}, but {blocked_total} sessions wait on locks: pg-blockers {selector}",
                db.describe()
            ));
        }
    } else {
        out.say(format!(
            "{} on {}:",
            red().apply_to(format!("{} waiting for a lock", cli_kit::output::count(waiting.len(), "DDL statement"))),
            db.describe()
        ));
    }
    for w in &waiting {
        let Some(s) = snap.get(w.pid) else { continue };
        let lock = s
            .waiting_for
            .as_ref()
            .map(|l| format!(" ({} on {})", l.mode, l.object.as_deref().unwrap_or(&l.locktype)))
            .unwrap_or_default();
        let waited =
            s.wait_secs().map(|x| format_duration(std::time::Duration::from_secs_f64(x))).unwrap_or_else(|| "?".into());
        out.say(format!(
            "  pid {} [{}] waits {waited}: {}{lock} — blocking {}",
            w.pid,
            s.application_name,
            s.query_line(80),
            w.blocking_total
        ));
        if let Some(root) = w.root.and_then(|r| snap.get(r)) {
            let held = root
                .xact_age_secs
                .map(|x| format_duration(std::time::Duration::from_secs_f64(x)))
                .unwrap_or_else(|| "?".into());
            out.say(format!(
                "    held up by pid {} ({}, {} for {held}): {}",
                root.pid,
                root.application_name,
                root.state.as_deref().unwrap_or("?"),
                root.query_line(60)
            ));
        }
        let command = format!("pg-blockers {selector} --cancel {} --confirm {confirm}", w.pid);
        out.say(format!(
            "    {} {command}   (the DDL rolls back; the {} behind it run)",
            bold().apply_to("fix now:"),
            w.blocking_total
        ));
        items.push(WaitingStatement {
            pid: w.pid,
            query: s.query.clone(),
            application_name: s.application_name.clone(),
            waiting_for: s.waiting_for.clone(),
            wait_secs: s.wait_secs(),
            blocking_total: w.blocking_total,
            waits_for: w.waits_for.clone(),
            root_blocker: w.root,
            command,
        });
    }
    if !waiting.is_empty() {
        out.say(format!("  see everything: pg-blockers {selector}"));
    }
    if let (Some(f), true) = (db.fill_in(), blocked_total > 0) {
        out.say(format!("  to run these: {f}"));
    }
    DatabaseCheck::Checked { database: db.describe(), blocked_total, waiting_ddl: items }
}
