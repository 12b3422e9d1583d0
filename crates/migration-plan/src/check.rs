//! The plan joined with production's live locks, read once: who would make the migration wait,
//! what a CONCURRENTLY statement would wait for, how busy the planned tables are — and the
//! verdict.

use pg_locks::lockplan::{self, LockPlan, Obstacle, TableActivity};

use crate::breaks::Break;
use crate::{estimate, PlanVerdict, SchemaCopy};

/// What the app's database says about the plan, read once.
pub struct Production {
    /// Sessions in the way.
    pub obstacles: Vec<Obstacle>,
    /// Open transactions a CONCURRENTLY statement would wait for.
    pub older: Vec<i32>,
    /// How busy each planned table is.
    pub activity: Vec<TableActivity>,
    follower: bool,
}

/// Reads it.
pub fn read_production(c: &mut pg_locks::Client, plan: &LockPlan) -> anyhow::Result<Production> {
    let follower: bool = c.query_one("SELECT pg_is_in_recovery()", &[])?.get(0);
    let obstacles = lockplan::obstacles(c, plan)?;
    let older =
        if plan.statements.iter().any(|s| s.waits_for_older_transactions) { open_transactions(c)? } else { Vec::new() };
    let activity = lockplan::activity(c, plan)?;
    Ok(Production { obstacles, older, activity, follower })
}

impl Production {
    /// The verdict, and why the plan cannot vouch when it cannot.
    pub fn verdict(
        &self,
        plan: &LockPlan,
        copy: Option<&SchemaCopy>,
        broken: &[Break],
        unseen: &[String],
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
        why.extend(unseen.iter().cloned());
        why.extend(estimate::unmeasured_holds(plan, budget));
        match (self.follower, self.obstacles.is_empty(), why.is_empty()) {
            (false, false, _) => (PlanVerdict::WouldWait, Vec::new()),
            _ if !estimate::blocking(plan, budget).is_empty() => (PlanVerdict::WouldBlock, why),
            (_, _, false) => (PlanVerdict::CannotVouch, why),
            _ => (PlanVerdict::Clear, Vec::new()),
        }
    }
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
