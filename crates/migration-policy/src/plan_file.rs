//! A lock plan written by `migrate-restart plan --json` (`heroku migrate:plan --json >
//! plan.json`), read back to narrow a preflight: with it, a session refuses the migration only
//! when it holds or waits for a lock that conflicts with what the migration will take on a
//! relation it locks. Everything else is set aside, and said; the lock-wait budget is still the
//! guarantee during the run (a transaction that reads a planned table only later is not seen
//! by a look before the first statement).

use std::path::{Path, PathBuf};

use pg_locks::lockplan::{LockPlan, Obstacle, PlannedStatement};
use pg_locks::DatabaseIdentity;
use serde::Deserialize;

use crate::preflight::{Assessment, Finding, Kind};

/// What is read of the document: its version, its statements, whether it vouches and which
/// database it was made for (the rest is the plan's report of one moment on production).
#[derive(Deserialize)]
struct PlanDocument {
    schema_version: u32,
    statements: Vec<PlannedStatement>,
    verdict: String,
    #[serde(default)]
    cannot_vouch: Vec<String>,
    #[serde(default)]
    made_for: Option<DatabaseIdentity>,
    #[serde(default)]
    breaks: Vec<crate::contract::PlannedBreak>,
}

/// A plan file as read: the plan, and the database it was made for.
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// What the migration locks, statement by statement.
    pub plan: LockPlan,
    /// The database the plan was made for, as its server identified it.
    pub made_for: DatabaseIdentity,
    /// Where it was read from, for messages.
    pub path: PathBuf,
    /// Production's queries the migration breaks (checked live before the first statement:
    /// [`crate::contract`]).
    pub breaks: Vec<crate::contract::PlannedBreak>,
}

/// Reads a plan file; a one-line usage error (2) naming the file and what is wrong with it. A
/// plan that cannot vouch, records no lock, or does not say which database it was made for is
/// refused: read as "nothing in the way", it would set every blocker aside.
pub fn read(path: &Path) -> anyhow::Result<PlanFile> {
    let shown = path.display();
    let bad = |what: String| cli_kit::usage(format!("--plan {shown}: {what}; nothing was started"));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let doc: PlanDocument = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a plan written by `migrate-restart plan --json` ({e})")))?;
    if doc.schema_version != cli_kit::SCHEMA_VERSION {
        return Err(bad(format!(
            "written with schema_version {}, this build reads {}; make the plan again with this version",
            doc.schema_version,
            cli_kit::SCHEMA_VERSION
        )));
    }
    if doc.verdict == "cannot_vouch" {
        let why =
            if doc.cannot_vouch.is_empty() { String::new() } else { format!(" ({})", doc.cannot_vouch.join("; ")) };
        return Err(bad(format!(
            "the plan says it cannot vouch for this migration{why}: it cannot say what is in the way; guard the run without --plan"
        )));
    }
    if doc.statements.is_empty() || doc.statements.iter().all(|s| s.locks.is_empty()) {
        return Err(bad(
            "the plan records no lock (the migration ran no statement the recorder sees): it cannot say what is in the way; guard the run without --plan".into(),
        ));
    }
    let Some(made_for) = doc.made_for else {
        return Err(bad(
            "the plan does not say which database it was made for (an older version wrote it); make the plan again"
                .into(),
        ));
    };
    Ok(PlanFile {
        plan: LockPlan { statements: doc.statements },
        made_for,
        path: path.to_path_buf(),
        breaks: doc.breaks,
    })
}

