//! `plan`'s wording: the recorded lock plan against the app's live locks.

use std::time::Duration;

use cli_kit::output::{bold, one, red, yellow};
use cli_kit::{format_duration, Line, Render, ResolvedDatabase, Tone};
use pg_locks::lockplan::{LockMode, LockPlan, Obstacle, PlannedStatement, TableActivity};

use crate::report::{PlanVerdict, SchemaCopy};

/// `plan`: the recorded lock plan against the app's live locks.
#[derive(Debug)]
pub enum Planning<'a> {
    /// What `plan` records where, and what it checks.
    WillRecordPlan { command: String, scratch: String, database: String },
    /// The app's schema, copied into a local server for the plan.
    Copied { database: String, copy: &'a SchemaCopy },
    /// The plan: each statement with the locks it takes, how busy the tables are, then who
    /// would make it wait, and the verdict (with why it cannot vouch, when it cannot).
    Plan {
        plan: &'a LockPlan,
        obstacles: &'a [Obstacle],
        older: &'a [i32],
        activity: &'a [TableActivity],
        breaks: &'a [super::Break],
        running_release: Option<&'a super::RunningRelease>,
        checked: &'a migration_plan::breaks::Checked,
        verdict: &'a (PlanVerdict, Vec<String>),
        db: &'a ResolvedDatabase,
        budget: Duration,
    },
    /// Running it again on a sample shaped like production's data, to time it.
    Measuring { rows: u64 },
    /// Watching production's sessions for the queries `pg_stat_statements` would have given.
    Sampling { window: Duration },
    /// No local server of production's version: the pinned build is being fetched.
    Fetching { fetching: &'a migration_plan::scratch::Fetching },
}

impl Render for Planning<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Planning::WillRecordPlan { command, scratch, database } => one(
                Say,
                format!("Recording what `{command}` locks on {scratch} (the scratch database), then checking {database} for sessions that would make it wait."),
            ),
            Planning::Copied { database, copy } => copied_lines(database, copy),
            Planning::Plan { plan, obstacles, older, activity, breaks, running_release, checked, verdict, db, budget } => {
                let mut lines: Vec<Line> = plan_lines(plan, obstacles, older, activity, *budget).into_iter().map(|l| Line::new(Say, l)).collect();
                lines.extend(break_lines(plan, breaks, checked));
                lines.extend(running_release.map(window_lines).unwrap_or_default());
                lines.push(Line::new(Say, verdict_line(verdict, db, *budget)));
                lines
            }
            Planning::Fetching { fetching: f } => one(
                Say,
                format!(
                    "No local PostgreSQL server of production's version: fetching the pinned build {} for {} from {} (once: it is kept in {}).",
                    f.version,
                    f.platform,
                    f.registry,
                    f.cache.display()
                ),
            ),
            Planning::Sampling { window } => one(
                Say,
                format!("pg_stat_statements cannot be read and the migration changes what the running release may rely on: watching production's sessions for {} to see what they send.", format_duration(*window)),
            ),
            Planning::Measuring { rows } => one(
                Note,
                format!("Timing it on a second copy filled with a sample shaped by production's statistics (up to {rows} rows a table; no row of production's is read)…"),
            ),
        }
    }
}

/// The plan for people: each statement with the locks it takes, then who would make it wait.
/// `pid 10185 (reporting) holds AccessShareLock on public.users`.
pub(crate) fn obstacle_brief(o: &Obstacle) -> String {
    format!(
        "pid {} ({}) {} {} on {}",
        o.pid,
        cli_kit::printable(o.application_name.as_deref().unwrap_or("?")),
        if o.granted { "holds" } else { "waits for" },
        o.mode.name(),
        o.relation
    )
}

fn copied_lines(database: &str, c: &SchemaCopy) -> Vec<Line> {
    let mut lines = vec![Line::new(
        Tone::Note,
        format!(
            "Copied the schema of {database} ({} objects, {} migration-history rows) into a local PostgreSQL {} server; read in {}, no lock on its tables held longer than {} (one statement)",
            c.objects,
            c.history_rows,
            c.server_major,
            format_duration(Duration::from_millis(c.read_ms)),
            format_duration(Duration::from_millis(c.lock_hold_ms))
        ),
    )];
    lines.extend(c.not_copied.iter().map(|n| Line::new(Tone::Warn, format!("not copied: {} ({})", n.what, n.error))));
    lines
}

