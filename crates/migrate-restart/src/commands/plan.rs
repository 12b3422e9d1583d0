//! `migrate-restart plan`, as its steps: the migration runs on a scratch database that has the
//! app's schema, where a recorder writes down every relation lock each statement's transaction
//! holds; it runs again on a sample shaped by production's statistics to time each statement;
//! production's busiest queries are prepared before and after; then the app's database is read
//! once for sessions in the way. The steps live in the `migration_plan` crate; the wording
//! beside this command (`render`). Nothing is changed on the app's database.
//!
//! The scratch database is, by default, a copy the tool makes: the app's schema read through
//! its own connection (`schema_copy`: no lock outlives the statement that took it), with the
//! rows of the migration-history tables, recreated in a local PostgreSQL server of the same
//! major version and thrown away after. `--scratch-url` gives one instead (a local copy with
//! the schema, e.g. the development database `bin/rails db:migrate` already runs on); it is
//! never the app's own: a scratch URL naming the same database as the app's is refused before
//! anything runs.

pub(crate) mod render;
mod window;

pub use migration_plan::{Break, DEFAULT_TOP};
pub use window::RunningRelease;

use cli_kit::{resolve_database, Exit, Output};
use migration_plan::scratch::{self, Scratch};
use migration_plan::{breaks, estimate};
use pg_locks::Connection;

use crate::cli::PlanArgs;
use crate::report::{PlanReport, PlanVerdict};
use crate::{procfile, TOOL};

/// Records the plan on a scratch database and checks it against the app's.
pub fn run(args: PlanArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    cli_kit::interrupt::install();
    let command = migration_argv(&args)?;
    let db =
        resolve_database(None, &args.db, &args.app, || cli_kit::api_client(TOOL, env!("CARGO_PKG_VERSION"), &out))?;
    let mut live = pg_locks::connect(&db.connect_options(&format!("{TOOL}-plan")))?;
    let production = pg_locks::database_identity(live.client())?;
    // What the running release sends, read once (the only other read of production's).
    let statements = breaks::read_production(live.client(), args.top);
    let framework = breaks::framework(live.client());
    let scratch = scratch_for(&args, &out, &db, &production, &mut live)?;
    out.show(&render::Planning::WillRecordPlan {
        command: cli_kit::shell::join(&command),
        scratch: scratch.name(),
        database: db.describe(),
    });
    let mut recorded = migration_plan::record(TOOL, &scratch, &command, &statements, framework)?;
    let checked = check_running_release(&out, &mut live, &scratch, &statements, framework, &mut recorded)?;
    let migration_plan::record::Recorded { mut plan, broken, unseen, .. } = recorded;
    let statistics = estimate::read_statistics(live.client(), &plan)?;
    let measured = measure(&out, &scratch, &command, &statistics);
    // How long the running release meets the migrated schema: only for an app (a URL alone
    // names no formation).
    let running_release = match args.app.resolve() {
        Ok(app) => Some(window::read(&cli_kit::api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?, &app)),
        Err(_) => None,
    };
    let scratch_name = scratch.name();
    drop(scratch.server);
    let found = migration_plan::read_production(live.client(), &plan)?;
    estimate::apply(&mut plan, &measured, &statistics, &found.activity);
    let verdict = found.verdict(&plan, scratch.copy.as_ref(), &broken, &unseen, args.lock_wait);
    out.show(&render::Planning::Plan {
        plan: &plan,
        obstacles: &found.obstacles,
        older: &found.older,
        activity: &found.activity,
        breaks: &broken,
        running_release: running_release.as_ref(),
        checked: &checked,
        verdict: &verdict,
        db: &db,
        budget: args.lock_wait,
    });
    let (verdict, cannot_vouch) = verdict;
    out.report(&PlanReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        database: db.describe(),
        made_for: production.identity,
        scratch: scratch_name,
        schema_copy: scratch.copy,
        command,
        statements: plan.statements,
        obstacles: found.obstacles,
        older_transactions: found.older,
        activity: found.activity,
        breaks: broken,
        running_release,
        statements_checked: checked.statements,
        breaks_unchecked: checked.unchecked,
        breaks_sampled_secs: checked.sampled_for.map(|d| d.as_secs()),
        cannot_vouch,
        verdict,
    });
    Ok(match verdict {
        PlanVerdict::Clear => Exit::Success,
        PlanVerdict::WouldBreak => Exit::WouldBreak,
        PlanVerdict::WouldBlock => Exit::WouldBlock,
        PlanVerdict::WouldWait => Exit::BlockingFound,
        PlanVerdict::CannotVouch => Exit::NotVerified,
    })
}

