//! migrate-restart: preflight, the migration on a one-off dyno with lock safety and retries,
//! then restart and verification; `check` for dynos that predate the schema.

mod attempt;
mod check;
mod cli;
mod deploy_step;
mod follow;
mod pending;
pub mod procfile;
mod record;
mod release;
pub mod report;
mod restart;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use cli_kit::output::{bold, red};
use cli_kit::{
    api_client, confirm_destructive, fail, format_duration, interrupt, refused, usage, Exit, Output, Poll,
    ResolvedDatabase,
};
use heroku_api::{Client, Dyno};
use migration_policy::{debris, preflight, Policy, Step};
use pg_locks::Snapshot;

pub use cli::{Args, CheckArgs, FollowArgs, ReleaseArgs, RunArgs, Sub};
pub use migration_policy::{is_lock_timeout, pgoptions};

use attempt::{Attempt, Ending, Spec};
use report::{AttemptReport, MigrateReport, Outcome, Preflight};
use restart::Plan;

const TOOL: &str = "migrate-restart";

/// `lock_timeout 5s via PGOPTIONS, enforced from outside at 5.5s`: how the timeout is applied.
fn timeout_in_force(lock_timeout: Duration, outside: Option<Duration>) -> String {
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

/// Waits `pause` unless interrupted; false when interrupted.
fn interruptible_pause(pause: Duration) -> bool {
    let mut p = Poll::with_pauses(pause, Duration::from_millis(100), Duration::from_millis(100));
    while p.wait_next() {
        if interrupt::requested() {
            return false;
        }
    }
    !interrupt::requested()
}

/// Runs `migrate-restart` or `migrate-restart check`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.check {
        Some(Sub::Check(c)) => check::run(c),
        Some(Sub::Follow(f)) => follow_cmd(f),
        Some(Sub::Release(r)) => release::run(r),
        None => migrate(args.run),
    }
}