fn verdict_line((verdict, why): &(PlanVerdict, Vec<String>), db: &ResolvedDatabase, budget: Duration) -> String {
    match verdict {
        PlanVerdict::WouldBlock => format!(
            "{}: the site's queries would queue behind it for longer than the {} budget; under migrate-guard it would be cut and the deploy fail. Use the form named above, or run it in a maintenance window (heroku maintenance:window).{}",
            bold().apply_to("A statement would hold a lock the site queues behind"),
            format_duration(budget),
            if why.is_empty() { String::new() } else { format!(" Also: {}.", why.join("; ")) }
        ),
        PlanVerdict::Clear => {
            format!("✓ Nothing on {} holds a conflicting lock on these relations right now.", db.describe())
        }
        PlanVerdict::WouldWait => format!(
            "{} on {}: wait for them to end, or see what else waits with pg-blockers {}",
            bold().apply_to("The migration would wait now"),
            db.describe(),
            db.selector_args()
        ),
        PlanVerdict::CannotVouch => format!("Could not vouch for the plan: {}.", why.join("; ")),
        PlanVerdict::WouldBreak => format!(
            "{}: for the release phase and until the restart, the release serving traffic sends queries that fail on the migrated schema. Split the migration (expand now, contract in the next deploy).",
            bold().apply_to("The migration would break the running release")
        ),
    }
}

/// How busy a table the migration locks against writes is: what queues behind it.
fn activity_line(a: &TableActivity, planned: LockMode) -> String {
    format!(
        "   {}: about {:.0} scans and {:.0} row writes a minute (averaged over {}) would queue behind its {} while it waits and while it is held",
        a.relation,
        a.scans_per_min,
        a.row_writes_per_min,
        format_duration(Duration::from_secs_f64(a.over_secs)),
        planned.name()
    )
}

