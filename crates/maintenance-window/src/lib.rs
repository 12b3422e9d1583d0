//! maintenance-window: decide whether a window is needed, open it journal-first, promote a
//! prebuilt slug, run the deploy step, close it, and report how long the site was down.

mod cli;
mod command;
pub mod journal;
pub mod live;
pub mod plan;
pub mod report;
pub mod window;

use std::time::Instant;

use cli_kit::output::{bold, red};
use cli_kit::{api_client, confirm_destructive, format_duration, interrupt, refused, usage, Exit, Output};
use release_phase::PhaseResult;

pub use cli::{Args, OnFailure, Sub};
use command::Ended;
use live::{restore_command, Live};
use report::{PlanReport, RestoreReport, RestoreSource, StatusReport, WindowReport, WindowResult};
use window::{ms_since, secs, Timings};

const TOOL: &str = "maintenance-window";

/// Runs the command or one of its subcommands.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.sub {
        Some(Sub::Plan(p)) => plan_cmd(p),
        Some(Sub::Status(a)) => status_cmd(a),
        Some(Sub::Restore(a)) => restore_cmd(a),
        None => window_cmd(args.window),
    }
}

fn plan_cmd(args: cli::PlanArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let d = plan::decide(&client, &app, &args.diff, &std::env::current_dir()?)?;
    report_decision(&out, &app, &d);
    Ok(finish(&out, &PlanReport { schema_version: cli_kit::SCHEMA_VERSION, app, decision: d }, Exit::Success))
}

fn report_decision(out: &Output, app: &str, d: &plan::Decision) {
    for line in decision_lines(app, d) {
        out.say(line);
    }
}

