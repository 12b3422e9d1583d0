//! A migration run (`migrate-restart` without a subcommand), as its steps: open the session,
//! plan and confirm, the attempts under the retry policy, then the conclusion.

use std::time::Duration;

use anyhow::Context;
use cli_kit::{confirm_destructive, interrupt, refused, Exit, Poll, ResolvedDatabase};
use migration_policy::{debris, Policy, Step};

use crate::attempt::{self, Attempt, Spec};
use crate::cli::RunArgs;
use crate::conclude::{self, finish, Aftermath};
use crate::database::{check_left_behind, pooler_refusal, run_preflight, timeout_in_force, watch_database};
use crate::render;
use crate::report::{MigrateReport, Outcome, Preflight};
use crate::restart::Plan;
use crate::session::{Session, Start};
use crate::{pending, procfile, TOOL};

/// Runs the migration and, when it succeeds, the restart.
pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let start = Start::new(&args.output, &args.app, &args.confirm)?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let command = procfile::command(args.command.as_deref(), &cwd)?;
    let s = start.read_app(&args.db)?;
    if args.attach && s.platform.is_fir() {
        return Err(refused(format!(
            "--attach: {} is on {}, where a one-off dyno is reached over SSH, not the rendezvous; run without --attach (detached, followed through the app's log, the default); nothing was started",
            s.app, s.platform
        )));
    }
    refuse_beside_a_release_phase(&args, &s)?;
    let plan = Plan::parse(&args.restart, &s.formation)?;
    if args.plan.is_some() && args.no_preflight {
        return Err(cli_kit::usage(
            "--plan narrows the preflight, and --no-preflight skips it: give one of the two; nothing was started",
        ));
    }
    let lock_plan = args.plan.as_deref().map(migration_policy::plan_file::read).transpose()?;
    let preflight = if args.no_preflight {
        Preflight::Skipped { skipped: true }
    } else {
        run_preflight(&args, &s.out, &s.app, s.db.as_ref(), lock_plan.as_ref())?
    };
    let report = MigrateReport::begin(&s.app, &s.platform, &command, preflight);
    // Skipping the check before the start never removes the guard during the run: only
    // --no-lock-watch does, and says so.
    let watch_db = if args.no_lock_watch { None } else { watch_database(&s.out, &s.app, s.db.as_ref(), &s.vars) };
    if let Some(db) = &watch_db {
        // Before anything is said or started: a budget announced must be one the watch can
        // enforce (each attempt opens its watch before its dyno exists, too).
        crate::attempt::probe_watch(db)?;
    }
    if watch_db.is_none() && !args.no_lock_watch {
        return Err(refused(format!(
            "cannot enforce the lock-wait budget: {} has no DATABASE_URL config var to watch; pass --database-url URL, or --no-lock-watch to rely on the migration's own lock_timeout; nothing was started",
            s.app
        )));
    }
    let outside_budget = watch_db.as_ref().map(|_| args.lock_timeout + migration_policy::OUTSIDE_SLACK);
    announce(&args, &s, &command, &plan, outside_budget);
    confirm_destructive(
        &s.out,
        &s.app,
        args.confirm.answer(),
        &format!("Run the migration on {} and restart?", s.app),
    )?;

    let mut attempts: Vec<Attempt> = Vec::new();
    match attempt_until_done(&args, &s, &command, watch_db.as_ref(), outside_budget, &mut attempts) {
        Ok(None) => {}
        Ok(Some((outcome, exit))) => return Ok(finish(&s.out, report, &attempts, &args.restart, outcome, exit)),
        Err(e) => {
            // `--json` ends with a document even so, the dyno it created (and stopped) recorded.
            finish(&s.out, report, &attempts, &args.restart, Outcome::Failed, Exit::Failed);
            return Err(e);
        }
    }
    let ctx = Aftermath {
        client: &s.client,
        out: &s.out,
        app: &s.app,
        command: &command,
        plan: &plan,
        restart_arg: &args.restart,
        formation: &s.formation,
        before: &s.dynos,
        restart_timeout: args.restart_timeout,
        timeout: args.timeout,
        db: s.db.as_ref(),
        current: None,
    };
    conclude::conclude(&ctx, report, &attempts)
}

/// Two migrations at once — this one and the release phase's — and a restart onto the release
/// being replaced: refused (5), the release named, unless `--beside-release-phase`.
fn refuse_beside_a_release_phase(args: &RunArgs, s: &Session) -> anyhow::Result<()> {
    let Some((version, dyno)) = s.release_phase_running() else { return Ok(()) };
    if args.beside_release_phase {
        s.out.show(&render::Before::BesideReleasePhase { app: &s.app, version, dyno: dyno.as_deref() });
        return Ok(());
    }
    let what = match (version, dyno.as_deref()) {
        (Some(v), Some(d)) => format!("release v{v} of {} is in its release phase ({d} running)", s.app),
        (Some(v), None) => format!("release v{v} of {} is still pending (its release phase runs)", s.app),
        (None, Some(d)) => format!("{d} of {} is running a release phase", s.app),
        (None, None) => unreachable!("release_phase_running said one of the two"),
    };
    Err(refused(format!(
        "{what}: a migration now would run beside its migration, and a restart would boot the release it replaces. Wait for it (migrate-restart release -a {} follows it), or pass --beside-release-phase; nothing was started",
        s.app
    )))
}

