//! pg-blockers: read the lock graph, show it, and apply the smallest fix with verification.

mod cli;
pub mod render;
pub mod report;

use std::time::Duration;

use anyhow::Context;
use cli_kit::output::dim;
use cli_kit::{api_client, confirm_destructive, resolve_database, usage, Exit, Output, ResolvedDatabase};
use pg_locks::{act, recommend, validate_targets, ActOptions, ActReport, Forest, Recommendation, Signal, Snapshot};

pub use cli::Args;

const TOOL: &str = "pg-blockers";

/// Runs the command; returns the exit code the contract prescribes.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    if args.escalate && args.cancel.is_empty() && !args.cancel_roots {
        return Err(usage("--escalate only applies to --cancel PID or --cancel-roots"));
    }
    let db = resolve_database(args.database.as_deref(), &args.db, &args.app, || {
        api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)
    })?;
    out.debug(format!("connecting to {}", db.describe()));
    let mut client = pg_locks::connect(&db.connect_options(TOOL))?;
    out.debug("SQL: lock snapshot (pg_stat_activity, pg_locks, pg_blocking_pids) in one query");

    if let Some(interval) = args.watch {
        return watch(&args, &out, &db, &mut client, interval);
    }
    let acting = !args.cancel.is_empty() || !args.terminate.is_empty() || args.cancel_roots;
    if acting {
        // A --confirm that names another target is a refusal whether or not there is work.
        args.confirm.check(db.confirm_name())?;
    }
    let snap = Snapshot::take(&mut client)?;
    if acting {
        return apply(&args, &out, &db, &mut client, snap);
    }
    let (forest, recs) = analyse(&snap, args.min_wait);
    // A follower: name the app's database that most likely leads it (one more API call, only then).
    let leader = if snap.in_recovery { leader_of(&db, &out) } else { None };
    if out.is_json() {
        let mut r = report::blockers_report(&db, &snap, &forest, &recs);
        r.leader = leader;
        out.report(&r);
    } else {
        for line in render::human(&db, &snap, &forest, &recs) {
            out.say(line);
        }
        if let (Some(var), Some(app)) = (&leader, db.app()) {
            out.show(&render::Acting::Leader { var, app });
        }
    }
    Ok(match (args.exit_status, snap.in_recovery, forest.is_empty()) {
        (true, _, false) => Exit::BlockingFound,
        // A follower cannot vouch that nothing blocks: the leader's waits are not seen here.
        (true, true, true) => Exit::NotVerified,
        _ => Exit::Success,
    })
}

/// For a follower attached to an app: the app's config var most likely holding its leader —
/// DATABASE_URL (the app's primary) when it is another URL, else another Heroku Postgres URL.
fn leader_of(db: &ResolvedDatabase, out: &Output) -> Option<String> {
    let cli_kit::DatabaseSource::App { app, config_var, .. } = &db.source else { return None };
    let vars = api_client(TOOL, env!("CARGO_PKG_VERSION"), out).ok()?.config_vars(app).ok()?;
    let other = |k: &str| k != config_var && vars.get(k).is_some_and(|v| *v != db.url);
    if other("DATABASE_URL") {
        return Some("DATABASE_URL".into());
    }
    vars.keys().find(|k| k.starts_with("HEROKU_POSTGRESQL_") && k.ends_with("_URL") && other(k)).cloned()
}

/// The one analysis of a snapshot, for a single report and each `--watch` redraw alike: the
/// forest (trees where someone waited at least `min_wait`) and, when something is blocked,
/// the recommended fix and its alternative.
pub fn analyse(
    snap: &Snapshot,
    min_wait: Option<Duration>,
) -> (Forest, (Option<Recommendation>, Option<Recommendation>)) {
    let forest = Forest::build(snap).with_min_wait(snap, min_wait);
    let recs = if forest.is_empty() { (None, None) } else { recommend(snap) };
    (forest, recs)
}

