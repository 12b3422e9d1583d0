//! `migrate-restart release` (`heroku migrate:release`): follow the app's release phase while it
//! runs — its output, its dyno, who blocks its DDL — with a lock-wait budget and a deadline
//! enforced from outside, then prove the formation runs the release. A CI job that runs it
//! after the deploy fails when the release phase fails.

mod deploy_step;
mod render;

use std::collections::BTreeMap;
use std::time::Duration;

use cli_kit::{api_client, confirm_destructive, format_duration, interrupt, refused, Exit, Output};
use heroku_api::Client;
use release_phase::{Context, Options, PhaseResult};

use crate::cli::ReleaseArgs;
use crate::report::ReleaseReport;
use crate::TOOL;

/// Runs `migrate-restart release`: an existing release (the newest, or VERSION), or the one a
/// deploy step creates (`-- COMMAND`, `--next`).
pub fn run(args: ReleaseArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    interrupt::install();
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let dash_dash = std::env::args().skip(1).any(|a| a == "--");
    let plan = deploy_step::Plan::from_args(&args, dash_dash)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    match plan {
        None => follow_existing(&args, &out, &client, &app),
        Some(plan) => follow_next(&args, &out, &client, &app, plan),
    }
}

/// The app's config vars (unless --database-url) and its generation, read in parallel.
fn read_app(
    client: &Client,
    app: &str,
    args: &ReleaseArgs,
) -> anyhow::Result<(BTreeMap<String, String>, heroku_api::Platform)> {
    let (vars, info) = std::thread::scope(|s| {
        let vars =
            s.spawn(|| if args.db.database_url.is_some() { Ok(Default::default()) } else { client.config_vars(app) });
        let info = s.spawn(|| client.app_info(app));
        (cli_kit::join(vars), cli_kit::join(info))
    });
    Ok((vars?, info?.platform()))
}

fn follow_existing(args: &ReleaseArgs, out: &Output, client: &Client, app: &str) -> anyhow::Result<Exit> {
    let (found, read) = std::thread::scope(|s| {
        let read = s.spawn(|| read_app(client, app, args));
        (release_phase::find_release(client, app, args.release.as_deref()), cli_kit::join(read))
    });
    let (vars, platform) = read?;
    out.debug(format!("{app} runs on {platform}"));
    let (release, previous) = found?;
    let pending = release.status == "pending";
    let db = if pending { cli_kit::database::from_flag_or_app(&args.db, app, &vars)? } else { None };
    let obstacles = if pending { plan_obstacles(args, out, db.as_ref())? } else { Vec::new() };
    if pending {
        out.show(&render::ReleaseStart::FollowingPhase {
            app,
            version: release.version,
            description: &release.description,
            stays_on: stays_on(previous),
        });
        say_guard(out, args, db.as_ref());
        confirm_acting(out, app, args, db.is_some())?;
    } else {
        out.show(&render::ReleaseStart::ReleaseIs {
            app,
            version: release.version,
            description: &release.description,
            status: &release.status,
        });
    }
    let target = Followed { release, previous, platform, db, obstacles };
    follow_and_conclude(args, out, client, app, target, None)
}

/// `-- COMMAND` / `--next`: the plan said and confirmed before anything runs (once the push
/// streams there is no asking), then the release followed from the moment it exists.
fn follow_next(
    args: &ReleaseArgs,
    out: &Output,
    client: &Client,
    app: &str,
    plan: deploy_step::Plan,
) -> anyhow::Result<Exit> {
    let (current, read) = std::thread::scope(|s| {
        let read = s.spawn(|| read_app(client, app, args));
        (release_phase::current_release(client, app), cli_kit::join(read))
    });
    let (vars, platform) = read?;
    let previous = current?.map(|r| r.version);
    let db = cli_kit::database::from_flag_or_app(&args.db, app, &vars)?;
    let obstacles = plan_obstacles(args, out, db.as_ref())?;
    if let (deploy_step::Plan::Command(command), [_, ..]) = (&plan, &obstacles[..]) {
        return Err(refused(format!(
            "the release's migration would wait now: {}; nothing was deployed. Wait for them to end (heroku pg:blockers -a {app}), then run `{}` again",
            obstacles.iter().map(crate::commands::plan::render::obstacle_brief).collect::<Vec<_>>().join(", "),
            cli_kit::shell::join(command)
        )));
    }
    out.show(&render::ReleaseStart::DeployPlan { app, plan: plan.describe(app), stays_on: stays_on(previous) });
    say_guard(out, args, db.as_ref());
    confirm_acting(out, app, args, db.is_some())?;
    let (mut running, waited) = deploy_step::start(client, out, app, plan)?;
    let release = match waited {
        deploy_step::Waited::Found(r) => r,
        other => return Ok(no_release(args, out, app, platform, &mut running, other)),
    };
    if release.status == "succeeded" && release.output_stream_url.is_none() {
        out.show(&render::ReleaseStart::NoReleasePhase { app, version: release.version });
    }
    out.show(&render::ReleaseStart::FollowingNext {
        app,
        version: release.version,
        description: &release.description,
        seen_after: running.step.seen_after_ms.map(|ms| format_duration(Duration::from_millis(ms))).unwrap_or_default(),
    });
    let target = Followed { release, previous, platform, db, obstacles };
    follow_and_conclude(args, out, client, app, target, Some(&mut running))
}