/// What the run will do, said before the confirmation.
fn announce(args: &RunArgs, s: &Session, command: &str, plan: &Plan, outside_budget: Option<Duration>) {
    let platform = &s.platform;
    s.out.show(&render::Before::WillRun {
        app: &s.app,
        command,
        platform_note: match (platform.is_fir(), platform.is_cnb()) {
            (_, true) => format!(" ({platform}: through `launcher`, which sets up the app's runtime)"),
            (true, false) => format!(" ({platform})"),
            _ => String::new(),
        },
        in_force: timeout_in_force(args.lock_timeout, outside_budget),
        statement_timeout: args.statement_timeout,
        retries: args.retries,
        then: plan.describe(),
    });
}

/// The attempts, each decided by the retry policy after the last: `None` when the last one's
/// ending is for the conclusion to act on, `Some` when the run ends here (a pooler refusal
/// nothing would bound, debris a retry must not run into, Ctrl-C between attempts).
fn attempt_until_done(
    args: &RunArgs,
    s: &Session,
    command: &str,
    watch_db: Option<&ResolvedDatabase>,
    outside_budget: Option<Duration>,
    attempts: &mut Vec<Attempt>,
) -> anyhow::Result<Option<(Outcome, Exit)>> {
    let (out, app) = (&s.out, s.app.as_str());
    let started = on_started(args, s, command);
    let mut spec = Spec {
        app,
        command,
        size: args.size.clone(),
        lock_timeout: args.lock_timeout,
        statement_timeout: args.statement_timeout,
        outside_budget,
        pgoptions: true,
        timeout: args.timeout,
        watch: watch_db,
        attach: args.attach,
        started: &started,
        platform: &s.platform,
    };
    let baseline = watch_db.and_then(|db| read_baseline(out, db));
    let policy = Policy { retries: args.retries, retry_for: None, watched: spec.outside_budget.is_some() };
    let run_started = std::time::Instant::now();
    loop {
        match attempt::run(&s.client, out, &spec) {
            Ok(a) => attempts.push(a),
            Err(e) => {
                attempts.extend(attempt::abandoned(&e, &spec));
                return Err(e);
            }
        }
        let tries: Vec<_> = attempts.iter().map(|a| a.tried(run_started.elapsed())).collect();
        match migration_policy::next_step(&tries, &policy, migration_policy::policy::jitter_seed()) {
            Step::Done | Step::OutOfRetries { .. } | Step::OutOfTime { .. } => return Ok(None),
            Step::PoolerRefusedUnwatched => {
                out.show(&render::Attempting::PoolerRefused { advice: pooler_refusal(app, s.db.as_ref(), &s.vars) });
                out.show(&render::Attempting::PoolerRefusedUnwatched);
                return Ok(Some((Outcome::Failed, Exit::Failed)));
            }
            Step::RetryWithoutPgoptions => {
                out.show(&render::Attempting::PoolerRefused { advice: pooler_refusal(app, s.db.as_ref(), &s.vars) });
                out.show(&render::Attempting::RetryWithoutPgoptions {
                    budget: spec.outside_budget.unwrap_or_default(),
                });
                spec.pgoptions = false;
            }
            Step::Retry { n, pause, ceiling } => {
                let left_clear = match (watch_db, &baseline) {
                    (Some(db), Some(baseline)) => {
                        let last = attempts.last_mut().expect("just pushed");
                        check_left_behind(out, app, db, baseline, args.drop_invalid_indexes, last)
                    }
                    _ => true,
                };
                if !left_clear {
                    return Ok(Some((Outcome::Failed, Exit::Failed)));
                }
                out.show(&render::Attempting::Retrying {
                    cut_by_budget: attempts.last().is_some_and(|a| a.outside_budget.iter().any(|e| e.verified)),
                    n,
                    of: args.retries + 1,
                    pause,
                    ceiling,
                });
                if !interruptible_pause(pause) {
                    out.show(&render::Attempting::InterruptedBetweenAttempts);
                    return Ok(Some((Outcome::Interrupted, Exit::Interrupted)));
                }
            }
        }
    }
}

/// Called once the dyno exists. A detached dyno outlives this process: record it and say how
/// to pick it up, first thing.
fn on_started<'a>(args: &'a RunArgs, s: &'a Session, command: &'a str) -> impl Fn(&heroku_api::Dyno) + 'a {
    move |dyno| {
        if args.attach {
            return;
        }
        if let Err(e) = pending::save(&pending::Pending::new(&s.app, dyno, command, &args.restart, &s.dynos)) {
            s.out.show(&render::Before::PendingNotSaved { error: e.to_string() });
        }
        s.out.show(&render::Before::PickUpWith { command: pending::follow_command(&s.app, &dyno.name, &args.restart) });
    }
}

/// What is in the database before the first attempt: a failed attempt's debris is what is new.
fn read_baseline(out: &cli_kit::Output, db: &ResolvedDatabase) -> Option<debris::Baseline> {
    match debris::Baseline::read(&db.connect_options(TOOL)) {
        Ok(b) => Some(b),
        Err(e) => {
            out.show(&render::Attempting::NoBaseline { error: e.to_string() });
            None
        }
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
