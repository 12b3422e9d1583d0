//! A migration run (`migrate-restart` without a subcommand), as its steps: open the session,
//! plan and confirm, the attempts under the retry policy, then the conclusion.

use std::time::Duration;

use anyhow::Context;
use cli_kit::{confirm_destructive, interrupt, refused, Exit, Poll, ResolvedDatabase};
use migration_policy::debris;
use migration_policy::drive::{drive, DebrisCheck, Event, Outcome as Driven};
use migration_policy::Policy;

use crate::attempt::{self, Attempt, Spec};
use crate::cli::RunArgs;
use crate::conclude::{self, finish, Aftermath};
use crate::database::{pooler_refusal, run_preflight, timeout_in_force, watch_database};
use crate::render;
use crate::report::{MigrateReport, Outcome, Preflight};
use crate::restart::Plan;
use crate::session::{Session, Start};
use crate::{pending, procfile, TOOL};

/// Runs the migration and, when it succeeds, the restart.
pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let start = Start::new(&args.output, &args.app, &args.confirm)?;
    if std::env::args().any(|a| a == "--lock-timeout" || a.starts_with("--lock-timeout=")) {
        start.out.show(&render::Before::LockTimeoutRenamed);
    }
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
    if let Some(file) = lock_plan.as_ref() {
        wait_for_the_old_code(&args, &s, file)?;
    }
    let report = MigrateReport::begin(&s.app, &s.platform, &command, preflight);
    let (watch_db, outside_budget) = lock_watch(&args, &s)?;
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

