//! The database around a migration run: the preflight before it, which database the lock
//! watch reads during it, and what a failed attempt left behind before a retry.

use std::collections::BTreeMap;
use std::time::Duration;

use cli_kit::output::{bold, red};
use cli_kit::{fail, format_duration, interrupt, refused, usage, Exit, Output, Poll, ResolvedDatabase};
use migration_policy::{debris, preflight};
use pg_locks::Snapshot;

use crate::attempt::Attempt;
use crate::cli::RunArgs;
use crate::report::Preflight;
use crate::TOOL;

/// `lock_timeout 5s via PGOPTIONS, enforced from outside at 5.5s`: how the timeout is applied.
pub fn timeout_in_force(lock_timeout: Duration, outside: Option<Duration>) -> String {
    match outside {
        Some(o) => format!(
            "lock_timeout {} via PGOPTIONS, enforced from outside at {}",
            format_duration(lock_timeout),
            format_duration(o)
        ),
        None => format!(
            "lock_timeout {} via PGOPTIONS only: no database is watched (--no-lock-watch, or no database known), so nothing enforces it from outside",
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
    out.note(format!(
        "the lock watch and its budget read {direct} of {app} directly: through the pooler they would queue behind the site's own queries when its pool is full"
    ));
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

/// Before a retry: what the failed attempt left. Recorded versions are named (already applied);
/// an INVALID index it left blocks the retry with the exact statement, unless
/// `--drop-invalid-indexes` drops it (verified). Returns whether the retry may go ahead.
pub fn check_left_behind(
    out: &Output,
    app: &str,
    db: &ResolvedDatabase,
    baseline: &debris::Baseline,
    drop: bool,
    attempt: &mut Attempt,
) -> bool {
    let mut left = match baseline.left_behind(&db.connect_options(TOOL)) {
        Ok(l) => l,
        Err(e) => {
            out.warn(format!("could not check what the failed attempt left ({e}); retrying anyway"));
            return true;
        }
    };
    if !left.recorded_versions.is_empty() {
        out.warn(format!(
            "already applied by the failed attempt (recorded since this run began): {}; the retry skips them",
            left.recorded_versions.join(", ")
        ));
    }
    let mut cleared = true;
    if !left.invalid_indexes.is_empty() {
        let names: Vec<&str> = left.invalid_indexes.iter().map(|i| i.name.as_str()).collect();
        if drop {
            out.note(format!(
                "dropping the INVALID {} the failed attempt left: {} (DROP INDEX CONCURRENTLY waits up to {} for transactions using it; reads and writes go on)",
                if names.len() == 1 { "index" } else { "indexes" },
                names.join(", "),
                format_duration(debris::DROP_WAIT)
            ));
            match debris::drop_invalid(&db.connect_options(TOOL), &left.invalid_indexes) {
                Ok(dropped) => {
                    out.ok(format!("dropped {} (verified gone)", dropped.join(", ")));
                    left.dropped = dropped;
                }
                Err(e) => {
                    out.bad(format!("could not drop it: {e}; not retrying"));
                    cleared = false;
                }
            }
        } else {
            out.bad(format!(
                "the failed attempt left {} INVALID (a cancelled CREATE INDEX CONCURRENTLY): a retry would fail on it or build a second copy. Not retrying. Drop it first, then run again:",
                names.join(", ")
            ));
            for i in &left.invalid_indexes {
                out.say(format!("  {}", i.drop_statement));
            }
            out.say(format!("(or re-run with --drop-invalid-indexes; see what holds the table: pg-blockers -a {app})"));
            cleared = false;
        }
    }
    attempt.left_behind = Some(left);
    cleared
}

/// Preflight: refuse (exit 5) when something would make the DDL wait, unless --force; with
/// --wait-clear, wait for it to end first.
pub fn run_preflight(
    args: &RunArgs,
    out: &Output,
    app: &str,
    db: Option<&ResolvedDatabase>,
) -> anyhow::Result<Preflight> {
    let Some(db) = db else {
        return Err(usage(format!("cannot run the preflight: {app} has no DATABASE_URL config var; pass --database-url URL, or --no-preflight to skip it")));
    };
    let mut client = pg_locks::connect(&db.connect_options(TOOL))
        .map_err(|e| fail(Exit::Failed, format!("cannot run the preflight: {e}; pass --no-preflight to skip it")))?;
    if client.through_pooler() {
        out.note(format!(
            "{} goes through a connection pooler (it refused the startup options): the preflight and the lock watch read the server's locks through it",
            db.describe()
        ));
    }
    let mut assessment = preflight::assess(&Snapshot::take(&mut client)?, args.max_xact_age);
    if !assessment.findings.is_empty() {
        if let Some(limit) = args.wait_clear {
            out.note(format!(
                "Waiting up to {} for {} to clear…",
                format_duration(limit),
                cli_kit::output::count(assessment.findings.len(), "blocker")
            ));
            let mut poll = Poll::with_pauses(limit, Duration::from_millis(500), Duration::from_secs(2));
            while !assessment.findings.is_empty() && poll.wait_next() {
                if interrupt::requested() {
                    return Err(fail(
                        Exit::Interrupted,
                        "interrupted while waiting for the preflight to clear; nothing was started",
                    ));
                }
                assessment = preflight::assess(&Snapshot::take(&mut client)?, args.max_xact_age);
            }
        }
    }
    let found = &assessment.findings;
    let doc = Preflight::Checked {
        database: db.describe(),
        findings: found.clone(),
        unvouched: assessment.unvouched.clone(),
    };
    if found.is_empty() && assessment.unvouched.is_empty() {
        out.ok(format!("preflight: nothing on {} would make the migration wait", db.describe()));
        return Ok(doc);
    }
    if found.is_empty() {
        // Not an all-clear: this credential cannot see how old these transactions are.
        out.warn(format!(
            "preflight: no blocker seen on {}, but table locks are held by {} of other roles, and this credential cannot see for how long; the lock timeout bounds the wait:",
            db.describe(),
            cli_kit::output::count(assessment.unvouched.len(), "session")
        ));
        for f in &assessment.unvouched {
            out.warn(format!("  {}", f.detail));
        }
        return Ok(doc);
    }
    out.say(format!(
        "{} on {}: a migration's DDL would wait behind these, and every query on its tables behind it:",
        red().apply_to("Preflight found blockers"),
        db.describe()
    ));
    for f in found {
        out.say(format!("  {} {}", bold().apply_to(format!("[{}]", f.kind)), f.detail));
    }
    if args.force {
        out.warn("--force: starting anyway; the lock timeout limits how long the DDL can hold up the app");
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
        assert_eq!(
            timeout_in_force(Duration::from_secs(5), Some(Duration::from_millis(5500))),
            "lock_timeout 5s via PGOPTIONS, enforced from outside at 5.5s"
        );
        assert!(timeout_in_force(Duration::from_secs(5), None).contains("nothing enforces it from outside"));
    }
}
