//! `migrate-restart follow`: pick up a detached migration from any machine and conclude it.

use std::time::Duration;

use cli_kit::{confirm_destructive, usage, Exit};
use heroku_api::Dyno;

use crate::attempt::Attempt;
use crate::cli::FollowArgs;
use crate::conclude::{self, Aftermath};
use crate::ending::Ending;
use crate::render;
use crate::report::{MigrateReport, Preflight};
use crate::restart::Plan;
use crate::session::Start;
use crate::{log_follower, pending};

/// How long the log's history may take to arrive when asking whether it knows a dyno.
const NEVER_HEARD_OF: Duration = Duration::from_secs(5);

/// Picks up a detached migration — this machine's record of it, or the dyno and `--restart`
/// given — and concludes it as the run that started it would have.
pub fn run(args: FollowArgs) -> anyhow::Result<Exit> {
    if args.dyno.as_deref().is_some_and(|d| d.trim().is_empty()) {
        return Err(usage("DYNO is empty: name the migration's one-off dyno, e.g. run.1234 (or leave it out to follow the one this machine started)"));
    }
    let start = Start::new(&args.output, &args.app, &args.confirm)?;
    let app = start.app.clone();
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
    let s = start.read_app(&args.db)?;
    let plan = Plan::parse(&restart_arg, &s.formation)?;
    // The dyno may have ended already: its output and exit line are still in the log.
    let listed = s.dynos.iter().find(|d| d.name == dyno_name).cloned();
    let gone = listed.is_none();
    let dyno = listed.unwrap_or_else(|| remembered(&dyno_name, record.as_ref()));
    if !dyno.is_one_off() {
        return Err(usage(format!("{dyno_name} is a {} dyno, not a one-off migration", dyno.process_type)));
    }
    let before = record.as_ref().map(|p| p.before.clone()).unwrap_or_else(|| s.dynos.clone());
    let command = record.as_ref().map(|p| p.command.clone()).unwrap_or_else(|| dyno.command.clone());
    s.out.show(&render::Before::WillFollow { dyno: &dyno_name, app: &app, then: plan.describe() });
    let question = format!("Follow {dyno_name} and restart {app} when it succeeds?");
    confirm_destructive(&s.out, &app, args.confirm.answer(), &question)?;
    if gone && s.platform.is_fir() {
        // Nothing to read: a Fir log session starts when it is created.
        s.out.show(&render::Concluded::EndedOnFir { dyno: &dyno_name, app: &app, platform: s.platform.to_string() });
        return Ok(Exit::NotVerified);
    }
    let Some(attempt) = follow_to_the_end(&s, &args, dyno, gone && record.is_none())? else {
        return Err(never_heard_of(&app, &dyno_name));
    };
    let report = MigrateReport::begin(&app, &s.platform, &command, Preflight::Skipped { skipped: true });
    let ctx = Aftermath {
        client: &s.client,
        out: &s.out,
        app: &app,
        command: &command,
        plan: &plan,
        restart_arg: &restart_arg,
        formation: &s.formation,
        before: &before,
        restart_timeout: args.restart_timeout,
        timeout: args.timeout,
        db: s.db.as_ref(),
        current: Some(&s.dynos),
    };
    conclude::conclude(&ctx, report, &[attempt])
}

/// A dyno no longer listed, as this machine's record remembers it (or by its name alone).
fn remembered(dyno_name: &str, record: Option<&pending::Pending>) -> Dyno {
    Dyno {
        id: record.map(|p| p.dyno_id.clone()).unwrap_or_default(),
        name: dyno_name.to_string(),
        // `run.1234` on Cedar, `run-…` on Fir.
        process_type: dyno_name.split(['.', '-']).next().unwrap_or("run").to_string(),
        state: "gone".into(),
        command: record.map(|p| p.command.clone()).unwrap_or_default(),
        size: None,
        created_at: String::new(),
        updated_at: String::new(),
        attach_url: None,
        release: None,
    }
}

/// Follows the dyno through the log to its exit, as an attempt timed by what the log measured.
/// `None` when the platform has never heard of it (`unknown`: not listed and not recorded
/// here, and not one line of it in the log's history — a typo, not "it may still be running").
fn follow_to_the_end(
    s: &crate::session::Session,
    args: &FollowArgs,
    dyno: Dyno,
    unknown: bool,
) -> anyhow::Result<Option<Attempt>> {
    let started = std::time::Instant::now();
    if unknown && !log_follower::history_mentions(&s.client, &s.app, &dyno.name, started + NEVER_HEARD_OF)? {
        return Ok(None);
    }
    let gone_grace = (dyno.state == "gone").then_some(Duration::from_secs(10));
    let source = log_follower::Source { opened: None, history: !s.platform.is_fir(), on_line: None };
    let followed =
        log_follower::follow(&s.client, &s.out, &s.app, &dyno.name, started + args.timeout, gone_grace, source)?;
    if unknown && followed.ran.0.is_none() && matches!(followed.ending, Ending::Lost(_)) {
        return Ok(None);
    }
    // `--timeout` ends this follow, never the migration: it goes on, and follow picks it up again.
    let ending = match followed.ending {
        Ending::TimedOut => Ending::Lost(format!(
            "followed for {} (--timeout); the migration goes on",
            cli_kit::format_duration(args.timeout)
        )),
        other => other,
    };
    // Timed by what the platform's log measured — its first line and its exit line — not by
    // how long this follow took (a run that ended before it took milliseconds to read).
    let (duration, finished_at) = match followed.ran {
        (Some(from), Some(to)) => (to.duration_since(from).unwrap_or_default(), to),
        (_, Some(to)) => (started.elapsed(), to),
        _ => (started.elapsed(), std::time::SystemTime::now()),
    };
    Ok(Some(Attempt {
        dyno,
        ending,
        tail: followed.tail,
        hit_lock_timeout: followed.lock_timeout,
        outside_budget: Vec::new(),
        pgoptions: true,
        left_behind: None,
        duration,
        lock_waits: Vec::new(),
        finished_at,
        log_reopens: followed.reopened,
    }))
}

/// A dyno not listed, not recorded here, and with no line in the log's history.
fn never_heard_of(app: &str, dyno_name: &str) -> anyhow::Error {
    usage(format!(
        "{app} has no dyno {dyno_name} and its log has no line of one: check the name with heroku ps -a {app} (a migration's one-off is run.N)"
    ))
}
