//! A window (`maintenance-window` without a subcommand), as its steps over the journal: check
//! the arguments, decide, then open → promote → the release phase → COMMAND → close; any step
//! that fails holds the window, said with what is held and how to restore it.

use std::time::Instant;

use cli_kit::{api_client, confirm_destructive, interrupt, refused, usage, Exit, Output};
use heroku_api::Client;
use release_phase::PhaseResult;

use crate::cli::{self, OnFailure};
use crate::command::{self, Ended};
use crate::journal::Scaled;
use crate::live::{restore_command, Live};
use crate::plan::Decision;
use crate::plan_cmd::report_decision;
use crate::render::secs;
use crate::report::Timings;
use crate::report::{WindowReport, WindowResult};
use crate::window::{self, ms_since, Before};
use crate::{finish, journal, plan, render, TOOL};

/// Decides, then runs COMMAND with or without a window.
pub fn run(args: cli::WindowArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    interrupt::install();
    let app = args.app.resolve()?;
    check_arguments(&args, &app)?;
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
    let cx = Cx { client: &client, out: &out, app: &app, args: &args, platform: &platform };
    if !decision.needed {
        return without_window(&cx, decision);
    }
    // Everything read before the site goes down: maintenance flag, formation, the slug to promote.
    let before = window::read_before(&client, &app, &platform, args.promote_from.as_deref(), decision.release_version)?;
    refuse_what_looks_like_a_window(&app, &before)?;
    let scaled = window::scale_set(&args.scale_down, &before.formation)?;
    let db = match before.promote {
        Some(_) => cli_kit::database::from_flag_or_app(&args.db, &app, &before.vars)?,
        None => None,
    };
    announce(&cx, &before, &scaled, db.is_some());
    confirm_destructive(&out, &app, args.confirm.answer(), &format!("Open a maintenance window on {app}?"))?;
    let j = window::new_journal(&app, &before, scaled, &args.command);
    out.show(&render::Opening::RestoreWith { command: restore_command(&j) });
    let w = Window {
        cx,
        j,
        t: Timings::default(),
        started: Instant::now(),
        calls_before: client.calls_made(),
        report: WindowReport { window: true, ..WindowReport::without_window(&app, &platform, decision) },
    };
    w.run(db.as_ref())
}

/// What every step reads.
struct Cx<'a> {
    client: &'a Client,
    out: &'a Output,
    app: &'a str,
    args: &'a cli::WindowArgs,
    platform: &'a heroku_api::Platform,
}

/// Mistakes found before the first request, so nothing is changed by them.
fn check_arguments(args: &cli::WindowArgs, app: &str) -> anyhow::Result<()> {
    if args.command.is_empty() {
        return Err(usage("give the deploy step to run after --, e.g. maintenance-window -a APP -- migrate-restart -a APP --restart none"));
    }
    args.confirm.check(app)?;
    // Before the site goes into maintenance: a COMMAND that cannot start would be found inside
    // the window, with the workers down.
    cli_kit::program::check_startable(&args.command, "nothing was changed")?;
    if args.promote_from.as_deref().is_some_and(|src| src.eq_ignore_ascii_case(app)) {
        return Err(usage(format!(
            "--promote-from {app} is the app itself: promote from the app that built the slug (e.g. {app}-staging); nothing was changed"
        )));
    }
    if let Some(j) = journal::load(app)? {
        return Err(refused(format!(
            "a window is already open for {app} (since {}, pid {}): see `maintenance-window status -a {app}`, close it with `maintenance-window restore -a {app}`; nothing was changed",
            j.opened_at, j.pid
        )));
    }
    Ok(())
}

/// No schema change: COMMAND runs with the site up (after a promotion's release phase, when
/// there is one: a prebuilt slug needs no window by itself).
fn without_window(cx: &Cx, decision: Decision) -> anyhow::Result<Exit> {
    let Cx { client, out, app, args, platform } = *cx;
    if let Some(src) = &args.promote_from {
        let plan = window::plan_promotion(client, app, platform, src)?;
        let release = window::release_promotion(client, out, app, &plan, "maintenance-window, no window needed")?;
        out.show(&render::Running::ReleasedWithoutWindow { app, version: release.version, from: plan.describe() });
        if release.status == "pending" {
            let vars = if args.db.database_url.is_some() { Default::default() } else { client.config_vars(app)? };
            let db = cli_kit::database::from_flag_or_app(&args.db, app, &vars)?;
            let phase = follow_release_phase(client, out, app, &release, db.as_ref(), args)?;
            if phase.result != PhaseResult::Succeeded {
                out.show(&render::Running::CommandNotRun {
                    version: release.version,
                    phase: phase_word(phase.result),
                    command: cli_kit::shell::join(&args.command),
                });
                let exit = phase_exit(phase.result);
                let report = WindowReport {
                    release_phase: Some(phase),
                    ..WindowReport::without_window(app, platform, decision)
                };
                return Ok(finish(out, &report, exit));
            }
        }
    }
    out.show(&render::Running::WithoutWindow { command: cli_kit::shell::join(&args.command) });
    let ended = command::run(out, &args.command, app);
    if ended == Ended::CannotStart {
        let report = WindowReport::without_window(app, platform, decision);
        return Ok(finish(out, &report, Exit::Usage));
    }
    let status = status_of(ended);
    let report = WindowReport { command_status: Some(status), ..WindowReport::without_window(app, platform, decision) };
    Ok(finish(out, &report, exit_with(status)))
}

