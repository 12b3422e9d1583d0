//! After stopping a release or one-off dyno: its database sessions are not ended by the stop.
//! Show any DDL still waiting for a lock, what it blocks, and the command that clears it.

use std::collections::BTreeMap;

use crate::render::Said;
use crate::report::{DatabaseCheck, WaitingStatement};
use cli_kit::{DatabaseArgs, Output, ResolvedDatabase};
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
    out.show(&Said::MayStillRun { dynos: names });
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
    out.show(&Said::CheckSkipped { reason });
    DatabaseCheck::Skipped { reason: reason.to_string() }
}

fn report(out: &Output, db: &ResolvedDatabase, snap: &Snapshot) -> DatabaseCheck {
    let blocked_total = snap.blocked().count();
    let (selector, confirm) = (db.selector_args(), db.confirm_name());
    let items: Vec<WaitingStatement> = waiting_ddl(snap)
        .into_iter()
        .filter_map(|w| {
            let s = snap.get(w.pid)?;
            Some(WaitingStatement {
                pid: w.pid,
                query: s.query.clone(),
                application_name: s.application_name.clone(),
                waiting_for: s.waiting_for.clone(),
                wait_secs: s.wait_secs(),
                blocking_total: w.blocking_total,
                waits_for: w.waits_for.clone(),
                root_blocker: w.root,
                command: format!("pg-blockers {selector} --cancel {} --confirm {confirm}", w.pid),
            })
        })
        .collect();
    out.show(&Said::DatabaseCheck { db, snap, blocked_total, waiting: &items });
    DatabaseCheck::Checked { database: db.describe(), blocked_total, waiting_ddl: items }
}
