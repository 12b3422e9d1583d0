//! `migrate-restart release` (`heroku migrate:release`): follow the app's release phase while it
//! runs — its output, its dyno, who blocks its DDL — with a lock-wait budget and a deadline
//! enforced from outside, then prove the formation runs the release. A CI job that runs it
//! after the deploy fails when the release phase fails.

use std::collections::BTreeMap;
use std::time::Duration;

use cli_kit::output::red;
use cli_kit::{api_client, confirm_destructive, format_duration, interrupt, refused, Exit, Output};
use heroku_api::Client;
use release_phase::{Context, Options, PhaseResult};

use crate::cli::ReleaseArgs;
use crate::report::ReleaseReport;
use crate::{deploy_step, TOOL};

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
    if pending {
        out.say(format!(
            "Following the release phase of v{} of {app} ({}); if it fails, {app} stays on {}.",
            release.version,
            release.description,
            stays_on(previous)
        ));
        say_guard(out, args, db.as_ref());
        confirm_acting(out, app, args, db.is_some())?;
    } else {
        out.say(format!("Release v{} of {app} ({}) is {}.", release.version, release.description, release.status));
    }
    let target = Followed { release, previous, platform, db };
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
    out.say(format!("{}; if its release phase fails, {app} stays on {}.", plan.describe(app), stays_on(previous)));
    say_guard(out, args, db.as_ref());
    confirm_acting(out, app, args, db.is_some())?;
    let (mut running, waited) = deploy_step::start(client, out, app, plan)?;
    let release = match waited {
        deploy_step::Waited::Found(r) => r,
        other => return Ok(no_release(args, out, app, platform, &mut running, other)),
    };
    if release.status == "succeeded" && release.output_stream_url.is_none() {
        out.say(format!(
            "v{} of {app} has no release phase (its Procfile has no release: line): it succeeded at once.",
            release.version
        ));
    }
    out.say(format!(
        "Following v{} of {app} ({}), seen {} after the deploy step began.",
        release.version,
        release.description,
        running.step.seen_after_ms.map(|ms| format_duration(Duration::from_millis(ms))).unwrap_or_default()
    ));
    let target = Followed { release, previous, platform, db };
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
            if code == 0 {
                out.say(format!(
                    "`{}` created no release of {app}: nothing to follow.",
                    cli_kit::shell::join(&running.step.command)
                ));
            } else {
                out.bad(format!(
                    "`{}` failed (exit {code}) and created no release of {app}.",
                    cli_kit::shell::join(&running.step.command)
                ));
            }
            ("no_release", if code == 0 { Exit::Success } else { Exit::Other(code.clamp(1, 255) as u8) })
        }
        deploy_step::Waited::TimedOut => {
            out.bad(format!(
                "no new release of {app} within {} (--next-timeout): nothing was followed",
                format_duration(args.next_timeout)
            ));
            ("timed_out", Exit::NotVerified)
        }
        _ => {
            out.warn("interrupted before a release appeared; the deploy step goes on, nothing was cancelled");
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
        (Some(budget), Some(db)) => out.say(format!(
            "Lock-wait budget {}: a DDL statement of the release that waits on a lock longer is cancelled on {} (the release phase then fails).",
            format_duration(budget),
            db.describe()
        )),
        (None, Some(db)) => out.say(format!("Watching {} for the release's lock waits (--lock-wait off: nothing is cancelled).", db.describe())),
        (_, None) => out.warn("no database to watch: following output and status only"),
    }
    if let Some(deadline) = args.deadline {
        out.say(format!(
            "Deadline {}: after that the release dyno is stopped and its statements cancelled.",
            format_duration(deadline)
        ));
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
}

fn follow_and_conclude(
    args: &ReleaseArgs,
    out: &Output,
    client: &Client,
    app: &str,
    target: Followed,
    deploy: Option<&mut deploy_step::Running>,
) -> anyhow::Result<Exit> {
    let Followed { release, previous, platform, db } = target;
    let stays_on = stays_on(previous);
    let (app, args, out, client) = (app.to_string(), args, out, client);
    let opts = Options {
        lock_wait: args.lock_wait.0,
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
    };
    let exit = ending(args, out, client, &app, release.version, &stays_on, &mut report)?;
    if let Some(running) = deploy {
        running.finish(out, Duration::from_secs(30));
        if running.step.exit_status == Some(0) && report.phase.result == PhaseResult::Failed {
            out.bad(format!(
                "`{}` exited 0, but the release phase of v{} failed: this exits 1 (a push reports success whatever its release phase did)",
                cli_kit::shell::join(&running.step.command),
                release.version
            ));
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
            out.ok(format!("The release phase of v{} succeeded{took}.", version));
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
            out.bad(format!("The release phase of v{} failed{took}: {app} stays on {stays_on}.", version));
            if !report.phase.output_tail.is_empty() {
                out.say("Its last lines:");
                for l in &report.phase.output_tail {
                    out.say(format!("  {} {l}", red().apply_to("│")));
                }
            }
            if let Some(e) = report.phase.enforcements.iter().rev().find(|e| e.verified) {
                let blocker = e
                    .wait
                    .blocker
                    .as_ref()
                    .map(|b| format!("pid {} ({})", b.pid, b.application_name))
                    .unwrap_or_else(|| "a session this credential cannot see".into());
                let retry = release_phase::retry_command(app);
                out.say(format!(
                    "The lock-wait budget cancelled its `{}` behind {blocker}. Once that is gone (heroku pg:blockers -a {app}), retry:\n  {retry}",
                    e.wait.query
                ));
                report.retry_command = Some(retry);
            }
            Exit::Failed
        }
        PhaseResult::Interrupted => {
            out.warn(format!(
                "interrupted: the release phase of v{} goes on (the interrupt cancelled nothing); follow it again with heroku migrate:release -a {app}",
                version
            ));
            Exit::Interrupted
        }
        PhaseResult::Superseded => {
            let by = report.phase.superseded_by.map(|v| format!("v{v}")).unwrap_or_else(|| "a newer release".into());
            out.warn(format!(
                "v{version} was superseded by {by} before its release phase ended (status expired, not failed): it will never become current. Follow {by}: heroku migrate:release -a {app}"
            ));
            Exit::NotVerified
        }
        PhaseResult::TimedOut => {
            out.bad(format!(
                "v{} is still pending after {}; the release phase goes on: heroku releases:output v{} -a {app}",
                version,
                format_duration(args.timeout),
                version
            ));
            Exit::NotVerified
        }
    };
    Ok(exit)
}