fn migrate(args: RunArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    interrupt::install();
    interrupt::install_hangup();
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let command = procfile::command(args.command.as_deref(), &cwd)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;

    let (formation, before, vars, platform) = read_app(&client, &app, &args.db)?;
    out.debug(format!("{app} runs on {platform}"));
    if args.attach && platform.is_fir() {
        return Err(refused(format!(
            "--attach: {app} is on {platform}, where a one-off dyno is reached over SSH, not the rendezvous; run without --attach (detached, followed through the app's log, the default); nothing was started"
        )));
    }
    let plan = Plan::parse(&args.restart, &formation)?;
    let db = cli_kit::database::from_flag_or_app(&args.db, &app, &vars)?;

    let preflight = if args.no_preflight {
        Preflight::Skipped { skipped: true }
    } else {
        run_preflight(&args, &out, &app, db.as_ref())?
    };
    let report = MigrateReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.clone(),
        platform: platform.clone(),
        command: command.clone(),
        preflight,
        attempts: Vec::new(),
        result: Outcome::Unknown,
        restart: None,
    };

    // Skipping the check before the start never removes the guard during the run: only
    // --no-lock-watch does, and says so.
    let watch_owned = if args.no_lock_watch { None } else { watch_database(&out, &app, db.as_ref(), &vars) };
    let watch_db = watch_owned.as_ref();
    let outside_budget = watch_db.map(|_| args.lock_timeout + migration_policy::OUTSIDE_SLACK);
    out.say(format!(
        "Will run `{command}` on a one-off dyno of {app}{} ({}{}, up to {} retries after a lock timeout), then {}.",
        match (platform.is_fir(), platform.is_cnb()) {
            (_, true) => format!(" ({platform}: through `launcher`, which sets up the app's runtime)"),
            (true, false) => format!(" ({platform})"),
            _ => String::new(),
        },
        timeout_in_force(args.lock_timeout, outside_budget),
        args.statement_timeout.map(|s| format!(", statement_timeout {}", format_duration(s))).unwrap_or_default(),
        args.retries,
        plan.describe()
    ));
    confirm_destructive(&out, &app, args.confirm.answer(), &format!("Run the migration on {app} and restart?"))?;

    // A detached dyno outlives this process: record it and say how to pick it up, first thing.
    let started = |dyno: &heroku_api::Dyno| {
        if args.attach {
            return;
        }
        if let Err(e) = pending::save(&pending::Pending::new(&app, dyno, &command, &args.restart, &before)) {
            out.warn(format!("could not record the run on this machine ({e}); the command below still works"));
        }
        out.note(format!(
            "If this terminal or connection goes away, pick it up from any machine with:\n  {}",
            pending::follow_command(&app, &dyno.name, &args.restart)
        ));
    };
    let mut spec = Spec {
        app: &app,
        command: &command,
        size: args.size.clone(),
        lock_timeout: args.lock_timeout,
        statement_timeout: args.statement_timeout,
        outside_budget,
        pgoptions: true,
        timeout: args.timeout,
        watch: watch_db,
        attach: args.attach,
        started: &started,
        platform: &platform,
    };
    // What is in the database before the first attempt: a failed attempt's debris is what is new.
    let baseline = watch_db.and_then(|db| match debris::Baseline::read(&db.connect_options(TOOL)) {
        Ok(b) => Some(b),
        Err(e) => {
            out.warn(format!("could not read indexes and migration versions before starting ({e}); retries will not check what a failed attempt left"));
            None
        }
    });
    let policy = Policy { retries: args.retries, retry_for: None, watched: spec.outside_budget.is_some() };
    let run_started = std::time::Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    loop {
        match attempt::run(&client, &out, &spec) {
            Ok(a) => attempts.push(a),
            // `--json` ends with a document even so, the dyno it created (and stopped) recorded.
            Err(e) => {
                attempts.extend(attempt::abandoned(&e, &spec));
                finish(&out, report, &attempts, &args.restart, Outcome::Failed, Exit::Failed);
                return Err(e);
            }
        }
        let tries: Vec<_> = attempts.iter().map(|a| a.tried(run_started.elapsed())).collect();
        let step = migration_policy::next_step(&tries, &policy, migration_policy::policy::jitter_seed());
        match step {
            Step::Done => break,
            Step::OutOfRetries { .. } | Step::OutOfTime { .. } => break,
            Step::PoolerRefusedUnwatched => {
                out.warn(pooler_refusal(&app, db.as_ref(), &vars));
                out.bad("no database is watched (--no-lock-watch, or no database known), so nothing would bound the migration's lock waits without PGOPTIONS: not retrying");
                return Ok(finish(&out, report, &attempts, &args.restart, Outcome::Failed, Exit::Failed));
            }
            Step::RetryWithoutPgoptions => {
                out.warn(pooler_refusal(&app, db.as_ref(), &vars));
                out.warn(format!(
                    "retrying once without PGOPTIONS; the lock-wait budget is enforced from outside at {}",
                    format_duration(spec.outside_budget.unwrap_or_default())
                ));
                spec.pgoptions = false;
                continue;
            }
            Step::Retry { n, pause, ceiling } => {
                if let (Some(db), Some(baseline)) = (watch_db, &baseline) {
                    let last = attempts.last_mut().expect("just pushed");
                    if !check_left_behind(&out, &app, db, baseline, args.drop_invalid_indexes, last) {
                        return Ok(finish(&out, report, &attempts, &args.restart, Outcome::Failed, Exit::Failed));
                    }
                }
                let why = if attempts.last().is_some_and(|a| a.outside_budget.iter().any(|e| e.verified)) {
                    "lock-wait budget: the migration's statement was cancelled after waiting past the budget"
                } else {
                    "lock timeout: the migration gave up waiting for a lock"
                };
                out.warn(format!(
                    "{why} (attempt {n} of {}); retrying in {} (backoff up to {}, with jitter)",
                    args.retries + 1,
                    format_duration(pause),
                    format_duration(ceiling)
                ));
                if !interruptible_pause(pause) {
                    out.warn("interrupted between attempts; nothing is running");
                    return Ok(finish(&out, report, &attempts, &args.restart, Outcome::Interrupted, Exit::Interrupted));
                }
            }
        }
    }

    let ctx = Aftermath {
        client: &client,
        out: &out,
        app: &app,
        command: &command,
        plan: &plan,
        restart_arg: &args.restart,
        formation: &formation,
        before: &before,
        restart_timeout: args.restart_timeout,
        timeout: args.timeout,
        db: db.as_ref(),
        current: None,
    };
    conclude(&ctx, report, &attempts)
}

