//! `migrate-restart plan`: the migration runs on a scratch database that has the app's schema,
//! where a recorder writes down every relation lock each DDL statement's transaction holds
//! (`pg_locks::lockplan`); then the app's database is read once for sessions holding or
//! waiting for a conflicting lock on those relations. Nothing is changed on the app's database.
//!
//! The scratch database is, by default, a copy the tool makes: the app's schema read through
//! its own connection (`schema_copy`: no lock outlives the statement that took it), with the
//! rows of the migration-history tables, recreated in a local PostgreSQL server of the same
//! major version and thrown away after. `--scratch-url` gives one instead (a local copy with
//! the schema, e.g. the development database `bin/rails db:migrate` already runs on); it is
//! never the app's own: a scratch URL naming the same database as the app's is refused before
//! anything runs.

mod breaks;
mod estimate;
pub(crate) mod render;
mod window;

pub use breaks::{Break, DEFAULT_TOP};
pub use window::RunningRelease;

use std::process::{Command, Stdio};

use cli_kit::{fail, refused, resolve_database, usage, Exit, Output, ResolvedDatabase};
use pg_locks::lockplan::{self, LockPlan, Obstacle, TableActivity};
use pg_locks::{Connection, Label};

use crate::cli::PlanArgs;
use crate::report::{NotCopied, PlanReport, PlanVerdict, SchemaCopy};
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
    let scratch = match &args.scratch_url {
        Some(url) => {
            let scratch = scratch_database(url)?;
            refuse_production_as_scratch(&db, &production, &scratch)?;
            Scratch { db: scratch, server: None, copy: None, dump: None }
        }
        None => copy_schema(&out, &db, &mut live)?,
    };
    out.show(&render::Planning::WillRecordPlan {
        command: cli_kit::shell::join(&command),
        scratch: scratch.name(),
        database: db.describe(),
    });
    let (mut plan, broken) = record(&out, &scratch.db, &command, &statements, framework)?;
    // How long each statement holds its locks: measured on a sample shaped by production's
    // statistics, on the tool's own copy only (a --scratch-url database is the user's).
    let statistics = estimate::read_statistics(live.client(), &plan)?;
    let measured = match (&scratch.server, &scratch.dump) {
        (Some(server), Some(dump)) => {
            out.show(&render::Planning::Measuring { rows: estimate::SAMPLE_ROWS });
            estimate::measure(&server.url(), dump, &command, &statistics)
        }
        _ => estimate::Measured::not_measured("--scratch-url: holds are measured only on the tool's own copy"),
    };
    // How long the running release meets the migrated schema: only for an app (a URL alone
    // names no formation).
    let running_release = match args.app.resolve() {
        Ok(app) => Some(window::read(&cli_kit::api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?, &app)),
        Err(_) => None,
    };
    drop(scratch.server);
    let found = read_production(live.client(), &plan)?;
    estimate::apply(&mut plan, &measured, &statistics, &found.activity);
    let verdict = found.verdict(&plan, scratch.copy.as_ref(), &broken, args.lock_wait);
    let (statements_checked, breaks_unchecked) = match &statements {
        breaks::Statements::Read(q) => (q.len(), None),
        breaks::Statements::Unavailable(why) => (0, Some(why.clone())),
    };
    out.show(&render::Planning::Plan {
        plan: &plan,
        obstacles: &found.obstacles,
        older: &found.older,
        activity: &found.activity,
        breaks: &broken,
        running_release: running_release.as_ref(),
        checked: statements_checked,
        unchecked: breaks_unchecked.as_deref(),
        verdict: &verdict,
        db: &db,
        budget: args.lock_wait,
    });
    let (verdict, cannot_vouch) = verdict;
    out.report(&PlanReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        database: db.describe(),
        made_for: production.identity,
        scratch: scratch_label(&scratch.db, scratch.copy.as_ref()),
        schema_copy: scratch.copy,
        command,
        statements: plan.statements,
        obstacles: found.obstacles,
        older_transactions: found.older,
        activity: found.activity,
        breaks: broken,
        running_release,
        statements_checked,
        breaks_unchecked,
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

/// Where the migration runs for the plan: the user's database, or the tool's local copy
/// (stopped and removed when dropped).
struct Scratch {
    db: ResolvedDatabase,
    server: Option<schema_copy::ScratchServer>,
    copy: Option<SchemaCopy>,
    /// The schema read from production (a second copy of it is the sample's).
    dump: Option<schema_copy::SchemaDump>,
}

impl Scratch {
    fn name(&self) -> String {
        scratch_label(&self.db, self.copy.as_ref())
    }
}

fn scratch_label(db: &ResolvedDatabase, copy: Option<&SchemaCopy>) -> String {
    match copy {
        Some(c) => format!("a copy of the schema in a local PostgreSQL {} server", c.server_major),
        None => scratch_name(db),
    }
}

/// Reads the app's schema (one statement per part: no lock outlives its statement), starts a
/// local server of the same major version and recreates the schema there.
fn copy_schema(out: &Output, db: &ResolvedDatabase, live: &mut pg_locks::Conn) -> anyhow::Result<Scratch> {
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        fail(
            Exit::Failed,
            format!("cannot make the scratch copy: {what}: {e}; or give one with --scratch-url URL; nothing was run"),
        )
    };
    refuse_while_a_migration_runs(db, live)?;
    let dump = schema_copy::read(live.client())
        .map_err(|e| cannot(&format!("reading the schema of {}", db.describe()), &e))?;
    let bindir = schema_copy::find_bindir(dump.major()).map_err(|e| cannot("finding a local server", &e))?;
    let server = schema_copy::ScratchServer::start(&bindir).map_err(|e| cannot("starting a local server", &e))?;
    cli_kit::redact::register_secret(server.password());
    let scratch = scratch_database(&server.url())?;
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{TOOL}-plan")))
        .map_err(|e| cannot("connecting to the local server", &e))?;
    let restored = dump.restore(c.client()).map_err(|e| cannot("recreating the schema", &e))?;
    let copy = SchemaCopy {
        server_major: dump.major(),
        objects: restored.applied,
        history_rows: restored.history_rows,
        read_ms: dump.took.as_millis() as u64,
        lock_hold_ms: dump.lock_hold.as_millis() as u64,
        not_copied: restored.failed.into_iter().map(|(what, error)| NotCopied { what, error }).collect(),
    };
    out.show(&render::Planning::Copied { database: db.describe(), copy: &copy });
    Ok(Scratch { db: scratch, server: Some(server), copy: Some(copy), dump: Some(dump) })
}