/// An app in maintenance with types at 0 and no journal here: journaling "0 workers" as the
/// state to go back to would leave them at 0 for good.
fn refuse_what_looks_like_a_window(app: &str, before: &Before) -> anyhow::Result<()> {
    let live = Live::of(before.maintenance, &before.formation);
    if !live.looks_like_a_window() {
        return Ok(());
    }
    Err(refused(format!(
        "{}. Restore it first, with the restore command that window printed (maintenance-window restore -a {app} --maintenance off --scale {} --confirm {app}, with the quantities from before it); nothing was changed",
        live.unjournaled(app),
        live.types_at_zero.iter().map(|t| format!("{t}=N")).collect::<Vec<_>>().join(",")
    )))
}

/// What the window will do, said before the confirmation.
fn announce(cx: &Cx, before: &Before, scaled: &[Scaled], has_db: bool) {
    let (out, app, args) = (cx.out, cx.app, cx.args);
    out.show(&render::Opening::WillOpen {
        app,
        scaled: scaled.iter().map(|s| (s.process_type.as_str(), s.quantity_before)).collect(),
        release: before.promote.as_ref().map(|(plan, _)| plan.describe()),
        command: cli_kit::shell::join(&args.command),
    });
    if before.promote.is_some() {
        out.show(&render::Opening::ReleasePhaseFirst { app, budget: args.lock_wait.0, watched: has_db });
    }
}

/// An open window: its journal, what each step took, and the report it fills in.
struct Window<'a> {
    cx: Cx<'a>,
    j: journal::Journal,
    t: Timings,
    started: Instant,
    calls_before: u64,
    report: WindowReport,
}

