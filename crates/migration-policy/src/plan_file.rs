//! A lock plan written by `migrate-restart plan --json` (`heroku migrate:plan --json >
//! plan.json`), read back to narrow a preflight: with it, a session refuses the migration only
//! when it holds or waits for a lock that conflicts with what the migration will take on a
//! relation it locks. Everything else is set aside, and said; the lock-wait budget is still the
//! guarantee during the run (a transaction that reads a planned table only later is not seen
//! by a look before the first statement).

use std::path::Path;

use pg_locks::lockplan::{LockPlan, PlannedStatement};
use serde::Deserialize;

use crate::preflight::{Assessment, Finding, Kind};

/// What is read of the document: its version and its statements (the rest is the plan's
/// report of one moment on production, not the plan).
#[derive(Deserialize)]
struct PlanDocument {
    schema_version: u32,
    statements: Vec<PlannedStatement>,
}

/// Reads a plan file; a one-line error naming the file and what is wrong with it.
pub fn read(path: &Path) -> anyhow::Result<LockPlan> {
    let text = std::fs::read_to_string(path).map_err(|e| cli_kit::usage(format!("--plan {}: {e}", path.display())))?;
    let doc: PlanDocument = serde_json::from_str(&text).map_err(|e| {
        cli_kit::usage(format!(
            "--plan {}: not a plan written by `migrate-restart plan --json` ({e}); nothing was started",
            path.display()
        ))
    })?;
    if doc.schema_version != cli_kit::SCHEMA_VERSION {
        return Err(cli_kit::usage(format!(
            "--plan {}: written with schema_version {}, this build reads {}; make the plan again with this version",
            path.display(),
            doc.schema_version,
            cli_kit::SCHEMA_VERSION
        )));
    }
    Ok(LockPlan { statements: doc.statements })
}

/// An assessment narrowed to the plan: the findings of sessions in the way of a planned lock
/// (`in_the_way`: the pids `lockplan::obstacles` found), and those set aside. A plan with a
/// statement that waits for every older transaction (`CREATE INDEX CONCURRENTLY`) keeps every
/// open transaction in the way, whatever it holds.
pub fn narrow(assessment: Assessment, plan: &LockPlan, in_the_way: &[i32]) -> (Assessment, Vec<Finding>) {
    let waits_for_older = plan.statements.iter().any(|s| s.waits_for_older_transactions);
    let keep = |f: &Finding| {
        in_the_way.contains(&f.pid)
            || (waits_for_older && matches!(f.kind, Kind::LongTransaction | Kind::IdleInTransaction | Kind::Backup))
    };
    let (findings, mut set_aside): (Vec<Finding>, Vec<Finding>) = assessment.findings.into_iter().partition(keep);
    let (unvouched, hidden_aside): (Vec<Finding>, Vec<Finding>) = assessment.unvouched.into_iter().partition(keep);
    set_aside.extend(hidden_aside);
    (Assessment { findings, unvouched }, set_aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pg_locks::lockplan::{LockMode, PlannedLock};

    fn finding(pid: i32, kind: Kind) -> Finding {
        Finding { pid, kind, detail: format!("pid {pid}") }
    }

    fn plan(concurrently: bool) -> LockPlan {
        LockPlan {
            statements: vec![PlannedStatement {
                seq: 1,
                tag: "ALTER TABLE".into(),
                object: Some("public.users".into()),
                query: "ALTER TABLE users ADD COLUMN nickname text".into(),
                transaction: 1,
                locks: vec![PlannedLock {
                    relation: "public.users".into(),
                    kind: "table".into(),
                    mode: LockMode::AccessExclusiveLock,
                    new: true,
                }],
                rewrites: vec![],
                waits_for_older_transactions: concurrently,
            }],
        }
    }

    #[test]
    fn only_sessions_in_the_way_of_a_planned_lock_refuse_the_rest_is_set_aside() {
        let assessment = Assessment {
            findings: vec![
                finding(10, Kind::LongTransaction),
                finding(11, Kind::Backup),
                finding(12, Kind::IdleInTransaction),
            ],
            unvouched: vec![finding(13, Kind::Hidden), finding(14, Kind::Hidden)],
        };
        let (kept, aside) = narrow(assessment.clone(), &plan(false), &[11, 14]);
        assert_eq!(kept.findings.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![11]);
        assert_eq!(kept.unvouched.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![14]);
        assert_eq!(aside.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![10, 12, 13]);

        // CONCURRENTLY waits for every open transaction: none is set aside.
        let (kept, aside) = narrow(assessment, &plan(true), &[]);
        assert_eq!(kept.findings.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![10, 11, 12]);
        assert_eq!(aside.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![13, 14]);
    }

    #[test]
    fn a_file_that_is_not_a_plan_is_one_line_naming_it() {
        let dir = std::env::temp_dir().join(format!("plan-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("plan.json");
        std::fs::write(&bad, "{\"verdict\": \"clear\"}").unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("--plan {}: not a plan written by `migrate-restart plan --json`", bad.display())),
            "{e}"
        );
        std::fs::write(&bad, "{\"schema_version\": 9, \"statements\": []}").unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(e.contains("written with schema_version 9, this build reads 1"), "{e}");
        let e = read(&dir.join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