/// How production's own queries were checked: from `pg_stat_statements`; or, when it cannot
/// be read and the migration changes what the running release relies on, by the weaker sample
/// of production's sessions, whose breaks join the others and whose limits the plan cannot
/// vouch past. A migration that only adds is not sampled for (nothing it relies on changed).
fn check_running_release(
    out: &Output,
    live: &mut pg_locks::Conn,
    scratch: &Scratch,
    statements: &breaks::Statements,
    framework: breaks::Framework,
    recorded: &mut migration_plan::record::Recorded,
) -> anyhow::Result<breaks::Checked> {
    let why = match statements {
        breaks::Statements::Read(q) => return Ok(breaks::Checked { statements: q.len(), ..Default::default() }),
        breaks::Statements::Unavailable(why) => why,
    };
    if recorded.narrowed.is_empty() {
        return Ok(breaks::Checked { unchecked: Some(why.clone()), ..Default::default() });
    }
    out.show(&render::Planning::Sampling { window: breaks::ACTIVITY_SAMPLE });
    let sampled = breaks::sample_activity(live.client(), breaks::ACTIVITY_SAMPLE);
    let found = migration_plan::record::breaks_among_sampled(TOOL, scratch, &sampled, &recorded.plan, framework)?;
    recorded.broken.extend(found);
    recorded.unseen.push(render::only_sampled(&recorded.narrowed, why, breaks::ACTIVITY_SAMPLE));
    Ok(breaks::Checked {
        statements: sampled.len(),
        unchecked: Some(why.clone()),
        sampled_for: Some(breaks::ACTIVITY_SAMPLE),
    })
}

/// Where the migration runs: the database `--scratch-url` names (never the app's own), or the
/// tool's copy of the app's schema, said once made.
fn scratch_for(
    args: &PlanArgs,
    out: &Output,
    db: &cli_kit::ResolvedDatabase,
    production: &pg_locks::ServerDatabase,
    live: &mut pg_locks::Conn,
) -> anyhow::Result<Scratch> {
    if let Some(url) = &args.scratch_url {
        let scratch = scratch::scratch_database(url)?;
        scratch::refuse_production_as_scratch(db, production, &scratch, TOOL)?;
        return Ok(Scratch::named(scratch));
    }
    // Without a local server of production's version, the pinned build is fetched: said once,
    // its progress on a terminal.
    let mut progress: Option<cli_kit::output::Spinner> = None;
    let mut on_fetch = |f: &scratch::Fetching| match &progress {
        None => {
            out.show(&render::Planning::Fetching { fetching: f });
            progress = Some(out.spinner(render::fetch_progress(f)));
        }
        Some(spinner) => spinner.set_message(render::fetch_progress(f)),
    };
    let copy = scratch::copy_schema(db, live, TOOL, &mut on_fetch);
    if let Some(spinner) = progress {
        spinner.finish();
    }
    let copy = copy?;
    if let Some(c) = &copy.copy {
        out.show(&render::Planning::Copied { database: db.describe(), copy: c });
    }
    Ok(copy)
}

/// How long each statement holds its locks: measured on a sample shaped by production's
/// statistics, on the tool's own copy only (a --scratch-url database is the user's).
fn measure(
    out: &Output,
    scratch: &Scratch,
    command: &[String],
    statistics: &std::collections::BTreeMap<String, estimate::TableStats>,
) -> estimate::Measured {
    match (&scratch.server, &scratch.dump) {
        (Some(server), Some(dump)) => {
            out.show(&render::Planning::Measuring { rows: estimate::SAMPLE_ROWS });
            estimate::measure(&server.url(), dump, command, statistics)
        }
        _ => estimate::Measured::not_measured("--scratch-url: holds are measured only on the tool's own copy"),
    }
}

/// The command as given after `--`, or the Procfile's `release:` line through `sh -c`.
fn migration_argv(args: &PlanArgs) -> anyhow::Result<Vec<String>> {
    if !args.command.is_empty() {
        cli_kit::program::check_startable(&args.command, "nothing was run")?;
        return Ok(args.command.clone());
    }
    let cwd = std::env::current_dir()?;
    Ok(vec!["sh".into(), "-c".into(), procfile::command(None, &cwd)?])
}