/// A migration running now changes the schema the copy would read, and holds the tables it
/// would need to deparse: the plan waits for it to end rather than queue beside it.
fn refuse_while_a_migration_runs(db: &ResolvedDatabase, live: &mut pg_locks::Conn) -> anyhow::Result<()> {
    let snap = pg_locks::Snapshot::take(live)?;
    let running = snap
        .sessions
        .iter()
        .find(|s| !s.has(Label::Own) && s.xact_age_secs.is_some() && (s.has(Label::Migration) || s.has(Label::Ddl)));
    match running {
        None => Ok(()),
        Some(s) => Err(refused(format!(
            "a migration is running on {} (pid {}, {}: {}): the copy would read a schema it is changing; plan once it has ended, or give a copy with --scratch-url; nothing was run",
            db.describe(),
            s.pid,
            if s.application_name.is_empty() { "no application_name" } else { &s.application_name },
            s.query_line(60)
        ))),
    }
}

/// What the app's database says about the plan, read once.
struct Production {
    obstacles: Vec<Obstacle>,
    older: Vec<i32>,
    activity: Vec<TableActivity>,
    follower: bool,
}

fn read_production(c: &mut pg_locks::Client, plan: &LockPlan) -> anyhow::Result<Production> {
    let follower: bool = c.query_one("SELECT pg_is_in_recovery()", &[])?.get(0);
    let obstacles = lockplan::obstacles(c, plan)?;
    let older =
        if plan.statements.iter().any(|s| s.waits_for_older_transactions) { open_transactions(c)? } else { Vec::new() };
    let activity = lockplan::activity(c, plan)?;
    Ok(Production { obstacles, older, activity, follower })
}