/// The database the lock watch (and the outside budget) reads: the run's own, except when it
/// goes through a connection pooler and the app has a direct URL beside it. Through the pooler
/// the watch would wait in the pooler's queue behind the site's own queries exactly when the
/// pool is full of queries stuck behind the migration — when the budget has to act.
fn watch_database(
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
fn pooler_refusal(app: &str, db: Option<&ResolvedDatabase>, vars: &BTreeMap<String, String>) -> String {
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
fn check_left_behind(
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

/// What a run reads of the app before it starts: formation, dynos, config vars.
type AppState = (Vec<heroku_api::Formation>, Vec<Dyno>, BTreeMap<String, String>, heroku_api::Platform);

/// The independent reads a run and `follow` start with, at once: the formation (to check
/// `--restart`), the dynos (boot times before the migration) and the config vars (the
/// database; not read when `--database-url` names it).
fn read_app(client: &Client, app: &str, db: &cli_kit::DatabaseArgs) -> anyhow::Result<AppState> {
    let (formation, dynos, vars, info) = std::thread::scope(|s| {
        let f = s.spawn(|| client.formation(app));
        let v = s.spawn(|| if db.database_url.is_some() { Ok(BTreeMap::new()) } else { client.config_vars(app) });
        let i = s.spawn(|| client.app_info(app));
        let d = client.dynos(app);
        (cli_kit::join(f), d, cli_kit::join(v), cli_kit::join(i))
    });
    Ok((formation?, dynos?, vars?, info?.platform()))
}

/// What concluding a run needs: how to restart and verify, and how to clean up.
struct Aftermath<'a> {
    client: &'a Client,
    out: &'a Output,
    app: &'a str,
    command: &'a str,
    plan: &'a Plan,
    restart_arg: &'a str,
    formation: &'a [heroku_api::Formation],
    before: &'a [Dyno],
    restart_timeout: Duration,
    timeout: Duration,
    db: Option<&'a ResolvedDatabase>,
    /// The dyno list as it is now, when the run may have ended (and been restarted after)
    /// before this process saw it: `follow` restarts only what booted before the run ended.
    current: Option<&'a [Dyno]>,
}

/// Acts on how the last attempt ended — restart and verify after success, say what failed,
/// clean up after an interrupt or a timeout, say how to follow a run whose end was not seen —
/// and records the outcome. Shared by a run and by `follow`.
fn conclude(ctx: &Aftermath, mut report: MigrateReport, attempts: &[Attempt]) -> anyhow::Result<Exit> {
    let Aftermath { client, out, app, command, plan, formation, before, db, .. } = *ctx;
    let (client, out) = (client, out);
    let last = attempts.last().expect("at least one attempt");
    if !matches!(last.ending, Ending::Lost(_)) {
        pending::remove(app);
    }
    let exit = match &last.ending {
        Ending::Exited(0) => {
            out.ok(format!("migration finished on {} in {}", last.dyno.name, format_duration(last.duration)));
            if let Err(e) = record::save(app, last.finished_at, command) {
                out.warn(format!("could not record the migration time locally: {e}"));
            }
            let request = restart::Request {
                plan,
                formation,
                before,
                migrated_at: last.finished_at,
                limit: ctx.restart_timeout,
                current: ctx.current,
            };
            let restarted = restart::restart_and_verify(client, out, app, &request)?;
            let exit = if restarted.verified { Exit::Success } else { Exit::NotVerified };
            report.restart = Some(restarted);
            (Outcome::Succeeded, exit)
        }
        Ending::Disagreed { marker, platform } => {
            out.bad(format!(
                "{}'s exit status is contradictory: the command's marker says {marker}, the platform says {platform}; treating the migration as failed. Nothing was restarted.",
                last.dyno.name
            ));
            show_tail(out, last);
            (Outcome::Failed, Exit::Failed)
        }
        Ending::Exited(code) => {
            out.bad(format!("the migration exited with status {code} on {}; nothing was restarted", last.dyno.name));
            if last.lock_timeout {
                out.say(format!(
                    "It timed out waiting for a lock {} times; see what holds it: pg-blockers -a {app}",
                    attempts.len()
                ));
            }
            show_tail(out, last);
            (Outcome::Failed, Exit::Failed)
        }
        Ending::Interrupted => {
            cleanup(client, out, app, &last.dyno, db);
            (Outcome::Interrupted, Exit::Interrupted)
        }
        Ending::TimedOut => {
            out.bad(format!("the migration ran longer than --timeout {}; stopping it", format_duration(ctx.timeout)));
            cleanup(client, out, app, &last.dyno, db);
            (Outcome::TimedOut, Exit::Failed)
        }
        Ending::Lost(why) => {
            let state = client
                .dyno_info(app, &last.dyno.id)
                .map(|d| d.state)
                .unwrap_or_else(|_| "gone (no longer listed)".into());
            if last.dyno.attach_url.is_some() {
                // Attached: the output never reached the log, and the dyno ends with the connection.
                out.bad(format!(
                    "lost the connection to {} ({why}); its state is {state}. The migration may still be running or may have finished: \
                     see `heroku logs -a {app} --dyno {}` and check with `migrate-restart check -a {app}`. Nothing was restarted.",
                    last.dyno.name, last.dyno.name
                ));
            } else {
                out.bad(format!(
                    "stopped following {} ({why}); its state is {state}. The migration may still be running or may have finished. Nothing was restarted.",
                    last.dyno.name
                ));
                out.say(format!(
                    "Pick it up from any machine: {}",
                    pending::follow_command(app, &last.dyno.name, ctx.restart_arg)
                ));
            }
            (Outcome::Unknown, Exit::NotVerified)
        }
    };
    Ok(finish(out, report, attempts, ctx.restart_arg, exit.0, exit.1))
}

fn show_tail(out: &Output, last: &Attempt) {
    out.say(format!("Last {} lines of output:", last.tail.len()));
    for l in &last.tail {
        out.say(format!("  {l}"));
    }
}

/// `migrate-restart follow`: picks up a detached migration — this machine's record of it, or
/// the dyno and `--restart` given — and concludes it as the run that started it would have.
fn follow_cmd(args: FollowArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    interrupt::install();
    interrupt::install_hangup();
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let record = pending::load(&app).filter(|p| args.dyno.as_ref().is_none_or(|d| *d == p.dyno));
    let Some(dyno_name) = args.dyno.clone().or_else(|| record.as_ref().map(|p| p.dyno.clone())) else {
        return Err(usage(format!(
            "this machine has no migration of {app} to follow: name its dyno, e.g. migrate-restart follow -a {app} run.1234 --restart all"
        )));
    };
    let Some(restart_arg) = args.restart.clone().or_else(|| record.as_ref().map(|p| p.restart.clone())) else {
        return Err(usage(format!(
            "this machine has no record of {dyno_name}'s run: say what to restart after it with --restart all|TYPE,…|none"
        )));
    };
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let (formation, now_dynos, vars, platform) = read_app(&client, &app, &args.db)?;
    out.debug(format!("{app} runs on {platform}"));
    let plan = Plan::parse(&restart_arg, &formation)?;
    let db = cli_kit::database::from_flag_or_app(&args.db, &app, &vars)?;
    // The dyno may have ended already: its output and exit line are still in the log.
    let listed = now_dynos.iter().find(|d| d.name == dyno_name).cloned();
    let gone = listed.is_none();
    let dyno = listed.unwrap_or_else(|| Dyno {
        id: record.as_ref().map(|p| p.dyno_id.clone()).unwrap_or_default(),
        name: dyno_name.clone(),
        // `run.1234` on Cedar, `run-…` on Fir.
        process_type: dyno_name.split(['.', '-']).next().unwrap_or("run").to_string(),
        state: "gone".into(),
        command: record.as_ref().map(|p| p.command.clone()).unwrap_or_default(),
        size: None,
        created_at: String::new(),
        updated_at: String::new(),
        attach_url: None,
        release: None,
    });
    if !dyno.is_one_off() {
        return Err(usage(format!("{dyno_name} is a {} dyno, not a one-off migration", dyno.process_type)));
    }
    let before = record.as_ref().map(|p| p.before.clone()).unwrap_or_else(|| now_dynos.clone());
    let command = record.as_ref().map(|p| p.command.clone()).unwrap_or_else(|| dyno.command.clone());
    out.say(format!("Will follow {dyno_name} of {app} to its end, then {}.", plan.describe()));
    confirm_destructive(
        &out,
        &app,
        args.confirm.answer(),
        &format!("Follow {dyno_name} and restart {app} when it succeeds?"),
    )?;
    let started = std::time::Instant::now();
    let gone_grace = gone.then_some(Duration::from_secs(10));
    if gone && platform.is_fir() {
        // Nothing to read: a Fir log session starts when it is created.
        out.bad(format!(
            "{dyno_name} has ended, and {app} is on {platform}, whose log sessions carry no history: its output and exit status cannot be read back. Nothing was restarted; see whether the migration applied with `migrate-restart check -a {app}`."
        ));
        return Ok(Exit::NotVerified);
    }
    if gone && record.is_none() && !follow::history_mentions(&client, &app, &dyno_name, started + NEVER_HEARD_OF)? {
        return Err(never_heard_of(&app, &dyno_name));
    }
    let source = follow::Source { opened: None, history: !platform.is_fir(), on_line: None };
    let followed = follow::follow(&client, &out, &app, &dyno_name, started + args.timeout, gone_grace, source)?;
    // Not listed, not recorded here, and not one line of it in the log's history: the platform
    // has never heard of this dyno (a typo), which is not "it may still be running".
    if gone && record.is_none() && followed.ran.0.is_none() && matches!(followed.ending, Ending::Lost(_)) {
        return Err(never_heard_of(&app, &dyno_name));
    }
    // Timed by what the platform's log measured — its first line and its exit line — not by
    // how long this follow took (a run that ended before it took milliseconds to read).
    let (duration, finished_at) = match followed.ran {
        (Some(from), Some(to)) => (to.duration_since(from).unwrap_or_default(), to),
        (_, Some(to)) => (started.elapsed(), to),
        _ => (started.elapsed(), std::time::SystemTime::now()),
    };
    let attempt = Attempt {
        dyno,
        ending: followed.ending,
        tail: followed.tail,
        lock_timeout: followed.lock_timeout,
        outside_budget: Vec::new(),
        pgoptions: true,
        left_behind: None,
        duration,
        lock_waits: Vec::new(),
        finished_at,
        log_reopens: followed.reopened,
    };
    let report = MigrateReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.clone(),
        platform: platform.clone(),
        command: command.clone(),
        preflight: Preflight::Skipped { skipped: true },
        attempts: Vec::new(),
        result: Outcome::Unknown,
        restart: None,
    };
    let ctx = Aftermath {
        client: &client,
        out: &out,
        app: &app,
        command: &command,
        plan: &plan,
        restart_arg: &restart_arg,
        formation: &formation,
        before: &before,
        restart_timeout: args.restart_timeout,
        timeout: args.timeout,
        db: db.as_ref(),
        current: Some(&now_dynos),
    };
    conclude(&ctx, report, &[attempt])
}

/// Records how the run ended, prints the report (`--json`) and returns the exit code.
fn finish(
    out: &Output,
    mut report: MigrateReport,
    attempts: &[Attempt],
    restart_arg: &str,
    result: Outcome,
    exit: Exit,
) -> Exit {
    let app = report.app.clone();
    report.attempts = attempts.iter().enumerate().map(|(i, a)| attempt_report(&app, restart_arg, i + 1, a)).collect();
    report.result = result;
    out.report(&report);
    exit
}

fn attempt_report(app: &str, restart_arg: &str, n: usize, a: &Attempt) -> AttemptReport {
    AttemptReport {
        attempt: n,
        dyno: a.dyno.name.clone(),
        dyno_id: a.dyno.id.clone(),
        exit_status: match a.ending {
            Ending::Exited(c) => Some(c),
            _ => None,
        },
        ending: match &a.ending {
            Ending::Exited(_) => "exited".to_string(),
            Ending::Lost(w) => format!("lost: {w}"),
            Ending::Interrupted => "interrupted".into(),
            Ending::TimedOut => "timed_out".into(),
            Ending::Disagreed { marker, platform } => format!("disagreed: marker {marker}, platform {platform}"),
        },
        lock_timeout: a.lock_timeout,
        outside_budget: a.outside_budget.clone(),
        left_behind: a.left_behind.clone(),
        pgoptions: a.pgoptions,
        pooler_refused: a.pooler_refused(),
        duration_ms: a.duration.as_millis() as u64,
        lock_waits: a.lock_waits.clone(),
        finished_at: heroku_api::timestamp::format_rfc3339(a.finished_at),
        log_reopens: a.log_reopens,
        // Attached dynos end with the connection: there is nothing to follow.
        follow_command: a.dyno.attach_url.is_none().then(|| pending::follow_command(app, &a.dyno.name, restart_arg)),
    }
}

/// Preflight: refuse (exit 5) when something would make the DDL wait, unless --force; with
/// --wait-clear, wait for it to end first.
fn run_preflight(args: &RunArgs, out: &Output, app: &str, db: Option<&ResolvedDatabase>) -> anyhow::Result<Preflight> {
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

/// How long the log's history may take to arrive when asking whether it knows a dyno.
const NEVER_HEARD_OF: Duration = Duration::from_secs(5);

/// A dyno not listed, not recorded here, and with no line in the log's history: a typo, which
/// is not "it may still be running".
fn never_heard_of(app: &str, dyno_name: &str) -> anyhow::Error {
    usage(format!(
        "{app} has no dyno {dyno_name} and its log has no line of one: check the name with heroku ps -a {app} (a migration's one-off is run.N)"
    ))
}

/// After Ctrl-C: stop the one-off dyno by id and see it gone, and end its database session so
/// no DDL is left in the lock queue. A second Ctrl-C stops waiting.
fn cleanup(client: &Client, out: &Output, app: &str, dyno: &Dyno, db: Option<&ResolvedDatabase>) {
    out.warn(format!("stopping {} and ending its database session (Ctrl-C again to stop waiting)…", dyno.name));
    let first = interrupt::count();
    // Closing the rendezvous already ends an attached dyno on the platform, so "not found" is
    // an answer too: the listing below is what proves it gone.
    match client.stop_dyno_if_present(app, &dyno.id) {
        Ok(_) => {
            let mut poll = Poll::new(Duration::from_secs(30));
            let mut gone = false;
            while interrupt::count() <= first.max(1) {
                if client.dynos(app).map(|l| !l.iter().any(|d| d.id == dyno.id)).unwrap_or(false) {
                    gone = true;
                    break;
                }
                if !poll.wait_next() {
                    break;
                }
            }
            if gone {
                out.ok(format!("{} stopped", dyno.name));
            } else {
                out.bad(format!("{} NOT SEEN GONE; check with safe-ps-kill {} -a {app}", dyno.name, dyno.name));
            }
        }
        Err(e) => out.bad(format!("could not stop {}: {e}; run safe-ps-kill {} -a {app}", dyno.name, dyno.name)),
    }
    if interrupt::count() > first.max(1) {
        out.warn("stopped waiting; the database session may remain: pg-blockers to check");
        return;
    }
    let Some(db) = db else {
        out.warn("no database to check: a statement the migration started may still wait on a lock");
        return;
    };
    let name = attempt::session_name(dyno);
    match pg_locks::connect(&db.connect_options(TOOL))
        .and_then(|mut c| pg_locks::end_sessions_named(&mut c, &name, Duration::from_secs(10)))
    {
        Ok(r) if r.remaining.is_empty() => {
            out.ok(format!("no database session named {name} remains (ended {})", r.found.len()))
        }
        Ok(r) => {
            out.bad(format!(
                "sessions {:?} named {name} are still there; see pg-blockers {}",
                r.remaining,
                db.selector_args()
            ));
            if let Some(f) = db.fill_in() {
                out.note(f);
            }
        }
        Err(e) => out.bad(format!("could not end the migration's database session: {e}")),
    }
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