/// `--plan` names queries the migration breaks: while the running release still sends one,
/// the contract step is refused (5) — or, with `--allow-breaking`, run and said.
fn wait_for_the_old_code(
    args: &RunArgs,
    s: &Session,
    file: &migration_policy::plan_file::PlanFile,
) -> anyhow::Result<()> {
    if file.breaks.is_empty() {
        return Ok(());
    }
    let checked = match s.db.as_ref() {
        Some(db) => pg_locks::connect(&db.connect_options(TOOL)).map_err(anyhow::Error::from).and_then(|mut c| {
            migration_policy::contract::still_arriving(
                pg_locks::Connection::client(&mut c),
                &file.breaks,
                migration_policy::contract::WINDOW,
            )
        }),
        None => Err(anyhow::anyhow!("no database is known to look in")),
    };
    let why = match checked {
        Ok(arriving) if arriving.is_empty() => {
            s.out.show(&render::Before::OldCodeGone { breaks: file.breaks.len() });
            return Ok(());
        }
        Ok(arriving) => arriving
            .iter()
            .map(|a| {
                format!(
                    "the running release still sends `{}` ({:.0} calls a minute), which this migration breaks",
                    cli_kit::printable(&a.query),
                    a.per_minute
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!(
            "cannot tell whether the running release still sends the queries this migration breaks ({})",
            cli_kit::one_line(&e)
        ),
    };
    if args.allow_breaking {
        s.out.show(&render::Before::AllowBreaking { why });
        return Ok(());
    }
    Err(refused(format!(
        "{why}: deploy the code that stops sending them first, then migrate (--allow-breaking runs it anyway); nothing was started"
    )))
}

/// The database the lock watch reads, and the budgets it enforces from outside: refused when a
/// budget is asked for and the watch could not enforce it (no database, or one it cannot reach).
fn lock_watch(args: &RunArgs, s: &Session) -> anyhow::Result<(Option<ResolvedDatabase>, pg_locks::Budgets)> {
    // Skipping the check before the start never removes the guard during the run: only
    // --no-lock-watch does, and says so.
    let watch_db = if args.no_lock_watch { None } else { watch_database(&s.out, &s.app, s.db.as_ref(), &s.vars) };
    let budget = args.lock_wait.0;
    if let Some(db) = watch_db.as_ref().filter(|_| budget.is_some()) {
        // Before anything is said or started: a budget announced must be one the watch can
        // enforce (each attempt opens its watch before its dyno exists, too).
        crate::attempt::probe_watch(db)?;
    }
    if watch_db.is_none() && !args.no_lock_watch && budget.is_some() {
        return Err(refused(format!(
            "cannot enforce the lock-wait budget: {} has no DATABASE_URL config var to watch; pass --database-url URL, or --no-lock-watch to rely on the migration's own lock_timeout; nothing was started",
            s.app
        )));
    }
    let outside_budget = watch_db
        .as_ref()
        .map(|_| pg_locks::Budgets {
            wait: budget.map(|b| b + migration_policy::OUTSIDE_SLACK),
            hold: args.lock_wait.budgets(args.lock_hold).hold,
        })
        .unwrap_or_default();
    Ok((watch_db, outside_budget))
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
fn announce(args: &RunArgs, s: &Session, command: &str, plan: &Plan, outside_budget: pg_locks::Budgets) {
    let platform = &s.platform;
    s.out.show(&render::Before::WillRun {
        app: &s.app,
        command,
        platform_note: match (platform.is_fir(), platform.is_cnb()) {
            (_, true) => format!(" ({platform}: through `launcher`, which sets up the app's runtime)"),
            (true, false) => format!(" ({platform})"),
            _ => String::new(),
        },
        in_force: timeout_in_force(args.lock_wait.0, outside_budget, args.lock_hold),
        statement_timeout: args.statement_timeout,
        retries: args.retries,
        then: plan.describe(),
    });
}

/// The attempts, driven by the one guarded run ([`migration_policy::drive`]): `None` when the
/// last one's ending is for the conclusion to act on, `Some` when the run ends here (a pooler
/// refusal nothing would bound, a retry the debris rule forbids, Ctrl-C between attempts).
fn attempt_until_done(
    args: &RunArgs,
    s: &Session,
    command: &str,
    watch_db: Option<&ResolvedDatabase>,
    outside_budget: pg_locks::Budgets,
    attempts: &mut Vec<Attempt>,
) -> anyhow::Result<Option<(Outcome, Exit)>> {
    let started = on_started(args, s, command);
    let spec = Spec {
        app: &s.app,
        command,
        size: args.size.clone(),
        lock_timeout: args.lock_wait.0,
        lock_hold: args.lock_hold.map(|h| h.0),
        statement_timeout: args.statement_timeout,
        outside_budget,
        pgoptions: true,
        timeout: args.timeout,
        watch: watch_db,
        attach: args.attach,
        started: &started,
        platform: &s.platform,
    };
    // What a failed attempt left is read from the migration's database: the watched one, or,
    // with --no-lock-watch, the one the run knows. None known: no retry can be checked.
    let debris_db = watch_db.or(s.db.as_ref()).map(|db| db.connect_options(TOOL));
    let debris = DebrisCheck::before_first_attempt(debris_db, args.drop_invalid_indexes, |error| {
        s.out.show(&render::Attempting::NoBaseline { error })
    });
    let policy = Policy { retries: args.retries, retry_for: None, watched: outside_budget.wait.is_some() };
    let mut runner = OneOff { s, spec, last_cut: false };
    let driven = drive(&mut runner, &policy, &debris);
    attempts.extend(driven.attempts);
    let outcome = match driven.outcome {
        Ok(o) => o,
        Err(e) => {
            attempts.extend(attempt::abandoned(&e, &runner.spec));
            return Err(e);
        }
    };
    Ok(match outcome {
        Driven::Done | Driven::OutOfRetries { .. } | Driven::Stopped => None,
        Driven::PoolerRefusedUnwatched | Driven::RetryBlocked => Some((Outcome::Failed, Exit::Failed)),
        Driven::StoppedInThePause => Some((Outcome::Interrupted, Exit::Interrupted)),
    })
}

/// The one-off dyno as the guarded run's runner.
struct OneOff<'a> {
    s: &'a Session,
    spec: Spec<'a>,
    /// The outside budget cut the last attempt (verified).
    last_cut: bool,
}

impl migration_policy::drive::Runner for OneOff<'_> {
    type Attempt = Attempt;

    fn attempt(&mut self, pgoptions: bool) -> anyhow::Result<Attempt> {
        self.spec.pgoptions = pgoptions;
        let a = attempt::run(&self.s.client, &self.s.out, &self.spec)?;
        self.last_cut = a.outside_budget.iter().any(|e| e.verified && !e.for_holding());
        Ok(a)
    }

    fn tried(&self, attempt: &Attempt, since_first: Duration) -> migration_policy::Tried {
        attempt.tried(since_first)
    }

    fn left_behind(&mut self, attempt: &mut Attempt, found: debris::LeftBehind) {
        attempt.left_behind = Some(found);
    }

    fn pause(&mut self, pause: Duration) -> bool {
        interruptible_pause(pause)
    }

    fn say(&mut self, event: &Event<'_>) {
        let (out, app) = (&self.s.out, self.s.app.as_str());
        let advice = || pooler_refusal(app, self.s.db.as_ref(), &self.s.vars);
        match event {
            Event::RetryWithoutPgoptions => {
                out.show(&render::Attempting::PoolerRefused { advice: advice() });
                out.show(&render::Attempting::RetryWithoutPgoptions {
                    budget: self.spec.outside_budget.wait.unwrap_or_default(),
                });
            }
            Event::PoolerRefusedUnwatched => {
                out.show(&render::Attempting::PoolerRefused { advice: advice() });
                out.show(&render::Attempting::PoolerRefusedUnwatched);
            }
            Event::Retrying { n, of, pause, ceiling } => out.show(&render::Attempting::Retrying {
                cut_by_budget: self.last_cut,
                n: *n,
                of: *of,
                pause: *pause,
                ceiling: *ceiling,
            }),
            // The conclusion says how the last attempt ended.
            Event::OutOfRetries { .. } => {}
            Event::StoppedInThePause => out.show(&render::Attempting::InterruptedBetweenAttempts),
            Event::Debris(found) => out.show(&render::Debris::Found { app, found }),
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
