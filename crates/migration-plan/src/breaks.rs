//! What the running release breaks. On Heroku the release phase migrates while the previous
//! release serves traffic, and its dynos keep sending the queries they were built with until
//! the restart. The database knows those queries: `pg_stat_statements` (normalized, with
//! `$1…$n` placeholders). Each of the busiest is prepared on the scratch copy before the
//! migration and again after it: one that prepared before and fails after is broken by the
//! migration, and the server's own error says why. Nothing runs on production but one read of
//! `pg_stat_statements`; `PREPARE` on the copy plans a statement without running it.

use pg_locks::lockplan::LockPlan;
use pg_locks::Client;
use serde::{Deserialize, Serialize};

/// How many of production's statements are checked by default: the busiest by calls.
pub const DEFAULT_TOP: usize = 200;

/// A query of the running release that the migration breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Break {
    /// The migration's statement that breaks it, when its error names something that statement
    /// changed (`seq` in `statements[]`); null when it cannot be told.
    pub statement_seq: Option<i64>,
    /// Production's query text, as `pg_stat_statements` normalizes it.
    pub query: String,
    /// How many times production ran it since the statistics were reset.
    pub calls: i64,
    /// The server's error when it is prepared on the migrated copy.
    pub error: String,
    /// The same change in two deploys (expand, then contract), in the app's framework's terms.
    pub two_step: String,
}

/// The migration framework production's history table shows: what the two-step advice names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// `schema_migrations` (Active Record).
    Rails,
    /// `django_migrations`.
    Django,
    /// Neither.
    Other,
}

/// Which framework's history table production has (a catalog read).
pub fn framework(c: &mut Client) -> Framework {
    let has = |c: &mut Client, t: &str| {
        c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&t]).map(|r| r.get::<_, bool>(0)).unwrap_or(false)
    };
    if has(c, "schema_migrations") {
        Framework::Rails
    } else if has(c, "django_migrations") {
        Framework::Django
    } else {
        Framework::Other
    }
}

/// The expand/contract form of the change that breaks a query, from the server's error: a
/// column the running code still names, or a relation it still reads.
fn two_step(error: &str, framework: Framework) -> String {
    let name = error.split('"').nth(1).unwrap_or("it");
    let column = error.starts_with("column ");
    match (column, framework) {
        (true, Framework::Rails) => format!(
            "first deploy: add `self.ignored_columns += [\"{name}\"]` to the model (the running code stops naming it once restarted); next deploy: the migration that removes {name}"
        ),
        (true, Framework::Django) => format!(
            "first deploy: remove the field from the model with SeparateDatabaseAndState(state_operations=[RemoveField(…, \"{name}\")], database_operations=[]); next deploy: a migration that drops the column {name}"
        ),
        (true, Framework::Other) => format!(
            "first deploy: code that no longer reads or writes {name}; next deploy: the migration that removes it"
        ),
        (false, _) => format!(
            "first deploy: keep {name} readable beside the new form (a view under the old name, or both written) and switch the code; next deploy: remove {name}"
        ),
    }
}

/// One of production's statements.
#[derive(Debug, Clone)]
pub struct ProductionQuery {
    /// Its normalized text.
    pub query: String,
    /// Its calls.
    pub calls: i64,
}

/// Production's statements, or why they cannot be read.
#[derive(Debug, Clone)]
pub enum Statements {
    /// The busiest first.
    Read(Vec<ProductionQuery>),
    /// Why nothing was checked (said plainly: no all-clear is given for what was not checked).
    Unavailable(String),
}

/// The statement kinds a running release sends and `PREPARE` takes.
const PREPARABLE: [&str; 6] = ["select", "insert", "update", "delete", "with", "values"];

/// Reads the `top` busiest statements of this database from `pg_stat_statements` (one query).
pub fn read_production(c: &mut Client, top: usize) -> Statements {
    let installed: bool =
        match c.query_one("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')", &[]) {
            Ok(r) => r.get(0),
            Err(e) => return Statements::Unavailable(cli_kit::one_line(&anyhow::Error::new(e))),
        };
    if !installed {
        return Statements::Unavailable(
            "pg_stat_statements is not installed in the app's database (Heroku Postgres has it on production plans: heroku pg:psql -c \"CREATE EXTENSION pg_stat_statements\")".into(),
        );
    }
    // Read more than `top`, since transaction control and DDL are dropped after.
    let rows = c.query(
        "SELECT query, calls::int8 FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY calls DESC LIMIT $1",
        &[&((top * 2) as i64)],
    );
    match rows {
        Ok(rows) => Statements::Read(
            rows.iter()
                .map(|r| ProductionQuery {
                    query: r.get::<_, String>(0).trim().trim_end_matches(';').to_string(),
                    calls: r.get(1),
                })
                .filter(|q| preparable(&q.query))
                .take(top)
                .collect(),
        ),
        Err(e) => Statements::Unavailable(format!(
            "pg_stat_statements could not be read: {}",
            cli_kit::one_line(&anyhow::Error::new(e))
        )),
    }
}