/// Whether a window is needed and which files make it so, for people.
pub fn decision_lines(app: &str, d: &plan::Decision) -> Vec<String> {
    let range = format!("{}..{}", short(&d.base), d.target);
    if !d.needed {
        return vec![format!(
            "No window needed for {app}: nothing changed under {} ({range}, base = {}).",
            cli_kit::shell::join(&d.pathspecs),
            d.base_source
        )];
    }
    let mut lines = vec![format!(
        "{} for {app}: {} changed under {} ({range}, base = {}):",
        bold().apply_to("A window is needed"),
        cli_kit::output::count(d.files.len(), "file"),
        cli_kit::shell::join(&d.pathspecs),
        d.base_source
    )];
    lines.extend(d.files.iter().map(|f| format!("  {f}")));
    lines
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn window_cmd(args: cli::WindowArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    interrupt::install();
    let app = args.app.resolve()?;
    if args.command.is_empty() {
        return Err(usage("give the deploy step to run after --, e.g. maintenance-window -a APP -- migrate-restart -a APP --restart none"));
    }
    args.confirm.check(&app)?;
    // Before the site goes into maintenance: a COMMAND that cannot start would be found inside
    // the window, with the workers down.
    cli_kit::program::check_startable(&args.command, "nothing was changed")?;
    if args.promote_from.as_deref().is_some_and(|src| src.eq_ignore_ascii_case(&app)) {
        return Err(usage(format!(
            "--promote-from {app} is the app itself: promote from the app that built the slug (e.g. {app}-staging); nothing was changed"
        )));
    }
    if let Some(j) = journal::load(&app)? {
        return Err(refused(format!(
            "a window is already open for {app} (since {}, pid {}): see `maintenance-window status -a {app}`, close it with `maintenance-window restore -a {app}`; nothing was changed",
            j.opened_at, j.pid
        )));
    }
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let cwd = std::env::current_dir()?;
    // The generation decides where the base commit comes from and whether a promotion can be
    // made here; it is read beside the decision.
    let (decision, info) = std::thread::scope(|s| {
        let info = s.spawn(|| client.app_info(&app));
        (plan::decide(&client, &app, &args.diff, &cwd), cli_kit::join(info))
    });
    let platform = info?.platform();
    out.debug(format!("{app} runs on {platform}"));
    let decision = decision?;
    report_decision(&out, &app, &decision);
    if !decision.needed {
        // A prebuilt slug needs no window by itself: release it with the site up.
        if let Some(src) = &args.promote_from {
            let plan = window::plan_promotion(&client, &app, &platform, src)?;
            let release =
                window::release_promotion(&client, &out, &app, &plan, "maintenance-window, no window needed")?;
            out.say(format!("Released v{} on {app} from {}, without maintenance.", release.version, plan.describe()));
            if release.status == "pending" {
                let vars =
                    if args.db.database_url.is_some() { Default::default() } else { client.config_vars(&app)? };
                let db = cli_kit::database::from_flag_or_app(&args.db, &app, &vars)?;
                let phase = follow_release_phase(&client, &out, &app, &release, db.as_ref(), &args)?;
                if phase.result != PhaseResult::Succeeded {
                    out.bad(format!(
                        "The release phase of v{} {}: `{}` was not run.",
                        release.version,
                        phase_word(phase.result),
                        cli_kit::shell::join(&args.command)
                    ));
                    let report = WindowReport {
                        release_phase: Some(phase.clone()),
                        ..WindowReport::without_window(&app, &platform, decision)
                    };
                    return Ok(finish(&out, &report, phase_exit(phase.result)));
                }
            }
        }
        out.say(format!("Running `{}` without maintenance.", cli_kit::shell::join(&args.command)));
        let ended = command::run(&out, &args.command, &app);
        let status = match ended {
            Ended::Status(s) => s,
            Ended::Abandoned => 130,
        };
        let report =
            WindowReport { command_status: Some(status), ..WindowReport::without_window(&app, &platform, decision) };
        return Ok(finish(&out, &report, exit_with(status)));
    }

    // Everything read before the site goes down: maintenance flag, formation, the slug to promote.
    let before = window::read_before(&client, &app, &platform, args.promote_from.as_deref(), decision.release_version)?;
    let live = Live::of(before.maintenance, &before.formation);
    if live.looks_like_a_window() {
        // Journaling "0 workers" as the state to go back to would leave them at 0 for good.
        return Err(refused(format!(
            "{}. Restore it first, with the restore command that window printed (maintenance-window restore -a {app} --maintenance off --scale {} --confirm {app}, with the quantities from before it); nothing was changed",
            live.unjournaled(&app),
            live.types_at_zero.iter().map(|t| format!("{t}=N")).collect::<Vec<_>>().join(",")
        )));
    }
    let scaled = window::scale_set(&args.scale_down, &before.formation)?;
    out.say(format!(
        "Will turn maintenance on for {app}{}{}, run `{}`, then put everything back.",
        if scaled.is_empty() {
            String::new()
        } else {
            format!(
                ", scale {} to 0",
                scaled
                    .iter()
                    .map(|s| format!("{} ({})", s.process_type, s.quantity_before))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        before.promote.as_ref().map(|(plan, _)| format!(", release {}", plan.describe())).unwrap_or_default(),
        cli_kit::shell::join(&args.command)
    ));
    let db = match before.promote {
        Some(_) => cli_kit::database::from_flag_or_app(&args.db, &app, &before.vars)?,
        None => None,
    };
    if before.promote.is_some() {
        let guard = match (args.lock_wait.0, &db) {
            (Some(budget), Some(_)) => format!(
                "; a DDL statement of it that waits on a lock longer than {} is cancelled (the release then fails and the window holds)",
                format_duration(budget)
            ),
            (None, Some(_)) => "; its lock waits are watched, nothing is cancelled (--lock-wait off)".into(),
            (_, None) => "; no database to watch".into(),
        };
        out.say(format!("The release starts {app}'s release phase: COMMAND runs only after it succeeded{guard}."));
    }
    confirm_destructive(&out, &app, args.confirm.answer(), &format!("Open a maintenance window on {app}?"))?;

    let mut j = window::new_journal(&app, &before, scaled, &args.command);
    out.note(format!("If this run dies, put everything back from any machine with:\n  {}", restore_command(&j)));
    let mut t = Timings::default();
    let started = Instant::now();
    let calls_before = client.calls_made();
    let mut report = WindowReport { window: true, ..WindowReport::without_window(&app, &platform, decision) };
    let drained = window::open(&client, &out, &mut j, args.drain_timeout)?;
    t.open_ms = ms_since(started);
    if !drained {
        hold(
            &out,
            &j,
            &format!("the scaled-down dynos did not stop within {}", secs(args.drain_timeout.as_millis() as u64)),
        );
        report.record(WindowResult::Held, None, t, &j);
        return Ok(finish(&out, &report, Exit::NotVerified));
    }
    if j.promotion.is_some() {
        let p = Instant::now();
        let release = match window::promote(&client, &out, &mut j) {
            Ok(r) => r,
            Err(e) => {
                hold(&out, &j, &format!("the promotion failed: {}", cli_kit::one_line(&e)));
                report.record(WindowResult::Held, None, t, &j);
                return Ok(finish(&out, &report, Exit::Failed));
            }
        };
        t.promote_ms = ms_since(p);
        // The new release runs the app's release phase before it becomes current: COMMAND and
        // the restore wait for it, and a failed one holds the window.
        if let Some(release) = release.filter(|r| r.status == "pending") {
            let r = Instant::now();
            let phase = follow_release_phase(&client, &out, &app, &release, db.as_ref(), &args)?;
            t.release_phase_ms = ms_since(r);
            j.steps.push(format!("release phase of v{} {}", release.version, phase_word(phase.result)));
            journal::save(&j)?;
            let result = phase.result;
            let stays_on =
                phase.previous_version.map(|v| format!("v{v}")).unwrap_or_else(|| "its current release".into());
            report.release_phase = Some(phase);
            if result != PhaseResult::Succeeded {
                hold(
                    &out,
                    &j,
                    &format!(
                        "the release phase of v{} {}: {app} stays on {stays_on}, and nothing is scaled back up behind it",
                        release.version,
                        phase_word(result)
                    ),
                );
                report.record(WindowResult::Held, None, t, &j);
                return Ok(finish(&out, &report, phase_exit(result)));
            }
        }
    }
    let c = Instant::now();
    let ended = command::run(&out, &args.command, &app);
    t.command_ms = ms_since(c);
    let status = match ended {
        Ended::Status(0) => 0,
        Ended::Status(s) => s,
        Ended::Abandoned => 130,
    };
    if status != 0 && args.on_failure == OnFailure::Hold {
        hold(&out, &j, &format!("`{}` exited with status {status}", cli_kit::shell::join(&args.command)));
        report.record(WindowResult::Held, Some(status), t, &j);
        return Ok(finish(&out, &report, exit_with(status)));
    }
    let closing = Instant::now();
    window::close(&client, &j)?;
    t.close_ms = ms_since(closing);
    t.window_ms = ms_since(started);
    t.api_calls_in_window = client.calls_made() - calls_before;
    let verdict = if status == 0 { "closed" } else { "restored after failure" };
    out.ok(format!(
        "window {verdict}: the site was in maintenance for {} (open {}, promote {}, release phase {}, command {}, close {}); {} API calls inside",
        secs(t.window_ms),
        secs(t.open_ms),
        secs(t.promote_ms),
        secs(t.release_phase_ms),
        secs(t.command_ms),
        secs(t.close_ms),
        t.api_calls_in_window
    ));
    let result = if status == 0 { WindowResult::Closed } else { WindowResult::Restored };
    report.record(result, Some(status), t, &j);
    Ok(finish(&out, &report, exit_with(status)))
}

/// Follows the release phase a promotion started, under the lock-wait budget.
fn follow_release_phase(
    client: &heroku_api::Client,
    out: &Output,
    app: &str,
    release: &heroku_api::Release,
    db: Option<&cli_kit::ResolvedDatabase>,
    args: &cli::WindowArgs,
) -> anyhow::Result<release_phase::ReleasePhaseReport> {
    let previous = release_phase::current_release(client, app).ok().flatten().map(|r| r.version);
    let opts = release_phase::Options {
        lock_wait: args.lock_wait.0,
        deadline: None,
        timeout: args.release_timeout,
        application_name: None,
        session_name: format!("{TOOL}-release-watch"),
    };
    let cx = release_phase::Context { client, out, app, db };
    let phase = release_phase::follow(&cx, release, previous, &opts)?;
    match phase.result {
        PhaseResult::Succeeded => out.ok(format!("the release phase of v{} succeeded", release.version)),
        other => {
            out.bad(format!("the release phase of v{} {}", release.version, phase_word(other)));
            for l in &phase.output_tail {
                out.say(format!("  {} {l}", red().apply_to("│")));
            }
        }
    }
    Ok(phase)
}

fn phase_word(r: PhaseResult) -> &'static str {
    match r {
        PhaseResult::Succeeded => "succeeded",
        PhaseResult::Failed => "failed",
        PhaseResult::Interrupted => "was left running (interrupted)",
        PhaseResult::TimedOut => "had not ended in time",
        PhaseResult::Superseded => "was superseded by a newer release",
    }
}

fn phase_exit(r: PhaseResult) -> Exit {
    match r {
        PhaseResult::Succeeded => Exit::Success,
        PhaseResult::Failed => Exit::Failed,
        PhaseResult::Interrupted => Exit::Interrupted,
        PhaseResult::TimedOut | PhaseResult::Superseded => Exit::NotVerified,
    }
}

/// Prints the report (`--json`) and returns the exit code.
fn finish(out: &Output, report: &impl serde::Serialize, exit: Exit) -> Exit {
    out.report(report);
    exit
}

fn hold(out: &Output, j: &journal::Journal, why: &str) {
    out.bad(format!("{} {why}. Holding the window; this is what is held:", red().apply_to("Window held:")));
    for l in window::describe(j) {
        out.say(format!("  {l}"));
    }
    if let Ok(p) = journal::path(&j.app) {
        out.say(format!("  journal: {}", p.display()));
    }
    out.say(format!("Reopen with: maintenance-window restore -a {}", j.app));
    out.say(format!("From another machine: {}", restore_command(j)));
}

/// COMMAND's status, passed through unchanged.
fn exit_with(status: i32) -> Exit {
    match status {
        0 => Exit::Success,
        other => Exit::Other(other.clamp(1, 255) as u8),
    }
}

fn status_cmd(args: cli::AppOnly) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    let j = journal::load(&app)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    // The live state is what matters most when no journal is here; with one, the journal
    // still answers if the API does not.
    let live = match (Live::read(&client, &app), &j) {
        (Ok(l), _) => Some(l),
        (Err(e), Some(_)) => {
            out.warn(format!(
                "could not read {app}'s live state ({}); showing the journal only",
                cli_kit::one_line(&e)
            ));
            None
        }
        (Err(e), None) => return Err(e),
    };
    let opened_elsewhere = j.is_none() && live.as_ref().is_some_and(|l| l.maintenance);
    match (&j, &live) {
        (Some(j), _) => {
            let alive = std::path::Path::new(&format!("/proc/{}", j.pid)).exists();
            out.say(format!(
                "{} for {app}: {}",
                red().apply_to("An open maintenance window"),
                if alive {
                    format!("pid {} may still be running it", j.pid)
                } else {
                    format!("the process that opened it (pid {}) is gone", j.pid)
                }
            ));
            for l in window::describe(j) {
                out.say(format!("  {l}"));
            }
            if let Some(l) = &live {
                out.say(format!("  now: {}", describe_live(l)));
            }
            out.say(format!("Put back exactly what was journaled: maintenance-window restore -a {app}"));
            out.say(format!("From another machine: {}", restore_command(j)));
        }
        (None, Some(l)) if l.maintenance => {
            out.bad(l.unjournaled(&app));
            out.say(format!("  now: {}", describe_live(l)));
            out.say(format!(
                "Restore with the command the window printed when it opened (maintenance-window restore -a {app} --maintenance off --scale TYPE=N,… --confirm {app}), or ask whoever opened it."
            ));
        }
        _ => out.ok(format!("No open maintenance window for {app}.")),
    }
    let open = j.is_some() || opened_elsewhere;
    let report = StatusReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        restore_command: j.as_ref().map(restore_command),
        app,
        open,
        opened_elsewhere,
        journal: j,
        live,
    };
    Ok(finish(&out, &report, if open { Exit::WindowOpen } else { Exit::Success }))
}

