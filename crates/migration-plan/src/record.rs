//! The migration on the scratch database under the lock recorder, and production's own
//! statements prepared there before and after it.

use std::process::{Command, Stdio};

use cli_kit::{fail, usage, Exit};
use pg_locks::lockplan::{self, LockPlan};
use pg_locks::Connection;

use crate::breaks::{self, Break};
use crate::scratch::Scratch;
use crate::utility;

/// What the recorded run gave: the plan, what it breaks, and the statements whose locks could
/// not be told (for `cannot_vouch`).
pub struct Recorded {
    /// Every statement seen, in order, with its locks.
    pub plan: LockPlan,
    /// Production's statements it breaks.
    pub broken: Vec<Break>,
    /// Statements seen but not resolved (`VACUUM` of every table, `REINDEX SCHEMA`…), or that
    /// nothing could see (`--scratch-url`: no server log to read).
    pub unseen: Vec<String>,
    /// What the migration changed that the running release may rely on
    /// ([`breaks::narrowed`]): empty when it only adds.
    pub narrowed: Vec<String>,
}

/// Installs the recorder, runs the migration with DATABASE_URL pointed at the scratch
/// database, reads what was recorded — on the tool's own server, with the statements no
/// trigger fires for from its log ([`crate::utility`]) — and removes the recorder (also after a
/// failure).
pub fn record(
    tool: &str,
    scratch: &Scratch,
    command: &[String],
    statements: &breaks::Statements,
    framework: breaks::Framework,
) -> anyhow::Result<Recorded> {
    let mut c = pg_locks::connect(&scratch.db.connect_options(&format!("{tool}-plan")))
        .map_err(|e| fail(Exit::Failed, format!("cannot reach the scratch database: {e}")))?;
    let queries: &[breaks::ProductionQuery] = match statements {
        breaks::Statements::Read(q) => q,
        breaks::Statements::Unavailable(_) => &[],
    };
    // Before the recorder: the check's own temporary function is not the migration's.
    let before = breaks::prepare_each(c.client(), queries)?;
    let shape_before = breaks::schema_shape(c.client())?;
    lockplan::install_recorder(c.client()).map_err(|e| {
        usage(format!("cannot install the lock recorder on the scratch database ({e}): it needs a superuser there (event triggers)"))
    })?;
    let existing = lockplan::existing_relations(c.client())?;
    // On the tool's own server every statement of the migration's new sessions is logged.
    let log_from = match &scratch.server {
        Some(server) => {
            c.client().batch_execute(&format!("ALTER DATABASE {} SET log_statement = 'all'", scratch.db.dbname))?;
            Some(server.log().map(|l| l.len()).unwrap_or(0))
        }
        None => None,
    };
    // The migration's own output is not the plan: it goes to stderr, so --json stays one document.
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env("DATABASE_URL", &scratch.db.url)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status();
    let plan = lockplan::read_plan(c.client());
    let _ = lockplan::remove_recorder(c.client());
    let status = status.map_err(|e| fail(Exit::Failed, format!("could not run `{}`: {e}", command[0])))?;
    if !status.success() {
        return Err(fail(
            Exit::Failed,
            format!(
                "the migration failed on the scratch database (status {}): fix it there first; no plan, nothing was checked",
                cli_kit::shell::status_code(status)
            ),
        ));
    }
    let mut plan = plan?;
    let unseen = match (&scratch.server, log_from) {
        (Some(server), Some(from)) => match server.log() {
            Ok(log) => {
                let logged = utility::logged_statements(log.get(from..).unwrap_or_default());
                utility::add_unrecorded(&mut plan, c.client(), &logged)
            }
            Err(e) => vec![format!(
                "the copy's server log could not be read ({e}): LOCK TABLE, CLUSTER, VACUUM and REINDEX, which no trigger sees, are not recorded"
            )],
        },
        _ => Vec::new(),
    };
    plan.mark_created(&existing);
    let after = breaks::prepare_each(c.client(), queries)?;
    let broken = breaks::broken(queries, &before, &after, &plan, framework);
    let narrowed = breaks::narrowed(&shape_before, &breaks::schema_shape(c.client())?);
    Ok(Recorded { plan, broken, unseen, narrowed })
}

/// Queries sampled from production's sessions, prepared on the migrated copy: each ran on
/// production's schema as it is, so one that fails after the migration is broken by it.
pub fn breaks_among_sampled(
    tool: &str,
    scratch: &Scratch,
    sampled: &[breaks::ProductionQuery],
    plan: &LockPlan,
    framework: breaks::Framework,
) -> anyhow::Result<Vec<Break>> {
    let mut c = pg_locks::connect(&scratch.db.connect_options(&format!("{tool}-plan")))
        .map_err(|e| fail(Exit::Failed, format!("cannot reach the scratch database: {e}")))?;
    // A session's text is whatever its client sent: the server's own parse (the extended
    // protocol's, which takes one statement only) decides that it is one statement before it
    // goes into a PREPARE.
    let single: Vec<breaks::ProductionQuery> = sampled
        .iter()
        .filter(|q| match c.client().prepare(&q.query) {
            Ok(_) => true,
            Err(e) => !e.as_db_error().is_some_and(|db| db.message().contains("multiple commands")),
        })
        .cloned()
        .collect();
    let after = breaks::prepare_each(c.client(), &single)?;
    // Each ran on production's schema as it is; what fails on the copy for a reason no
    // statement of the migration names (a temporary table, another search_path) is not its doing.
    let before = vec![Ok(()); single.len()];
    Ok(breaks::broken(&single, &before, &after, plan, framework)
        .into_iter()
        .filter(|b| b.statement_seq.is_some())
        .collect())
}
