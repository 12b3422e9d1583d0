//! The database around a migration run: the preflight before it, which database the lock
//! watch reads during it, and what a failed attempt left behind before a retry.

use std::collections::BTreeMap;
use std::time::Duration;

use cli_kit::{fail, format_duration, interrupt, refused, usage, Exit, Output, Poll, ResolvedDatabase};
use migration_policy::plan_file::{self, PlanFile};
use migration_policy::preflight;
use pg_locks::lockplan::LockPlan;
use pg_locks::Connection;
use pg_locks::Snapshot;

use crate::cli::RunArgs;
use crate::render;
use crate::report::Preflight;
use crate::TOOL;

/// `lock_timeout 5s via PGOPTIONS, enforced from outside at 5.5s`: how the timeout is applied.
pub fn timeout_in_force(
    lock_timeout: Option<Duration>,
    outside: pg_locks::Budgets,
    lock_hold: Option<cli_kit::LockWait>,
) -> String {
    let waits = waits_in_force(lock_timeout, outside.wait);
    match (outside.hold, lock_hold) {
        (Some(h), _) => format!("{waits}; {}{}", migration_policy::signs::HOLDS_CUT_AT, format_duration(h)),
        (None, Some(cli_kit::LockWait(None))) => format!("{waits}; {}", migration_policy::signs::HOLDS_NOT_CUT),
        (None, _) => waits,
    }
}

fn waits_in_force(lock_timeout: Option<Duration>, outside: Option<Duration>) -> String {
    let Some(lock_timeout) = lock_timeout else {
        return "no lock-wait budget (--lock-wait off): its statements wait for their locks as long as that takes; the watch only says who holds them".into();
    };
    match outside {
        Some(o) => format!(
            "lock_timeout {} via PGOPTIONS, enforced from outside at {}",
            format_duration(lock_timeout),
            format_duration(o)
        ),
        None => format!(
            "lock_timeout {} via PGOPTIONS only: --no-lock-watch, so nothing enforces it from outside",
            format_duration(lock_timeout)
        ),
    }
}

/// The database the lock watch (and the outside budget) reads: the run's own, except when it
/// goes through a connection pooler and the app has a direct URL beside it. Through the pooler
/// the watch would wait in the pooler's queue behind the site's own queries exactly when the
/// pool is full of queries stuck behind the migration — when the budget has to act.
pub fn watch_database(
    out: &Output,
    app: &str,
    db: Option<&ResolvedDatabase>,
    vars: &BTreeMap<String, String>,
) -> Option<ResolvedDatabase> {
    let db = db?;
    let cli_kit::DatabaseSource::App { config_var, .. } = &db.source else { return Some(db.clone()) };
    let Some(direct) = cli_kit::database::direct_beside(vars, config_var) else { return Some(db.clone()) };
    if !pg_locks::connect(&db.connect_options(TOOL)).is_ok_and(|c| c.through_pooler()) {
        return Some(db.clone());
    }
    let Some(d) = cli_kit::database::from_config_vars(app, vars, direct) else { return Some(db.clone()) };
    out.show(&render::Before::WatchReadsDirect { direct, app });
    Some(d)
}

/// One line for a migration a pooler refused: what happened and which config var to use.
pub fn pooler_refusal(app: &str, db: Option<&ResolvedDatabase>, vars: &BTreeMap<String, String>) -> String {
    let used = match db.map(|d| &d.source) {
        Some(cli_kit::DatabaseSource::App { config_var, .. }) => config_var.clone(),
        _ => "the migration's database URL".to_string(),
    };
    let advice = match cli_kit::database::direct_beside(vars, &used) {
        Some(d) => format!("migrations should use the direct URL: {app} also has {d}"),
        None => "migrations should use the database's direct URL, not the pooler".to_string(),
    };
    format!(
        "a connection pooler refused the migration's startup options (PGOPTIONS: \"unsupported startup parameter\"): {used} of {app} goes through a pooler; {advice}"
    )
}

/// One look: what would make the migration wait — with a plan, only the sessions in the way of
/// a planned lock (the rest set aside).
fn look(
    client: &mut pg_locks::Conn,
    max_xact_age: Duration,
    plan: Option<&LockPlan>,
) -> anyhow::Result<(preflight::Assessment, Vec<preflight::Finding>)> {
    let assessment = preflight::assess(&Snapshot::take(client)?, max_xact_age);
    let Some(plan) = plan else { return Ok((assessment, Vec::new())) };
    let in_the_way = pg_locks::lockplan::obstacles(client.client(), plan)?;
    Ok(plan_file::narrow(assessment, plan, &in_the_way))
}