/// No release to follow: COMMAND made none, `--next` waited in vain, or an interrupt came first.
fn no_release(
    args: &ReleaseArgs,
    out: &Output,
    app: &str,
    platform: heroku_api::Platform,
    running: &mut deploy_step::Running,
    waited: deploy_step::Waited,
) -> Exit {
    let (result, exit) = match waited {
        deploy_step::Waited::NoRelease => {
            let code = running.step.exit_status.unwrap_or(1);
            let command = cli_kit::shell::join(&running.step.command);
            if code == 0 {
                out.show(&render::ReleaseStart::NoReleaseMade { app, command });
            } else {
                out.show(&render::ReleaseStart::DeployFailedNoRelease { app, command, code });
            }
            ("no_release", if code == 0 { Exit::Success } else { Exit::Other(code.clamp(1, 255) as u8) })
        }
        deploy_step::Waited::TimedOut => {
            out.show(&render::ReleaseStart::NoNewRelease { app, waited: args.next_timeout });
            ("timed_out", Exit::NotVerified)
        }
        _ => {
            out.show(&render::ReleaseStart::InterruptedBeforeRelease);
            ("interrupted", Exit::Interrupted)
        }
    };
    out.report(&crate::report::NoReleaseReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.to_string(),
        platform,
        deploy: running.step.clone(),
        result: result.to_string(),
    });
    exit
}

fn stays_on(previous: Option<u64>) -> String {
    previous.map(|v| format!("v{v}")).unwrap_or_else(|| "its current release".into())
}

/// What the follow will do on the app's behalf.
fn say_guard(out: &Output, args: &ReleaseArgs, db: Option<&cli_kit::ResolvedDatabase>) {
    match (args.lock_wait.0, db) {
        (Some(budget), Some(db)) => out.show(&render::ReleaseStart::LockWaitBudget { budget, database: db.describe() }),
        (None, Some(db)) => out.show(&render::ReleaseStart::WatchingOnly { database: db.describe() }),
        (_, None) => out.show(&render::ReleaseStart::NoDatabaseToWatch),
    }
    if let Some(deadline) = args.deadline {
        out.show(&render::ReleaseStart::Deadline { deadline });
    }
}

/// Cancelling on the app's behalf is confirmed first (`--confirm APP`, or the prompt).
fn confirm_acting(out: &Output, app: &str, args: &ReleaseArgs, watched: bool) -> anyhow::Result<()> {
    let acts = (args.lock_wait.0.is_some() && watched) || args.deadline.is_some();
    if !acts {
        return Ok(());
    }
    if args.confirm.answer().is_none() && !out.can_prompt() {
        return Err(refused(format!(
            "cancelling the release's statements on {app}'s behalf needs confirmation: re-run with --confirm {app}, or --lock-wait off to only watch; nothing was cancelled"
        )));
    }
    confirm_destructive(
        out,
        app,
        args.confirm.answer(),
        &format!("Let {TOOL} cancel the release's statements on {app} as described?"),
    )
}

/// The release to follow and what it needs.
struct Followed {
    release: heroku_api::Release,
    previous: Option<u64>,
    platform: heroku_api::Platform,
    db: Option<cli_kit::ResolvedDatabase>,
    /// `--plan`: who was in the way of a planned lock when the follow began.
    obstacles: Vec<pg_locks::lockplan::Obstacle>,
}

/// `--plan`: the sessions holding or waiting for a lock that conflicts with a planned one,
/// read once (said here; a deploy step is refused by the caller).
fn plan_obstacles(
    args: &ReleaseArgs,
    out: &Output,
    db: Option<&cli_kit::ResolvedDatabase>,
) -> anyhow::Result<Vec<pg_locks::lockplan::Obstacle>> {
    let Some(path) = &args.plan else { return Ok(Vec::new()) };
    let file = migration_policy::plan_file::read(path)?;
    let Some(db) = db else {
        return Err(cli_kit::usage(
            "--plan: the app has no DATABASE_URL to check the plan against; pass --database-url URL",
        ));
    };
    let mut c = pg_locks::connect(&db.connect_options(TOOL))?;
    file.check_against(pg_locks::Connection::client(&mut c))?;
    let obstacles = pg_locks::lockplan::obstacles(pg_locks::Connection::client(&mut c), &file.plan)?;
    out.show(&render::ReleaseStart::PlanChecked { database: db.describe(), obstacles: &obstacles });
    Ok(obstacles)
}