fn describe_live(l: &Live) -> String {
    let quantities: Vec<String> = l.quantities.iter().map(|(t, q)| format!("{t}={q}")).collect();
    format!("maintenance {}, {}", if l.maintenance { "on" } else { "off" }, quantities.join(", "))
}

/// `restore`: what this machine's journal recorded, or the values given (the window's printed
/// restore command, run from another machine).
fn restore_cmd(args: cli::RestoreArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let local = journal::load(&app)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let (j, from_journal) = match (local, args.maintenance) {
        (Some(j), None) => (j, true),
        (local, Some(m)) => {
            let live = Live::read(&client, &app)?;
            let given = journal::Journal {
                version: journal::VERSION,
                app: app.clone(),
                opened_at: String::new(),
                pid: 0,
                maintenance_before: m == cli::OnOff::On,
                scaled: live::parse_scale(&args.scale, &live)?,
                steps: Vec::new(),
                promotion: None,
                command: Vec::new(),
            };
            if let Some(j) = local {
                if (j.maintenance_before, &j.scaled) != (given.maintenance_before, &given.scaled) {
                    return Err(usage(format!(
                        "a window journal for {app} is on this machine and records other values ({}); run `maintenance-window restore -a {app}` to put back what it recorded; nothing was changed",
                        restore_command(&j)
                    )));
                }
                (j, true)
            } else {
                (given, false)
            }
        }
        (None, None) => {
            let live = Live::read(&client, &app)?;
            if live.maintenance {
                return Err(refused(format!(
                    "{}; give the values to put back, as the window printed them: maintenance-window restore -a {app} --maintenance off --scale TYPE=N,… --confirm {app}; nothing was changed",
                    live.unjournaled(&app)
                )));
            }
            out.ok(format!("No open maintenance window for {app}; nothing to restore."));
            let report = RestoreReport {
                schema_version: cli_kit::SCHEMA_VERSION,
                app,
                restored: false,
                source: None,
                journal: None,
            };
            return Ok(finish(&out, &report, Exit::Success));
        }
    };
    let plan = describe_restore(&j);
    out.say(format!(
        "Will put back on {app}: {plan}{}",
        if from_journal { " (from this machine's journal)" } else { "" }
    ));
    if from_journal {
        // This machine recorded these values itself: restoring them is what the journal is for.
        out.begin_change();
    } else {
        confirm_destructive(&out, &app, args.confirm.answer(), &format!("Put back {plan} on {app}?"))?;
    }
    window::close(&client, &j)?;
    out.ok(format!("restored {app}: {plan}"));
    let report = RestoreReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app,
        restored: true,
        source: Some(if from_journal { RestoreSource::Journal } else { RestoreSource::Flags }),
        journal: Some(j),
    };
    Ok(finish(&out, &report, Exit::Success))
}

/// `maintenance off, clock=1, worker=3`.
fn describe_restore(j: &journal::Journal) -> String {
    let scaled: Vec<String> = j.scaled.iter().map(|s| format!("{}={}", s.process_type, s.quantity_before)).collect();
    format!(
        "maintenance {}{}",
        if j.maintenance_before { "left on (it was on before the window)" } else { "off" },
        if scaled.is_empty() { String::new() } else { format!(", {}", scaled.join(", ")) }
    )
}