fn watch(
    args: &Args,
    out: &Output,
    db: &ResolvedDatabase,
    client: &mut pg_locks::Conn,
    interval: Duration,
) -> anyhow::Result<Exit> {
    loop {
        let snap = Snapshot::take(client)?;
        let (forest, recs) = analyse(&snap, args.min_wait);
        if out.is_json() {
            // One compact document per line (NDJSON), so a pipe can read each snapshot.
            out.json_line(&serde_json::to_value(report::blockers_report(db, &snap, &forest, &recs))?);
        } else {
            let mut lines = render::human(db, &snap, &forest, &recs);
            let stamp =
                dim().apply_to(format!("every {} — Ctrl-C to stop", cli_kit::format_duration(interval))).to_string();
            if out.can_animate() {
                // Redraw in place: home, clear, then the report.
                lines.insert(0, stamp);
                out.redraw(&lines.join("\n"));
            } else {
                out.say(format!("--- {stamp}"));
                for l in lines {
                    out.say(l);
                }
            }
        }
        if out.stdout_closed() {
            // The reader is gone (`--watch | head`): a read-only watch ends quietly.
            return Ok(Exit::Success);
        }
        std::thread::sleep(interval);
    }
}

/// What signalling `s` costs: a cancel's cost is the statement's; a terminate ends the
/// session itself.
fn signal_cost(signal: Signal, s: &pg_locks::Session) -> String {
    match signal {
        Signal::Cancel => pg_locks::cost(s).to_string(),
        Signal::Terminate => format!(
            "the session ends: its open transaction rolls back and its client loses the connection (and must reconnect){}",
            if s.has(pg_locks::Label::Backup) { "; the backup fails and can be taken again later" } else { "" }
        ),
    }
}

fn apply(
    args: &Args,
    out: &Output,
    db: &ResolvedDatabase,
    client: &mut pg_locks::Conn,
    snap: Snapshot,
) -> anyhow::Result<Exit> {
    let (signal, pids) = if !args.terminate.is_empty() {
        (Signal::Terminate, args.terminate.clone())
    } else if args.cancel_roots {
        let forest = Forest::build(&snap);
        let roots: Vec<i32> = forest
            .roots
            .iter()
            .map(|r| r.pid)
            .filter(|p| snap.get(*p).is_some_and(|s| pg_locks::refusal(s).is_none()))
            .collect();
        if roots.is_empty() {
            out.show(&render::Acting::NothingToCancel { database: db.describe() });
            out.report(&report::ActionReport {
                schema_version: cli_kit::SCHEMA_VERSION,
                database: db.describe(),
                blocked_before: forest.blocked_total,
                action: None,
            });
            return Ok(Exit::Success);
        }
        (Signal::Cancel, roots)
    } else {
        (Signal::Cancel, args.cancel.clone())
    };
    validate_targets(&snap, &pids)?;
    let forest = Forest::build(&snap);
    let graph = pg_locks::Graph::of(&snap);
    let targets = pids
        .iter()
        .map(|pid| {
            let s = snap.get(*pid).expect("validated");
            (s, graph.downstream(*pid).len(), signal_cost(signal, s))
        })
        .collect();
    out.show(&render::Acting::Will { signal, database: db.describe(), targets });
    confirm_destructive(
        out,
        db.confirm_name(),
        args.confirm.answer(),
        &format!("{} {} session(s)?", signal.word(), pids.len()),
    )?;
    let opts = ActOptions { grace: args.grace, escalate: args.escalate };
    let report = act(client, &snap, &pids, signal, opts).context("signalling")?;
    report_action(out, db, &report, &forest, args.grace);
    Ok(if report.outcomes.iter().all(|o| o.took) { Exit::Success } else { Exit::NotVerified })
}

fn report_action(out: &Output, db: &ResolvedDatabase, report: &ActReport, before: &Forest, grace: Duration) {
    out.show(&render::Acting::Done { report, grace });
    out.report(&report::ActionReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        database: db.describe(),
        blocked_before: before.blocked_total,
        action: Some(report.clone()),
    });
}
