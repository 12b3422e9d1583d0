//! The migration on the scratch database under the lock recorder, and production's own
//! statements prepared there before and after it.

use std::process::{Command, Stdio};

use cli_kit::{fail, usage, Exit, ResolvedDatabase};
use pg_locks::lockplan::{self, LockPlan};
use pg_locks::Connection;

use crate::breaks::{self, Break};

/// Installs the recorder, runs the migration with DATABASE_URL pointed at the scratch
/// database, reads what was recorded, and removes the recorder (also after a failure).
pub fn record(
    tool: &str,
    scratch: &ResolvedDatabase,
    command: &[String],
    statements: &breaks::Statements,
    framework: breaks::Framework,
) -> anyhow::Result<(LockPlan, Vec<Break>)> {
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{tool}-plan")))
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
        return Err(fail(
            Exit::Failed,
            format!(
                "the migration failed on the scratch database (status {}): fix it there first; no plan, nothing was checked",
                cli_kit::shell::status_code(status)
            ),
        ));
    }
    let mut plan = plan?;
    plan.mark_created(&existing);
    let after = breaks::prepare_each(c.client(), queries);
    let broken = breaks::broken(queries, &before, &after, &plan, framework);
    Ok((plan, broken))
}