fn follow_and_conclude(
    args: &ReleaseArgs,
    out: &Output,
    client: &Client,
    app: &str,
    target: Followed,
    deploy: Option<&mut deploy_step::Running>,
) -> anyhow::Result<Exit> {
    let Followed { release, previous, platform, db, obstacles } = target;
    let stays_on = stays_on(previous);
    let (app, args, out, client) = (app.to_string(), args, out, client);
    let opts = Options {
        budgets: args.lock_wait.budgets(args.lock_hold),
        deadline: args.deadline,
        timeout: args.timeout,
        application_name: args.application_name.clone(),
        session_name: format!("{TOOL}-release-watch"),
    };
    let cx = Context { client, out, app: &app, db: db.as_ref() };
    let phase = release_phase::follow(&cx, &release, previous, &opts)?;
    let mut report = ReleaseReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.clone(),
        platform,
        phase,
        formation: None,
        retry_command: None,
        deploy: None,
        plan_obstacles: obstacles,
    };
    let exit = ending(args, out, client, &app, release.version, &stays_on, &mut report)?;
    if let Some(running) = deploy {
        running.finish(out, Duration::from_secs(30));
        if running.step.exit_status == Some(0) && report.phase.result == PhaseResult::Failed {
            out.show(&render::ReleaseEnd::PushSaidZero {
                command: cli_kit::shell::join(&running.step.command),
                version: release.version,
            });
        }
        report.deploy = Some(running.step.clone());
    }
    out.report(&report);
    Ok(exit)
}

/// Says how the release phase ended and what follows from it; the exit code.
fn ending(
    args: &ReleaseArgs,
    out: &Output,
    client: &Client,
    app: &str,
    version: u64,
    stays_on: &str,
    report: &mut ReleaseReport,
) -> anyhow::Result<Exit> {
    let took = report
        .phase
        .duration_ms
        .map(|ms| format!(" in {}", format_duration(std::time::Duration::from_millis(ms))))
        .unwrap_or_default();
    let exit = match report.phase.result {
        PhaseResult::Succeeded => {
            out.show(&render::ReleaseEnd::PhaseSucceeded { version, took });
            let check = release_phase::verify_formation(client, out, app, version, args.restart_timeout)?;
            let verified = check.verified;
            report.formation = Some(check);
            if verified {
                Exit::Success
            } else {
                Exit::NotVerified
            }
        }
        PhaseResult::Failed => {
            out.show(&render::ReleaseEnd::PhaseFailed {
                app,
                version,
                took,
                stays_on,
                tail: &report.phase.output_tail,
            });
            let cut_inside = report.phase.inside_guard.as_ref().and_then(|g| g.summary.as_deref());
            let held = report.phase.enforcements.iter().rev().find(|e| e.verified && e.for_holding());
            if held.is_some() || cut_inside.is_some_and(migration_policy::signs::is_hold_cut) {
                let retry = release_phase::retry_command(app);
                let query = held.map(|e| e.wait.query.as_str());
                out.show(&render::ReleaseEnd::PhaseHeldTooLong { app, query, retry: &retry });
                report.retry_command = Some(retry);
            } else if let Some(e) = report.phase.enforcements.iter().rev().find(|e| e.verified) {
                let blocker = e
                    .wait
                    .blocker
                    .as_ref()
                    .map(|b| format!("pid {} ({})", b.pid, b.application_name))
                    .unwrap_or_else(|| "a session this credential cannot see".into());
                let retry = release_phase::retry_command(app);
                out.show(&render::ReleaseEnd::PhaseCut { app, query: &e.wait.query, blocker, retry: &retry });
                report.retry_command = Some(retry);
            }
            Exit::Failed
        }
        PhaseResult::Interrupted => {
            out.show(&render::ReleaseEnd::PhaseInterrupted { app, version });
            Exit::Interrupted
        }
        PhaseResult::Superseded => {
            let by = report.phase.superseded_by.map(|v| format!("v{v}")).unwrap_or_else(|| "a newer release".into());
            out.show(&render::ReleaseEnd::Superseded { app, version, by });
            Exit::NotVerified
        }
        PhaseResult::TimedOut => {
            out.show(&render::ReleaseEnd::StillPending { app, version, timeout: args.timeout });
            Exit::NotVerified
        }
    };
    Ok(exit)
}