impl PlanFile {
    /// Refuses (a usage error, 2) a plan made for another database than the one `client`
    /// reaches — decided by the server's identity, never by the URL — or naming relations it
    /// does not have (made on another schema).
    pub fn check_against(&self, client: &mut pg_locks::Client) -> anyhow::Result<()> {
        let shown = self.path.display();
        let here = pg_locks::database_identity(client)?.identity;
        let theirs = &self.made_for;
        if here.system_identifier != theirs.system_identifier || here.database_oid != theirs.database_oid {
            return Err(cli_kit::usage(format!(
                "--plan {shown}: made for database {} (server {}), but this is database {} (server {}): a plan says what is in the way only on the database it was made for; make one for this database; nothing was started",
                cli_kit::printable(&theirs.database),
                theirs.system_identifier,
                cli_kit::printable(&here.database),
                here.system_identifier
            )));
        }
        let missing = pg_locks::lockplan::missing_relations(client, &self.plan)?;
        if !missing.is_empty() {
            return Err(cli_kit::usage(format!(
                "--plan {shown}: names {} this database does not have ({}): it was made on another schema; make the plan again; nothing was started",
                cli_kit::output::count(missing.len(), "relation"),
                missing.iter().map(|m| cli_kit::printable(m)).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }
}

/// An assessment narrowed to the plan. Every session in the way of a planned lock (`in_the_way`:
/// what `lockplan::obstacles` found — it holds or waits for a conflicting lock) is a finding,
/// whether or not the preflight alone would have named it: the plan's own verdict counts it,
/// so the preflight with the plan must too. The rest is set aside. A plan with a statement that
/// waits for every older transaction (`CREATE INDEX CONCURRENTLY`) keeps every open transaction
/// in the way, whatever it holds.
pub fn narrow(assessment: Assessment, plan: &LockPlan, in_the_way: &[Obstacle]) -> (Assessment, Vec<Finding>) {
    let waits_for_older = plan.statements.iter().any(|s| s.waits_for_older_transactions);
    let blocks = |pid: i32| in_the_way.iter().any(|o| o.pid == pid);
    let keep = |f: &Finding| {
        blocks(f.pid)
            || (waits_for_older && matches!(f.kind, Kind::LongTransaction | Kind::IdleInTransaction | Kind::Backup))
    };
    let (mut findings, mut set_aside): (Vec<Finding>, Vec<Finding>) = assessment.findings.into_iter().partition(keep);
    // A session whose age this credential cannot see but whose conflicting lock it can is in
    // the way: a finding, not an unvouched doubt.
    let (hidden_in_the_way, rest): (Vec<Finding>, Vec<Finding>) =
        assessment.unvouched.into_iter().partition(|f| blocks(f.pid));
    let (unvouched, hidden_aside): (Vec<Finding>, Vec<Finding>) = rest.into_iter().partition(keep);
    set_aside.extend(hidden_aside);
    findings.extend(hidden_in_the_way);
    for o in in_the_way {
        if !findings.iter().any(|f| f.pid == o.pid) {
            findings.push(Finding { pid: o.pid, kind: Kind::InTheWay, detail: in_the_way_detail(o) });
        }
    }
    (Assessment { findings, unvouched }, set_aside)
}

/// `pid 4242 (reporting) holds AccessShareLock on public.users, which the migration locks AccessExclusiveLock`.
fn in_the_way_detail(o: &Obstacle) -> String {
    let who = match o.application_name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => format!("pid {} ({})", o.pid, cli_kit::printable(n)),
        None => format!("pid {}", o.pid),
    };
    format!(
        "{who} {} {} on {}, which the migration locks {}",
        if o.granted { "holds" } else { "waits for" },
        o.mode.name(),
        o.relation,
        o.planned.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pg_locks::lockplan::{LockMode, PlannedLock};

    fn finding(pid: i32, kind: Kind) -> Finding {
        Finding { pid, kind, detail: format!("pid {pid}") }
    }

    fn statement(concurrently: bool) -> PlannedStatement {
        PlannedStatement {
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
                created: false,
            }],
            rewrites: vec![],
            waits_for_older_transactions: concurrently,
            ran_us: None,
            blocks_read: None,
            rows: None,
            estimate: None,
        }
    }

    fn plan(concurrently: bool) -> LockPlan {
        LockPlan { statements: vec![statement(concurrently)] }
    }

    fn obstacle(pid: i32) -> Obstacle {
        Obstacle {
            relation: "public.users".into(),
            planned: LockMode::AccessExclusiveLock,
            pid,
            mode: LockMode::AccessShareLock,
            granted: true,
            application_name: Some("reporting".into()),
            xact_age_secs: Some(0.5),
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
        let (kept, aside) = narrow(assessment.clone(), &plan(false), &[obstacle(11), obstacle(14)]);
        assert_eq!(
            kept.findings.iter().map(|f| f.pid).collect::<Vec<_>>(),
            vec![11, 14],
            "a hidden session in the way is in the way"
        );
        assert!(kept.unvouched.is_empty());
        assert_eq!(aside.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![10, 12, 13]);

        // CONCURRENTLY waits for every open transaction: none is set aside.
        let (kept, aside) = narrow(assessment, &plan(true), &[]);
        assert_eq!(kept.findings.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![10, 11, 12]);
        assert_eq!(aside.iter().map(|f| f.pid).collect::<Vec<_>>(), vec![13, 14]);
    }

    /// A short reader the preflight alone would not name (younger than --max-xact-age) holds a
    /// lock the plan's statement conflicts with: with the plan it is a finding, as the plan's
    /// own verdict counts it.
    #[test]
    fn a_session_in_the_way_is_a_finding_even_when_the_preflight_alone_would_pass_it() {
        let (kept, aside) = narrow(Assessment::default(), &plan(false), &[obstacle(20)]);
        assert!(aside.is_empty());
        assert_eq!(kept.findings.len(), 1);
        assert_eq!(kept.findings[0].kind, Kind::InTheWay);
        assert_eq!(
            kept.findings[0].detail,
            "pid 20 (reporting) holds AccessShareLock on public.users, which the migration locks AccessExclusiveLock"
        );
    }

    fn write(dir: &Path, name: &str, doc: serde_json::Value) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, doc.to_string()).unwrap();
        p
    }

    #[test]
    fn a_plan_that_cannot_vouch_records_nothing_or_names_no_database_is_refused() {
        let dir = std::env::temp_dir().join(format!("plan-file-vouch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made_for = serde_json::json!({"system_identifier": "7", "database_oid": 5, "database": "acme"});
        let statements = serde_json::to_value(vec![statement(false)]).unwrap();
        let doc = |verdict: &str, statements: serde_json::Value, made_for: serde_json::Value| {
            serde_json::json!({"schema_version": cli_kit::SCHEMA_VERSION, "verdict": verdict, "statements": statements,
                "cannot_vouch": ["the migration ran no DDL the recorder sees"], "made_for": made_for})
        };
        let e = |p: PathBuf| read(&p).unwrap_err().to_string();
        let p = write(&dir, "a.json", doc("cannot_vouch", statements.clone(), made_for.clone()));
        assert!(e(p).contains("the plan says it cannot vouch for this migration (the migration ran no DDL"));
        let p = write(&dir, "b.json", doc("clear", serde_json::json!([]), made_for.clone()));
        assert!(e(p).contains("the plan records no lock"));
        let p = write(&dir, "c.json", doc("clear", statements.clone(), serde_json::Value::Null));
        assert!(e(p).contains("does not say which database it was made for"));
        let p = write(&dir, "d.json", doc("would_wait", statements, made_for));
        let file = read(&p).unwrap();
        assert_eq!(file.made_for.database, "acme");
        std::fs::remove_dir_all(&dir).unwrap();
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
        std::fs::write(&bad, "{\"schema_version\": 9, \"verdict\": \"clear\", \"statements\": []}").unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(e.contains("written with schema_version 9, this build reads 1"), "{e}");
        let e = read(&dir.join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