impl Window<'_> {
    /// Open → promote (and its release phase) → COMMAND → close. A step that cannot be
    /// verified holds the window and ends the run with its exit code.
    fn run(mut self, db: Option<&cli_kit::ResolvedDatabase>) -> anyhow::Result<Exit> {
        if let Some(exit) = self.open()? {
            return Ok(exit);
        }
        if let Some(exit) = self.promote(db)? {
            return Ok(exit);
        }
        let c = Instant::now();
        let ended = command::run(self.cx.out, &self.cx.args.command, self.cx.app);
        self.t.command_ms = ms_since(c);
        if ended == Ended::CannotStart {
            // Nothing was deployed: holding the site down for it protects nothing.
            return self.closed_without_command();
        }
        let status = status_of(ended);
        if status != 0 && self.cx.args.on_failure == OnFailure::Hold {
            let why = format!("`{}` exited with status {status}", cli_kit::shell::join(&self.cx.args.command));
            return Ok(self.held(&why, Some(status), exit_with(status)));
        }
        self.close(status)
    }

    /// Maintenance on, the types scaled down, and their dynos seen gone.
    fn open(&mut self) -> anyhow::Result<Option<Exit>> {
        let drain = self.cx.args.drain_timeout;
        let drained = window::open(self.cx.client, self.cx.out, &mut self.j, drain)?;
        self.t.open_ms = ms_since(self.started);
        Ok((!drained).then(|| {
            let why = format!("the scaled-down dynos did not stop within {}", secs(drain.as_millis() as u64));
            self.held(&why, None, Exit::NotVerified)
        }))
    }

    /// The prebuilt slug released, and its release phase followed: COMMAND and the restore
    /// wait for it, and a failed one holds the window.
    fn promote(&mut self, db: Option<&cli_kit::ResolvedDatabase>) -> anyhow::Result<Option<Exit>> {
        if self.j.promotion.is_none() {
            return Ok(None);
        }
        let Cx { client, out, app, args, .. } = self.cx;
        let p = Instant::now();
        let release = match window::promote(client, out, &mut self.j) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the promotion failed: {}", cli_kit::one_line(&e));
                return Ok(Some(self.held(&why, None, Exit::Failed)));
            }
        };
        self.t.promote_ms = ms_since(p);
        let Some(release) = release.filter(|r| r.status == "pending") else { return Ok(None) };
        let r = Instant::now();
        let phase = follow_release_phase(client, out, app, &release, db, args)?;
        self.t.release_phase_ms = ms_since(r);
        self.j.steps.push(format!("release phase of v{} {}", release.version, phase_word(phase.result)));
        journal::save(&self.j)?;
        let result = phase.result;
        let stays_on = phase.previous_version.map(|v| format!("v{v}")).unwrap_or_else(|| "its current release".into());
        self.report.release_phase = Some(phase);
        if result == PhaseResult::Succeeded {
            return Ok(None);
        }
        let why = format!(
            "the release phase of v{} {}: {app} stays on {stays_on}, and nothing is scaled back up behind it",
            release.version,
            phase_word(result)
        );
        Ok(Some(self.held(&why, None, phase_exit(result))))
    }

    /// Everything put back, and how long the site was down.
    fn close(mut self, status: i32) -> anyhow::Result<Exit> {
        let closing = Instant::now();
        window::close(self.cx.client, &self.j)?;
        self.t.close_ms = ms_since(closing);
        self.t.window_ms = ms_since(self.started);
        self.t.api_calls_in_window = self.cx.client.calls_made() - self.calls_before;
        self.cx.out.show(&render::Closing::Closed { failed: status != 0, timings: &self.t });
        let result = if status == 0 { WindowResult::Closed } else { WindowResult::Restored };
        self.report.record(result, Some(status), self.t.clone(), &self.j);
        Ok(finish(self.cx.out, &self.report, exit_with(status)))
    }

    /// COMMAND could not start inside the window: closed at once (everything put back), said,
    /// and the usage error's code (2), as when the check before the window finds it.
    fn closed_without_command(mut self) -> anyhow::Result<Exit> {
        let closing = Instant::now();
        window::close(self.cx.client, &self.j)?;
        self.t.close_ms = ms_since(closing);
        self.t.window_ms = ms_since(self.started);
        self.t.api_calls_in_window = self.cx.client.calls_made() - self.calls_before;
        self.cx.out.show(&render::Closing::ClosedCommandNotStarted {
            command: cli_kit::shell::join(&self.cx.args.command),
            timings: &self.t,
        });
        self.report.record(WindowResult::Restored, None, self.t.clone(), &self.j);
        Ok(finish(self.cx.out, &self.report, Exit::Usage))
    }

    /// The window stays open: said with what is held, recorded, and the run's exit code.
    fn held(&mut self, why: &str, status: Option<i32>, exit: Exit) -> Exit {
        hold(self.cx.out, &self.j, why);
        self.report.record(WindowResult::Held, status, self.t.clone(), &self.j);
        finish(self.cx.out, &self.report, exit)
    }
}

/// COMMAND's status; 130 when it was abandoned after a second interrupt.
fn status_of(ended: Ended) -> i32 {
    match ended {
        Ended::Status(s) => s,
        Ended::Abandoned => 130,
        Ended::CannotStart => unreachable!("a COMMAND that did not start has no status"),
    }
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
        // Inside the window the site is down by choice and the long statement is what the window
        // is for: a statement holding its lock is never cut here, only one waiting for a lock.
        budgets: cli_kit::Budgets { wait: args.lock_wait.0, hold: None },
        deadline: None,
        timeout: args.release_timeout,
        application_name: None,
        session_name: format!("{TOOL}-release-watch"),
    };
    let cx = release_phase::Context { client, out, app, db };
    let phase = release_phase::follow(&cx, release, previous, &opts)?;
    match phase.result {
        PhaseResult::Succeeded => out.show(&render::Running::PhaseSucceeded { version: release.version }),
        other => out.show(&render::Running::PhaseEnded {
            version: release.version,
            phase: phase_word(other),
            tail: &phase.output_tail,
        }),
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

fn hold(out: &Output, j: &journal::Journal, why: &str) {
    out.show(&render::Closing::Held {
        why,
        held: window::describe(j),
        journal: journal::path(&j.app).ok().map(|p| p.display().to_string()),
        app: &j.app,
        restore: restore_command(j),
    });
}

/// COMMAND's status, passed through unchanged.
fn exit_with(status: i32) -> Exit {
    match status {
        0 => Exit::Success,
        other => Exit::Other(other.clamp(1, 255) as u8),
    }
}
