//! `migrate-restart plan`: the migration runs on a scratch database that has the app's schema,
//! where a recorder writes down every relation lock each DDL statement's transaction holds
//! (`pg_locks::lockplan`); then the app's database is read once for sessions holding or
//! waiting for a conflicting lock on those relations. Nothing is changed on the app's database.
//!
//! The scratch database is the user's (a local copy with the schema, e.g. the development
//! database `bin/rails db:migrate` already runs on). It is never the app's own: a scratch URL
//! naming the same database as the app's is refused before anything runs.

use std::process::{Command, Stdio};

use cli_kit::{fail, refused, resolve_database, usage, Exit, Output, ResolvedDatabase};
use pg_locks::lockplan::{self, LockPlan};
use pg_locks::Connection;

use crate::cli::PlanArgs;
use crate::render;
use crate::report::{PlanReport, PlanVerdict};
use crate::{procfile, TOOL};

/// Records the plan on the scratch database and checks it against the app's.
pub fn run(args: PlanArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    cli_kit::interrupt::install();
    let command = migration_argv(&args)?;
    let scratch = scratch_database(&args.scratch_url)?;
    let db =
        resolve_database(None, &args.db, &args.app, || cli_kit::api_client(TOOL, env!("CARGO_PKG_VERSION"), &out))?;
    refuse_production_as_scratch(&db, &scratch)?;
    out.show(&render::Planning::WillRecordPlan {
        command: cli_kit::shell::join(&command),
        scratch: scratch_name(&scratch),
        database: db.describe(),
    });
    let plan = record(&out, &scratch, &command)?;
    let mut live = pg_locks::connect(&db.connect_options(&format!("{TOOL}-plan")))?;
    let obstacles = lockplan::obstacles(live.client(), &plan)?;
    let older = if plan.statements.iter().any(|s| s.waits_for_older_transactions) {
        open_transactions(live.client())?
    } else {
        Vec::new()
    };
    let verdict = match (&obstacles[..], &older[..], plan.statements.is_empty()) {
        (_, _, true) | ([], [_, ..], _) => PlanVerdict::CannotVouch,
        ([], [], false) => PlanVerdict::Clear,
        _ => PlanVerdict::WouldWait,
    };
    out.show(&render::Planning::Plan { plan: &plan, obstacles: &obstacles, older: &older, verdict, db: &db });
    let report = PlanReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        database: db.describe(),
        scratch: scratch_name(&scratch),
        command,
        statements: plan.statements,
        obstacles,
        older_transactions: older,
        verdict,
    };
    out.report(&report);
    Ok(match verdict {
        PlanVerdict::Clear => Exit::Success,
        PlanVerdict::WouldWait => Exit::BlockingFound,
        PlanVerdict::CannotVouch => Exit::NotVerified,
    })
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

/// `database acme_dev on 127.0.0.1`.
fn scratch_name(scratch: &ResolvedDatabase) -> String {
    format!("database {} on {}", scratch.dbname, scratch.host)
}

fn scratch_database(url: &str) -> anyhow::Result<ResolvedDatabase> {
    cli_kit::redact::register_url_password(url);
    let parsed = pg_locks::parse_url(url, pg_locks::SslMode::Prefer)?;
    Ok(ResolvedDatabase {
        url: url.to_string(),
        source: cli_kit::DatabaseSource::Flag,
        dbname: parsed.dbname,
        host: parsed.host,
    })
}

/// The migration runs on the scratch database: it must not be the app's.
fn refuse_production_as_scratch(db: &ResolvedDatabase, scratch: &ResolvedDatabase) -> anyhow::Result<()> {
    let same_port = pg_locks::parse_url(&db.url, pg_locks::SslMode::Prefer)
        .ok()
        .zip(pg_locks::parse_url(&scratch.url, pg_locks::SslMode::Prefer).ok())
        .is_none_or(|(a, b)| a.config.get_ports() == b.config.get_ports());
    if db.host == scratch.host && db.dbname == scratch.dbname && same_port {
        return Err(refused(format!(
            "--scratch-url names {}, the database the plan is checked against: the migration would run there. Give a copy with the schema (e.g. your development database); nothing was run",
            db.describe()
        )));
    }
    Ok(())
}

/// Installs the recorder, runs the migration with DATABASE_URL pointed at the scratch
/// database, reads what was recorded, and removes the recorder (also after a failure).
fn record(out: &Output, scratch: &ResolvedDatabase, command: &[String]) -> anyhow::Result<LockPlan> {
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{TOOL}-plan")))
        .map_err(|e| fail(Exit::Failed, format!("cannot reach the scratch database: {e}")))?;
    lockplan::install_recorder(c.client()).map_err(|e| {
        usage(format!("cannot install the lock recorder on the scratch database ({e}): it needs a superuser there (event triggers)"))
    })?;
    // The migration's own output is not the plan: it goes to stderr, so --json stays one document.
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env("DATABASE_URL", &scratch.url)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status();
    let plan = lockplan::read_plan(c.client());
    let _ = lockplan::remove_recorder(c.client());
    let status = status.map_err(|e| fail(Exit::Failed, format!("could not run `{}`: {e}", command[0])))?;
    if !status.success() {
        out.show(&render::Planning::ScratchMigrationFailed { status: cli_kit::shell::status_code(status).to_string() });
        return Err(fail(
            Exit::Failed,
            "the migration failed on the scratch database: fix it there first; nothing was checked",
        ));
    }
    Ok(plan?)
}

/// Transactions open on the app's database now (a CONCURRENTLY statement waits for each).
fn open_transactions(c: &mut pg_locks::Client) -> anyhow::Result<Vec<i32>> {
    let rows = c.query(
        "SELECT pid FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend' ORDER BY xact_start",
        &[],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