fn preparable(query: &str) -> bool {
    let first = query.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
    PREPARABLE.iter().any(|k| first.eq_ignore_ascii_case(k))
}

/// Prepares each query on `c` (and lets it go): `Ok` when the server plans it, the server's
/// error otherwise.
pub fn prepare_each(c: &mut Client, queries: &[ProductionQuery]) -> Vec<Result<(), String>> {
    let results = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            c.batch_execute(&format!("PREPARE hds_running_release_{i} AS {}", q.query)).map_err(|e| {
                match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                }
            })
        })
        .collect();
    let _ = c.batch_execute("DEALLOCATE ALL");
    results
}

/// The queries that prepared before the migration and fail after it.
pub fn broken(
    queries: &[ProductionQuery],
    before: &[Result<(), String>],
    after: &[Result<(), String>],
    plan: &LockPlan,
    framework: Framework,
) -> Vec<Break> {
    queries
        .iter()
        .zip(before.iter().zip(after))
        .filter_map(|(q, (b, a))| match (b, a) {
            (Ok(()), Err(error)) => Some(Break {
                statement_seq: culprit(error, plan),
                query: q.query.clone(),
                calls: q.calls,
                error: error.clone(),
                two_step: two_step(error, framework),
            }),
            _ => None,
        })
        .collect()
}

/// The migration statement whose text names what the error names (`column "legacy_flag"`,
/// `relation "users"`), the last one that does (it left the schema as the query found it).
fn culprit(error: &str, plan: &LockPlan) -> Option<i64> {
    let names: Vec<&str> = error.split('"').skip(1).step_by(2).filter(|n| !n.is_empty()).collect();
    plan.statements
        .iter()
        .rev()
        .find(|s| {
            let text = s.query.to_ascii_lowercase();
            names.iter().any(|n| text.contains(&n.to_ascii_lowercase()))
        })
        .map(|s| s.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_release_sends_and_prepare_takes_is_checked() {
        for q in
            ["SELECT 1", "insert into t values ($1)", "WITH x AS (SELECT 1) SELECT * FROM x", " update t set a = $1"]
        {
            assert!(preparable(q), "{q}");
        }
        for q in
            ["BEGIN", "COMMIT", "SET statement_timeout = $1", "ALTER TABLE t ADD c int", "COPY t TO STDOUT", "SHOW x"]
        {
            assert!(!preparable(q), "{q}");
        }
    }

    #[test]
    fn what_prepared_before_and_fails_after_is_a_break_named_by_its_statement() {
        let plan: LockPlan = serde_json::from_value(serde_json::json!({"statements": [
            {"seq": 1, "tag": "ALTER TABLE", "object": "public.users", "query": "ALTER TABLE users ADD COLUMN nickname text",
             "transaction": 1, "locks": [], "rewrites": [], "waits_for_older_transactions": false},
            {"seq": 2, "tag": "ALTER TABLE", "object": "public.users", "query": "ALTER TABLE users DROP COLUMN legacy_flag",
             "transaction": 1, "locks": [], "rewrites": [], "waits_for_older_transactions": false}
        ]}))
        .unwrap();
        let queries = vec![
            ProductionQuery { query: "SELECT legacy_flag FROM users WHERE id = $1".into(), calls: 12408 },
            ProductionQuery { query: "SELECT email FROM users".into(), calls: 5 },
            ProductionQuery { query: "SELECT * FROM gone".into(), calls: 1 },
        ];
        let before = vec![Ok(()), Ok(()), Err("relation \"gone\" does not exist".to_string())];
        let after = vec![
            Err("column \"legacy_flag\" does not exist".to_string()),
            Ok(()),
            Err("relation \"gone\" does not exist".into()),
        ];
        let found = broken(&queries, &before, &after, &plan, Framework::Rails);
        assert_eq!(found.len(), 1, "what failed before too is not the migration's doing: {found:?}");
        assert_eq!(found[0].statement_seq, Some(2));
        assert_eq!(found[0].calls, 12408);
        assert_eq!(found[0].error, "column \"legacy_flag\" does not exist");
        assert!(
            found[0].two_step.starts_with("first deploy: add `self.ignored_columns += [\"legacy_flag\"]`"),
            "{}",
            found[0].two_step
        );
        assert!(two_step("column \"x\" does not exist", Framework::Django).contains("SeparateDatabaseAndState"));
        assert!(two_step("relation \"users\" does not exist", Framework::Other).contains("a view under the old name"));
    }
}
