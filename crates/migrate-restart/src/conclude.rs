//! The ending shared by a run and by `follow`: act on how the last attempt ended (restart and
//! verify, say what failed, clean up after an interrupt), record it and render the report.

use std::time::Duration;

use cli_kit::{interrupt, Exit, Output, Poll, ResolvedDatabase};
use heroku_api::{Client, Dyno};

use crate::attempt::{self, Attempt};
use crate::ending::Ending;
use crate::render;
use crate::report::{AttemptReport, MigrateReport, Outcome};
use crate::restart::{self, Plan};
use crate::{pending, record, TOOL};

/// What concluding a run needs: how to restart and verify, and how to clean up.
pub struct Aftermath<'a> {
    /// The Platform API.
    pub client: &'a Client,
    /// Output.
    pub out: &'a Output,
    /// The app.
    pub app: &'a str,
    /// The migration command, recorded with the time it finished.
    pub command: &'a str,
    /// What to restart after a success.
    pub plan: &'a Plan,
    /// `--restart` as given, for printed commands.
    pub restart_arg: &'a str,
    /// The formation before the run.
    pub formation: &'a [heroku_api::Formation],
    /// The dynos before the run (their boot times).
    pub before: &'a [Dyno],
    /// How long the restart may take to be seen.
    pub restart_timeout: Duration,
    /// `--timeout`, for the message when it passed.
    pub timeout: Duration,
    /// The database, to end the migration's session after Ctrl-C.
    pub db: Option<&'a ResolvedDatabase>,
    pub current: Option<&'a [Dyno]>,
}

/// Acts on how the last attempt ended — restart and verify after success, say what failed,
/// clean up after an interrupt or a timeout, say how to follow a run whose end was not seen —
/// and records the outcome. Shared by a run and by `follow`.
pub fn conclude(ctx: &Aftermath, mut report: MigrateReport, attempts: &[Attempt]) -> anyhow::Result<Exit> {
    let Aftermath { client, out, app, command, plan, formation, before, db, .. } = *ctx;
    let (client, out) = (client, out);
    let last = attempts.last().expect("at least one attempt");
    if !matches!(last.ending, Ending::Lost(_)) {
        pending::remove(app);
    }
    let (outcome, exit) = match &last.ending {
        Ending::Exited(0) => {
            out.show(&render::Concluded::Finished { dyno: &last.dyno.name, took: last.duration });
            if let Err(e) = record::save(app, last.finished_at, command) {
                out.show(&render::Concluded::NotRecorded { error: e.to_string() });
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
            out.show(&render::Concluded::Contradictory {
                dyno: &last.dyno.name,
                marker: *marker,
                platform: *platform,
                tail: &last.tail,
            });
            (Outcome::Failed, Exit::Failed)
        }
        Ending::Exited(code) => {
            out.show(&render::Concluded::ExitedNonZero {
                dyno: &last.dyno.name,
                code: *code,
                lock_timeouts: last.hit_lock_timeout.then_some(attempts.len()),
                held_too_long: last.held_too_long(),
                app,
                tail: &last.tail,
            });
            (Outcome::Failed, Exit::Failed)
        }
        Ending::Interrupted => {
            cleanup(client, out, app, &last.dyno, db);
            (Outcome::Interrupted, Exit::Interrupted)
        }
        Ending::TimedOut => {
            out.show(&render::Concluded::PastTimeout { timeout: ctx.timeout });
            cleanup(client, out, app, &last.dyno, db);
            (Outcome::TimedOut, Exit::Failed)
        }
        Ending::Lost(why) => {
            say_not_seen_to_the_end(ctx, last, why);
            (Outcome::Unknown, Exit::NotVerified)
        }
    };
    Ok(finish(out, report, attempts, ctx.restart_arg, outcome, exit))
}

/// A run whose end was not seen: its state now, and how to pick it up.
fn say_not_seen_to_the_end(ctx: &Aftermath, last: &Attempt, why: &str) {
    let (client, out, app) = (ctx.client, ctx.out, ctx.app);
    let state =
        client.dyno_info(app, &last.dyno.id).map(|d| d.state).unwrap_or_else(|_| "gone (no longer listed)".into());
    let dyno = &last.dyno.name;
    if last.dyno.attach_url.is_some() {
        out.show(&render::Concluded::LostAttached { dyno, why, state, app });
    } else {
        let follow = pending::follow_command(app, dyno, ctx.restart_arg);
        out.show(&render::Concluded::LostDetached { dyno, why, state, follow });
    }
}

/// Records how the run ended, prints the report (`--json`) and returns the exit code.
pub fn finish(
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
        lock_timeout: a.hit_lock_timeout,
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

/// After Ctrl-C: stop the one-off dyno by id and see it gone, and end its database session so
/// no DDL is left in the lock queue. A second Ctrl-C stops waiting.
fn cleanup(client: &Client, out: &Output, app: &str, dyno: &Dyno, db: Option<&ResolvedDatabase>) {
    let first = interrupt::count();
    out.show(&render::Cleanup::Stopping { dyno: &dyno.name, interrupted: first > 0 });
    // Closing the rendezvous already ends an attached dyno on the platform, so "not found" is
    // an answer too: the listing below is what proves it gone.
    match client.stop_dyno_if_present(app, &dyno.id) {
        Ok(_) => {
            let mut poll = Poll::new(Duration::from_secs(30));
            let mut gone = false;
            while interrupt::count() <= first {
                if client.dynos(app).map(|l| !l.iter().any(|d| d.id == dyno.id)).unwrap_or(false) {
                    gone = true;
                    break;
                }
                if !poll.wait_next() {
                    break;
                }
            }
            if gone {
                out.show(&render::Cleanup::Stopped { dyno: &dyno.name });
            } else {
                out.show(&render::Cleanup::NotSeenGone { dyno: &dyno.name, app });
            }
        }
        Err(e) => out.show(&render::Cleanup::StopFailed { dyno: &dyno.name, app, error: e.to_string() }),
    }
    if interrupt::count() > first {
        out.show(&render::Cleanup::StoppedWaiting);
        return;
    }
    let Some(db) = db else {
        out.show(&render::Cleanup::NoDatabaseToClean);
        return;
    };
    let name = attempt::session_name(dyno);
    match pg_locks::connect(&db.connect_options(TOOL))
        .and_then(|mut c| pg_locks::end_sessions_named(&mut c, &name, Duration::from_secs(10)))
    {
        Ok(r) if r.remaining.is_empty() => {
            out.show(&render::Cleanup::SessionEnded { name: &name, ended: r.found.len() })
        }
        Ok(r) => out.show(&render::Cleanup::SessionsRemain {
            name: &name,
            pids: &r.remaining,
            selector: db.selector_args(),
            fill_in: db.fill_in(),
        }),
        Err(e) => out.show(&render::Cleanup::SessionNotEnded { error: e.to_string() }),
    }
}