fn plan_lines(
    plan: &LockPlan,
    obstacles: &[Obstacle],
    older: &[i32],
    activity: &[TableActivity],
    budget: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    for s in &plan.statements {
        out.extend(statement_lines(s, budget));
    }
    let strongest = plan.strongest();
    for a in activity {
        match strongest.get(&a.relation) {
            Some(m) if m.conflicts_with(LockMode::RowExclusiveLock) => out.push(activity_line(a, *m)),
            _ => {}
        }
    }
    for o in obstacles {
        let age = o.xact_age_secs.map(|a| cli_kit::format_duration(std::time::Duration::from_secs_f64(a)));
        out.push(format!(
            "  {} pid {} ({}) {} {} on {}{}: the migration's {} would wait, and {} would queue behind it",
            red().apply_to("✗"),
            o.pid,
            cli_kit::printable(o.application_name.as_deref().unwrap_or("?")),
            if o.granted { "holds" } else { "waits for" },
            o.mode.name(),
            o.relation,
            age.map(|a| format!(" (its transaction open {a})")).unwrap_or_default(),
            o.planned.name(),
            o.planned.queues()
        ));
    }
    if !older.is_empty() {
        out.push(format!(
            "  {} a CONCURRENTLY statement waits for every transaction open when it starts: {} open now (pids {})",
            yellow().apply_to("!"),
            older.len(),
            older.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

fn statement_lines(s: &PlannedStatement, budget: Duration) -> Vec<String> {
    let mut out = vec![format!(
        "{}. {}{}",
        s.seq,
        s.tag,
        s.object.as_deref().map(|o| format!(" {}", cli_kit::printable(o))).unwrap_or_default()
    )];
    for l in &s.locks {
        let held = if l.new { "" } else { " (held since an earlier statement)" };
        out.push(format!("   {} on {} ({}){held}", l.mode.name(), l.relation, l.kind));
    }
    for r in &s.rewrites {
        out.push(format!("   rewrites {r}: every row is copied while the lock is held"));
    }
    if s.waits_for_older_transactions {
        out.push("   waits for every transaction older than it before it finishes".to_string());
    }
    out.extend(s.estimate.as_ref().map(|e| estimate_lines(s, e, budget)).unwrap_or_default());
    out
}

/// `holds AccessExclusiveLock on public.events ≈ 48s (24s–1m 36s): 4,000,000 rows, 610 MB — measured …`,
/// then — when it is held for a tenth of the budget or more — what queues behind it and the
/// safe form.
fn estimate_lines(s: &PlannedStatement, e: &pg_locks::lockplan::Estimate, budget: Duration) -> Vec<String> {
    let ms = |m: u64| format_duration(Duration::from_millis(m));
    let strongest = s.locks.iter().filter(|l| l.new).max_by_key(|l| (l.mode, l.kind == "table"));
    let what = strongest.map(|l| format!("{} on {}", l.mode.name(), l.relation)).unwrap_or_else(|| "its locks".into());
    let size = match (e.rows, e.bytes) {
        (Some(r), Some(b)) => {
            format!(": {} rows, {} on production", cli_kit::units::thousands(r), cli_kit::units::bytes(b))
        }
        _ => String::new(),
    };
    let mut out = vec![match (e.hold_ms, e.low_ms, e.high_ms) {
        (Some(h), Some(lo), Some(hi)) => {
            format!("   holds {what} ≈ {} ({}–{}){size} — {}", ms(h), ms(lo), ms(hi), e.basis)
        }
        _ => format!("   how long it holds {what} is not known{size} — {}", e.basis),
    }];
    if let Some(n) = e.rows_changed {
        out.push(format!("   changes about {} rows on production", cli_kit::units::thousands(n)));
    }
    if e.longer_than_a_release_phase {
        out.push(format!(
            "   {} it cannot finish in a release phase: the platform stops the release dyno after {} and the release fails. Run it in batches outside the release phase (a one-off: heroku migrate:restart)",
            red().apply_to("✗"),
            format_duration(migration_plan::estimate::RELEASE_PHASE_LIMIT)
        ));
    }
    if let Some(b) = e.blocks.as_ref().filter(|b| b.queued > 0 && Duration::from_millis(b.for_ms * 10) >= budget) {
        out.push(format!(
            "   {} queue behind its {} on {} for {} (until its transaction ends): about {} queries",
            b.queues,
            b.mode.name(),
            b.relation,
            ms(b.for_ms),
            cli_kit::units::thousands(b.queued)
        ));
        if let Some(f) = &e.safe_form {
            out.push(format!("   the form that does not: {f}"));
        }
    }
    out
}

/// The fetch's progress line: `PostgreSQL 17.10.0-beta.17: 12.3 of 40.1 MB`.
pub(crate) fn fetch_progress(f: &migration_plan::scratch::Fetching) -> String {
    let mb = |b: u64| format!("{:.1}", b as f64 / 1_000_000.0);
    match f.total {
        Some(total) => format!("PostgreSQL {}: {} of {} MB", f.version, mb(f.received), mb(total)),
        None => format!("PostgreSQL {}: {} MB", f.version, mb(f.received)),
    }
}

/// Why the plan cannot vouch for the running release when production's queries were only
/// sampled: what the migration changed, and why `pg_stat_statements` was not read.
pub(crate) fn only_sampled(narrowed: &[String], why: &str, window: Duration) -> String {
    let shown: Vec<&str> = narrowed.iter().take(3).map(String::as_str).collect();
    let more = if narrowed.len() > 3 { format!(" and {} more", narrowed.len() - 3) } else { String::new() };
    format!(
        "the migration changes what the running release may rely on ({}{more}), and production's queries were only sampled for {} (a query that did not run then was not checked): {why}",
        shown.join("; "),
        format_duration(window)
    )
}

/// What the running release would break: one line per query, or what was checked.
fn break_lines(plan: &LockPlan, breaks: &[super::Break], checked: &migration_plan::breaks::Checked) -> Vec<Line> {
    let mut out = Vec::new();
    match (&checked.unchecked, checked.sampled_for) {
        (Some(why), None) => {
            return one(
                Tone::Warn,
                format!("production's own queries were not checked against the migrated schema: {why}"),
            );
        }
        (Some(why), Some(window)) => {
            out.push(Line::new(Tone::Warn, format!("production's own queries could not be read: {why}")));
            out.push(Line::new(
                Tone::Warn,
                format!(
                    "  instead, {} statements seen in {} of pg_stat_activity were prepared on the migrated schema (weaker: what did not run then was not checked).",
                    checked.statements,
                    format_duration(window)
                ),
            ));
        }
        (None, _) if breaks.is_empty() => {
            return one(
                Tone::Say,
                format!(
                    "{} of production's busiest statements prepare on the migrated schema as they did before.",
                    checked.statements
                ),
            );
        }
        (None, _) => {}
    }
    out.extend(breaks.iter().flat_map(|b| {
        // A sampled query's count is how many looks saw a session running it.
        let how_often = match checked.sampled_for {
            Some(_) => format!("seen in {} looks", b.calls),
            None => format!("{} calls", b.calls),
        };
        let by = b
            .statement_seq
            .and_then(|seq| plan.statements.iter().find(|s| s.seq == seq))
            .map(|s| format!("{} ({})", s.tag, s.object.as_deref().unwrap_or("statement")))
            .unwrap_or_else(|| "The migration".to_string());
        vec![
            Line::new(Tone::Bad, format!("{by} breaks `{}` — {how_often} — {}", cli_kit::printable(&b.query), b.error)),
            Line::new(Tone::Say, format!("  in two deploys: {}", b.two_step)),
        ]
    }));
    out
}

/// How long old code meets the migrated schema on this app.
fn window_lines(w: &super::RunningRelease) -> Vec<Line> {
    let current = w.current_release.map(|v| format!("v{v}")).unwrap_or_else(|| "the current release".into());
    let after = match w.preboot {
        Some(true) => format!(
            "then about {} more while preboot keeps its dynos serving (the boot timeout plus about 2 minutes)",
            format_duration(std::time::Duration::from_secs(w.restart_secs))
        ),
        Some(false) => format!(
            "then until its dynos have restarted onto the new release (up to {}, the boot timeout; preboot is off, so requests fail meanwhile)",
            format_duration(std::time::Duration::from_secs(w.restart_secs))
        ),
        None => "then until the formation has restarted (whether preboot is on could not be read)".to_string(),
    };
    let mut lines = one(
        Tone::Say,
        format!("Old code meets the migrated schema: {current} serves traffic for the whole release phase, {after}."),
    );
    if !w.booted_before_current_release.is_empty() {
        lines.push(Line::new(
            Tone::Warn,
            format!(
                "{} booted before {current} and still run ({}): they may cache an older schema still (migrate-restart check)",
                cli_kit::output::count(w.booted_before_current_release.len(), "dyno"),
                w.booted_before_current_release.join(", ")
            ),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use pg_locks::lockplan::{Blocks, Estimate, PlannedLock};

    fn backfill(hold_ms: u64) -> (PlannedStatement, Estimate) {
        let statement = PlannedStatement {
            seq: 2,
            tag: "UPDATE".into(),
            object: Some("public.events".into()),
            query: "UPDATE events SET kind = 'click'".into(),
            transaction: 9,
            locks: vec![PlannedLock {
                relation: "public.events".into(),
                kind: "table".into(),
                mode: LockMode::RowExclusiveLock,
                new: true,
                created: false,
            }],
            rewrites: vec![],
            waits_for_older_transactions: false,
            rows: Some(100_000),
            ran_us: None,
            blocks_read: None,
            estimate: None,
        };
        let estimate = Estimate {
            hold_ms: Some(hold_ms),
            low_ms: Some(hold_ms / 2),
            high_ms: Some(hold_ms * 2),
            basis: "measured 40s on a 100,000-row sample shaped like production's, scaled linearly to 12,000,000 rows"
                .into(),
            table: Some("public.events".into()),
            rows: Some(12_000_000),
            bytes: Some(4 << 30),
            blocks: Some(Blocks {
                relation: "public.events".into(),
                mode: LockMode::RowExclusiveLock,
                queues: "writes to the rows it changes".into(),
                for_ms: hold_ms,
                queued: 9_000,
            }),
            safe_form: pg_locks::safe_form("UPDATE events SET kind = 'click'").map(str::to_string),
            rows_changed: Some(12_000_000),
            longer_than_a_release_phase: hold_ms > migration_plan::estimate::RELEASE_PHASE_LIMIT.as_millis() as u64,
        };
        (statement, estimate)
    }

    /// A backfill: the rows it changes, the writes that queue behind their row locks, the
    /// batched form — and past the release phase's hour, that it cannot finish there.
    #[test]
    fn a_backfill_says_its_rows_and_whether_it_can_finish_in_a_release_phase() {
        let (s, e) = backfill(4_800_000);
        let lines = estimate_lines(&s, &e, Duration::from_secs(5)).join("\n");
        assert!(lines.contains("holds RowExclusiveLock on public.events ≈ 1h 20m"), "{lines}");
        assert!(lines.contains("changes about 12,000,000 rows on production"), "{lines}");
        assert!(
            lines.contains("✗ it cannot finish in a release phase: the platform stops the release dyno after 1h"),
            "{lines}"
        );
        assert!(
            lines.contains("writes to the rows it changes queue behind its RowExclusiveLock on public.events"),
            "{lines}"
        );
        assert!(lines.contains("the form that does not: the same change in batches"), "{lines}");
        let (s, e) = backfill(90_000);
        let lines = estimate_lines(&s, &e, Duration::from_secs(5)).join("\n");
        assert!(!lines.contains("cannot finish"), "{lines}");
    }
}
