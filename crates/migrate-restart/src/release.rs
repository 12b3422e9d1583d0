//! `migrate-restart release` (`heroku migrate:release`): follow the app's release phase while it
//! runs — its output, its dyno, who blocks its DDL — with a lock-wait budget and a deadline
//! enforced from outside, then prove the formation runs the release. A CI job that runs it
//! after the deploy fails when the release phase fails.

use cli_kit::output::red;
use cli_kit::{api_client, confirm_destructive, format_duration, interrupt, refused, Exit, Output};
use release_phase::{Context, Options, PhaseResult};

use crate::cli::ReleaseArgs;
use crate::report::ReleaseReport;
use crate::TOOL;

/// Runs `migrate-restart release`.
pub fn run(args: ReleaseArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    interrupt::install();
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let (found, vars, info) = std::thread::scope(|s| {
        let vars =
            s.spawn(|| if args.db.database_url.is_some() { Ok(Default::default()) } else { client.config_vars(&app) });
        let info = s.spawn(|| client.app_info(&app));
        (release_phase::find_release(&client, &app, args.release.as_deref()), cli_kit::join(vars), cli_kit::join(info))
    });
    let platform = info?.platform();
    out.debug(format!("{app} runs on {platform}"));
    let (release, previous) = found?;
    let stays_on = previous.map(|v| format!("v{v}")).unwrap_or_else(|| "its current release".into());
    let pending = release.status == "pending";
    let db = if pending { cli_kit::database::from_flag_or_app(&args.db, &app, &vars?)? } else { None };

    if pending {
        out.say(format!(
            "Following the release phase of v{} of {app} ({}); if it fails, {app} stays on {stays_on}.",
            release.version, release.description
        ));
        let acts = (args.lock_wait.0.is_some() && db.is_some()) || args.deadline.is_some();
        match (args.lock_wait.0, &db) {
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
        if acts {
            if args.confirm.answer().is_none() && !out.can_prompt() {
                return Err(refused(format!(
                    "cancelling the release's statements on {app}'s behalf needs confirmation: re-run with --confirm {app}, or --lock-wait off to only watch; nothing was cancelled"
                )));
            }
            confirm_destructive(
                &out,
                &app,
                args.confirm.answer(),
                &format!("Let {TOOL} cancel the release's statements on {app} as described?"),
            )?;
        }
    } else {
        out.say(format!("Release v{} of {app} ({}) is {}.", release.version, release.description, release.status));
    }

    let opts = Options {
        lock_wait: args.lock_wait.0,
        deadline: args.deadline,
        timeout: args.timeout,
        application_name: args.application_name.clone(),
        session_name: format!("{TOOL}-release-watch"),
    };
    let cx = Context { client: &client, out: &out, app: &app, db: db.as_ref() };
    let phase = release_phase::follow(&cx, &release, previous, &opts)?;
    let mut report = ReleaseReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.clone(),
        platform,
        phase,
        formation: None,
        retry_command: None,
    };
    let took = report
        .phase
        .duration_ms
        .map(|ms| format!(" in {}", format_duration(std::time::Duration::from_millis(ms))))
        .unwrap_or_default();
    let exit = match report.phase.result {
        PhaseResult::Succeeded => {
            out.ok(format!("The release phase of v{} succeeded{took}.", release.version));
            let check = release_phase::verify_formation(&client, &out, &app, release.version, args.restart_timeout)?;
            let verified = check.verified;
            report.formation = Some(check);
            if verified {
                Exit::Success
            } else {
                Exit::NotVerified
            }
        }
        PhaseResult::Failed => {
            out.bad(format!("The release phase of v{} failed{took}: {app} stays on {stays_on}.", release.version));
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
                let retry = release_phase::retry_command(&app);
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
                release.version
            ));
            Exit::Interrupted
        }
        PhaseResult::TimedOut => {
            out.bad(format!(
                "v{} is still pending after {}; the release phase goes on: heroku releases:output v{} -a {app}",
                release.version,
                format_duration(args.timeout),
                release.version
            ));
            Exit::NotVerified
        }
    };
    out.report(&report);
    Ok(exit)
}