impl Production {
    /// The verdict, and why the plan cannot vouch when it cannot.
    fn verdict(
        &self,
        plan: &LockPlan,
        copy: Option<&SchemaCopy>,
        broken: &[Break],
        budget: std::time::Duration,
    ) -> (PlanVerdict, Vec<String>) {
        // A query of the running release that fails after the migration breaks the site for
        // the whole window, whoever holds what now: it comes first.
        if !broken.is_empty() {
            return (PlanVerdict::WouldBreak, Vec::new());
        }
        let mut why = Vec::new();
        if self.follower {
            why.push("this is a follower: the sessions that would make the migration wait hold their locks on the leader, which this connection does not see".to_string());
        }
        if plan.statements.is_empty() {
            why.push("the migration ran no statement the recorder sees (it records DDL, INSERT, UPDATE, DELETE and TRUNCATE; not LOCK TABLE, CLUSTER, VACUUM or REINDEX)".to_string());
        }
        if !self.older.is_empty() {
            why.push(format!(
                "a CONCURRENTLY statement waits for every transaction open when it starts: {} open now",
                self.older.len()
            ));
        }
        let missing: Vec<&str> = copy
            .map(|c| {
                c.not_copied.iter().filter(|n| !n.what.starts_with("extension ")).map(|n| n.what.as_str()).collect()
            })
            .unwrap_or_default();
        if !missing.is_empty() {
            why.push(format!(
                "the copy lacks {} of the app's schema ({}): what the migration does to them is not recorded",
                missing.len(),
                missing.join(", ")
            ));
        }
        why.extend(estimate::unmeasured_holds(plan, budget));
        match (self.follower, self.obstacles.is_empty(), why.is_empty()) {
            (false, false, _) => (PlanVerdict::WouldWait, Vec::new()),
            _ if !estimate::blocking(plan, budget).is_empty() => (PlanVerdict::WouldBlock, why),
            (_, _, false) => (PlanVerdict::CannotVouch, why),
            _ => (PlanVerdict::Clear, Vec::new()),
        }
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

/// The migration runs on the scratch database: it must not be the app's. Decided by what the
/// two servers say they are (cluster, database, when the server started), never by how the URLs
/// are spelled: `localhost` for `127.0.0.1`, another user, a pooler or extra parameters all
/// reach the same database.
fn refuse_production_as_scratch(
    db: &ResolvedDatabase,
    production: &pg_locks::ServerDatabase,
    scratch: &ResolvedDatabase,
) -> anyhow::Result<()> {
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{TOOL}-plan")))
        .map_err(|e| fail(Exit::Failed, format!("cannot reach the scratch database: {e}; nothing was run")))?;
    let theirs = pg_locks::database_identity(c.client())?;
    if theirs.same_as(production) {
        return Err(refused(format!(
            "--scratch-url reaches {} itself (the same server and database: {} on cluster {}), the database the plan is checked against: the migration would run there. Give a copy with the schema (e.g. your development database); nothing was run",
            db.describe(),
            cli_kit::printable(&theirs.identity.database),
            theirs.identity.system_identifier
        )));
    }
    Ok(())
}

/// Installs the recorder, runs the migration with DATABASE_URL pointed at the scratch
/// database, reads what was recorded, and removes the recorder (also after a failure).
fn record(
    out: &Output,
    scratch: &ResolvedDatabase,
    command: &[String],
    statements: &breaks::Statements,
    framework: breaks::Framework,
) -> anyhow::Result<(LockPlan, Vec<Break>)> {
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{TOOL}-plan")))
        .map_err(|e| fail(Exit::Failed, format!("cannot reach the scratch database: {e}")))?;
    lockplan::install_recorder(c.client()).map_err(|e| {
        usage(format!("cannot install the lock recorder on the scratch database ({e}): it needs a superuser there (event triggers)"))
    })?;
    let existing = lockplan::existing_relations(c.client())?;
    let queries: &[breaks::ProductionQuery] = match statements {
        breaks::Statements::Read(q) => q,
        breaks::Statements::Unavailable(_) => &[],
    };
    let before = breaks::prepare_each(c.client(), queries);
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
    let mut plan = plan?;
    plan.mark_created(&existing);
    let after = breaks::prepare_each(c.client(), queries);
    let broken = breaks::broken(queries, &before, &after, &plan, framework);
    Ok((plan, broken))
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