/// Preflight: refuse (exit 5) when something would make the DDL wait, unless --force; with
/// --wait-clear, wait for it to end first.
pub fn run_preflight(
    args: &RunArgs,
    out: &Output,
    app: &str,
    db: Option<&ResolvedDatabase>,
    plan_file: Option<&PlanFile>,
) -> anyhow::Result<Preflight> {
    let Some(db) = db else {
        return Err(usage(format!("cannot run the preflight: {app} has no DATABASE_URL config var; pass --database-url URL, or --no-preflight to skip it")));
    };
    let mut client = pg_locks::connect(&db.connect_options(TOOL))
        .map_err(|e| fail(Exit::Failed, format!("cannot run the preflight: {e}; nothing was started. Fix the URL or free a connection slot: the lock watch needs this database too")))?;
    if let Some(f) = plan_file {
        f.check_against(client.client())?;
    }
    let plan = plan_file.map(|f| &f.plan);
    if client.through_pooler() {
        out.show(&render::Preflight::ThroughPooler { database: db.describe() });
    }
    let (mut assessment, mut set_aside) = look(&mut client, args.max_xact_age, plan)?;
    if !assessment.findings.is_empty() {
        if let Some(limit) = args.wait_clear {
            out.show(&render::Preflight::WaitingToClear { limit, blockers: assessment.findings.len() });
            let mut poll = Poll::with_pauses(limit, Duration::from_millis(500), Duration::from_secs(2));
            while !assessment.findings.is_empty() && poll.wait_next() {
                if interrupt::requested() {
                    return Err(fail(
                        Exit::Interrupted,
                        "interrupted while waiting for the preflight to clear; nothing was started",
                    ));
                }
                (assessment, set_aside) = look(&mut client, args.max_xact_age, plan)?;
            }
        }
    }
    let found = &assessment.findings;
    if !set_aside.is_empty() {
        out.show(&render::Preflight::SetAside { findings: &set_aside });
    }
    let doc = Preflight::Checked {
        database: db.describe(),
        findings: found.clone(),
        unvouched: assessment.unvouched.clone(),
        set_aside,
    };
    if found.is_empty() && assessment.unvouched.is_empty() {
        out.show(&render::Preflight::Clear { database: db.describe() });
        return Ok(doc);
    }
    if found.is_empty() {
        out.show(&render::Preflight::Unvouched { database: db.describe(), unvouched: &assessment.unvouched });
        return Ok(doc);
    }
    out.show(&render::Preflight::Blockers { database: db.describe(), findings: found });
    if args.force {
        out.show(&render::Preflight::Forced);
        return Ok(doc);
    }
    let sel = db.selector_args();
    let fill_in = db.fill_in().map(|f| format!("; {f}")).unwrap_or_default();
    Err(refused(format!(
        "preflight found {} that would block the migration; nothing was started. Wait with --wait-clear DUR, clear them (pg-blockers {sel}), or pass --force{fill_in}",
        cli_kit::output::count(found.len(), "session")
    )))
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn the_plan_says_how_the_timeout_is_applied() {
        let five = Some(Duration::from_secs(5));
        let outside = pg_locks::Budgets { wait: Some(Duration::from_millis(5500)), hold: five };
        assert_eq!(
            timeout_in_force(five, outside, None),
            "lock_timeout 5s via PGOPTIONS, enforced from outside at 5.5s; holds cut at 5s"
        );
        let hold_off = pg_locks::Budgets { hold: None, ..outside };
        assert_eq!(
            timeout_in_force(five, hold_off, Some(cli_kit::LockWait(None))),
            "lock_timeout 5s via PGOPTIONS, enforced from outside at 5.5s; holds not cut (--lock-hold off)"
        );
        let unwatched = pg_locks::Budgets::default();
        assert!(timeout_in_force(five, unwatched, None).contains("nothing enforces it from outside"));
        assert!(timeout_in_force(None, unwatched, None).starts_with("no lock-wait budget (--lock-wait off)"));
    }
}
