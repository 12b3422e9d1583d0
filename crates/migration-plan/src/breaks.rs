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
    if error.starts_with("null value in column ") {
        let default = match framework {
            Framework::Rails => format!("`change_column_default` for {name}"),
            Framework::Django => format!("a database default for {name} (`db_default`, Django 5+)"),
            Framework::Other => format!("`ALTER COLUMN {name} SET DEFAULT …`"),
        };
        return format!(
            "first deploy: {default}, or code that sets {name} on every insert (and a backfill of its empty rows); next deploy: the NOT NULL, once the running code always writes it"
        );
    }
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

/// What `pg_stat_statements` and `pg_stat_activity` show for a text this credential may not read.
const HIDDEN: &str = "<insufficient privilege>";

fn hidden(row: &postgres::Row) -> bool {
    row.try_get::<_, Option<String>>(0).ok().flatten().as_deref() == Some(HIDDEN)
}

/// Reads the `top` busiest statements of this database from `pg_stat_statements` (one query).
pub fn read_production(c: &mut Client, top: usize) -> Statements {
    // Read more than `top`, since transaction control and DDL are dropped after.
    let rows = c.query(
        "SELECT query, calls::int8 FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY calls DESC LIMIT $1",
        &[&((top * 2) as i64)],
    );
    match rows {
        // One query, and no other first: a read of the catalogs would be counted itself, and a
        // view just reset would not look empty.
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Statements::Unavailable(
            "pg_stat_statements is not installed in the app's database (Heroku Postgres has it on production plans: heroku pg:psql -c \"CREATE EXTENSION pg_stat_statements\")".into(),
        ),
        Ok(rows) if rows.iter().any(hidden) => Statements::Unavailable(format!(
            "this credential cannot read other roles' statements in pg_stat_statements ({} of the busiest are hidden): plan with the credential the app connects with (its DATABASE_URL), or one granted pg_read_all_stats",
            rows.iter().filter(|r| hidden(r)).count()
        )),
        Ok(rows) => match rows
            .iter()
                .map(|r| ProductionQuery {
                    query: r.try_get::<_, Option<String>>(0).ok().flatten().unwrap_or_default().trim().trim_end_matches(';').to_string(),
                    calls: r.get(1),
                })
                .filter(|q| preparable(&q.query))
                .take(top)
            .collect::<Vec<_>>()
        {
            // Nothing to check is no all-clear.
            read if read.is_empty() => Statements::Unavailable(
                "pg_stat_statements holds no statement of this database the running release sends (its statistics were reset, or nothing has run since it was installed)".into(),
            ),
            read => Statements::Read(read),
        },
        Err(e) => Statements::Unavailable(format!(
            "pg_stat_statements could not be read: {}",
            cli_kit::one_line(&anyhow::Error::new(e))
        )),
    }
}

/// How production's own queries were checked against the migrated copy.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// How many were prepared there.
    pub statements: usize,
    /// Why `pg_stat_statements` could not be read, when it could not.
    pub unchecked: Option<String>,
    /// How long production's sessions were sampled instead, when they were.
    pub sampled_for: Option<std::time::Duration>,
}

/// How long production's sessions are watched when `pg_stat_statements` cannot be read.
pub const ACTIVITY_SAMPLE: std::time::Duration = std::time::Duration::from_secs(5);

/// The weaker fallback when `pg_stat_statements` cannot be read: what production's sessions
/// run (or last ran, for an idle connection of a pool) over `window`, looked at every 50 ms —
/// each distinct text with how many looks saw it. A query that did not run in the window is not
/// seen; texts this credential may not read are skipped.
pub fn sample_activity(c: &mut Client, window: std::time::Duration) -> Vec<ProductionQuery> {
    let mut seen: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    // A text as long as the server keeps was cut there: not a statement to check.
    let kept: usize = c
        .query_one("SELECT current_setting('track_activity_query_size')::int", &[])
        .map(|r| r.get::<_, i32>(0) as usize)
        .unwrap_or(1024);
    let until = std::time::Instant::now() + window;
    while std::time::Instant::now() < until {
        let rows = c.query(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' AND query <> ''",
            &[],
        );
        for row in rows.into_iter().flatten() {
            let query: String = row.try_get::<_, Option<String>>(0).ok().flatten().unwrap_or_default();
            let query = query.trim().trim_end_matches(';').to_string();
            if query.len() < kept.saturating_sub(1) && preparable(&query) {
                *seen.entry(query).or_default() += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut sampled: Vec<ProductionQuery> =
        seen.into_iter().map(|(query, calls)| ProductionQuery { query, calls }).collect();
    sampled.sort_by_key(|q| std::cmp::Reverse(q.calls));
    sampled
}

/// The shape of the schema the running release uses, as lines to compare before and after
/// the migration on the copy: each relation (sequences too), each column with its type and
/// nullability, each constraint and unique index, each column an insert must give (not null,
/// no default), each function with its signature and result, each enum, domain, range and
/// composite type, and each enum label.
pub fn schema_shape(c: &mut Client) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let rows = c.query(
        "WITH rel AS (SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_lockplan') AND n.nspname NOT LIKE 'pg\\_%'), \
         ns AS (SELECT oid FROM pg_namespace \
           WHERE nspname NOT IN ('pg_catalog', 'information_schema', '_lockplan') AND nspname NOT LIKE 'pg\\_%') \
         SELECT 'relation ' || name FROM rel \
         UNION ALL SELECT format('column %s.%I %s%s', r.name, a.attname, format_type(a.atttypid, a.atttypmod), \
                                 CASE WHEN a.attnotnull THEN ' not null' ELSE '' END) \
           FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid WHERE a.attnum > 0 AND NOT a.attisdropped \
         UNION ALL SELECT format('required %s.%I', r.name, a.attname) \
           FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid WHERE a.attnum > 0 AND NOT a.attisdropped \
            AND a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '' \
         UNION ALL SELECT format('constraint %s.%I', r.name, k.conname) FROM rel r JOIN pg_constraint k ON k.conrelid = r.oid \
         UNION ALL SELECT format('unique index %s.%s', r.name, i.indexrelid::regclass) \
           FROM rel r JOIN pg_index i ON i.indrelid = r.oid WHERE i.indisunique \
         UNION ALL SELECT format('function %s returns %s', p.oid::regprocedure, p.prorettype::regtype) \
           FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace \
         UNION ALL SELECT format('type %s', t.oid::regtype) FROM pg_type t JOIN ns ON ns.oid = t.typnamespace \
           WHERE t.typtype IN ('e', 'd', 'r', 'm') \
              OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = t.typrelid AND k.relkind = 'c')) \
         UNION ALL SELECT format('enum label %s %L', e.enumtypid::regtype, e.enumlabel) \
           FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN ns ON ns.oid = t.typnamespace",
        &[],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What the migration changed that a query of the running release may rely on: anything of
/// the old shape gone (a relation or column dropped or renamed, a type or nullability
/// changed), and on a relation that was there, a new constraint, unique index or column every
/// insert must give. Added relations and optional columns are not listed (an added column can
/// still make an unqualified name in a join ambiguous: only production's own queries show
/// that).
pub fn narrowed(
    before: &std::collections::BTreeSet<String>,
    after: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    let relation_of = |line: &str| -> Option<String> {
        let rest = ["constraint ", "unique index ", "required "].iter().find_map(|k| line.strip_prefix(k))?;
        let mut parts = rest.splitn(3, '.');
        Some(format!("relation {}.{}", parts.next()?, parts.next()?))
    };
    // Losing a required column or a NOT NULL relaxes what inserts must give: nothing breaks.
    let relaxed = |l: &str| l.strip_suffix(" not null").is_some_and(|nullable| after.contains(nullable));
    let gone = before.difference(after).filter(|l| !l.starts_with("required ") && !relaxed(l));
    let demanded = after.difference(before).filter(|l| relation_of(l).is_some_and(|r| before.contains(&r)));
    gone.chain(demanded).cloned().collect()
}

/// A statement a release sends and `PREPARE` takes, and one only: the text goes into a
/// `PREPARE` on the copy, where a second statement would run.
fn preparable(query: &str) -> bool {
    let first = query.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
    PREPARABLE.iter().any(|k| first.eq_ignore_ascii_case(k))
        && crate::sql_text::statements(query).iter().filter(|s| !s.is_empty()).count() == 1
}

/// Prepares each query on `c` (and lets it go): `Ok` when the server plans it, the server's
/// error otherwise — or, for an insert the server plans but whose row would leave a `NOT NULL`
/// column empty, the error it would raise on the first row ([`null_into_not_null`]). One round
/// trip for them all (a function in the session's temporary schema tries each), so thousands
/// are checked in about a second.
pub fn prepare_each(c: &mut Client, queries: &[ProductionQuery]) -> anyhow::Result<Vec<Result<(), String>>> {
    // A generic plan keeps `$n` as parameters, so the planned row shows what the statement
    // itself leaves empty.
    c.batch_execute(concat!("SET plan_cache_mode = force_generic_plan; ", include_str!("prepare_each.sql")))?;
    // In batches: each call is one transaction, holding what its statements' planning locked
    // until it returns, under the connection's statement timeout.
    let mut rows = Vec::with_capacity(queries.len());
    for batch in queries.chunks(PREPARED_PER_CALL) {
        let texts: Vec<&str> = batch.iter().map(|q| q.query.as_str()).collect();
        let inserts: Vec<bool> = batch.iter().map(|q| writes_rows(&q.query)).collect();
        rows.extend(c.query(
            "SELECT error, plan FROM pg_temp.hds_prepare_each($1, $2) WITH ORDINALITY ORDER BY ordinality",
            &[&texts, &inserts],
        )?);
    }
    let mut required = RequiredColumns::default();
    let results = rows
        .iter()
        .map(|r| match (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1)) {
            (Some(error), _) => Err(error),
            (None, Some(plan)) => match serde_json::from_str(&plan) {
                Ok(plan) => null_into_not_null(c, &plan, &mut required),
                // A plan that cannot be read is no evidence of a break.
                Err(_) => Ok(()),
            },
            (None, None) => Ok(()),
        })
        .collect();
    c.batch_execute("RESET plan_cache_mode")?;
    Ok(results)
}

/// How many statements one call of the checking function prepares.
const PREPARED_PER_CALL: usize = 250;

fn writes_rows(query: &str) -> bool {
    let first = query.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
    first.eq_ignore_ascii_case("insert") || first.eq_ignore_ascii_case("with")
}

/// Each table's columns an insert must fill, read once per table.
#[derive(Default)]
struct RequiredColumns {
    by_table: std::collections::HashMap<(String, String), Vec<(i16, String)>>,
    names_relation: Option<bool>,
}

/// What `PREPARE` cannot see: an insert that leaves out a column which is `NOT NULL` with no
/// default plans fine and fails on its first row. The server's rewriter completes every
/// insert's row to the table's columns in order — the default where there is one, `NULL`
/// where the statement gives nothing — and the generic plan shows that row
/// (`EXPLAIN (VERBOSE)`: `"Output": ["$1", "NULL::boolean", "now()"]`). A `NULL` the
/// statement itself puts in a `NOT NULL` column (neither generated nor filled by a `BEFORE
/// INSERT` row trigger, which may set it) is the violation the server would raise, worded as
/// it words it.
fn null_into_not_null(c: &mut Client, plan: &serde_json::Value, required: &mut RequiredColumns) -> Result<(), String> {
    for (schema, table, row) in inserted_rows(plan) {
        let empty = |attnum: i16| row.get(attnum as usize - 1).is_some_and(|e| e.starts_with("NULL::"));
        let key = (schema, table);
        if !required.by_table.contains_key(&key) {
            let columns = c
                .query(
                    "SELECT a.attnum, a.attname::text FROM pg_attribute a \
                     WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass AND a.attnum > 0 \
                       AND a.attnotnull AND NOT a.attisdropped AND a.attgenerated = '' \
                       AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = a.attrelid \
                                       AND NOT t.tgisinternal AND t.tgtype & 7 = 7) \
                     ORDER BY a.attnum",
                    &[&key.0, &key.1],
                )
                .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
                .unwrap_or_default();
            required.by_table.insert(key.clone(), columns);
        }
        let violated = required.by_table[&key].iter().find(|(attnum, _)| empty(*attnum));
        if let Some((_, column)) = violated {
            // The server's wording: PostgreSQL 13 added the relation.
            let names_relation = *required.names_relation.get_or_insert_with(|| {
                c.query_one("SELECT current_setting('server_version_num')::int >= 130000", &[])
                    .map(|r| r.get(0))
                    .unwrap_or(true)
            });
            let of_relation = if names_relation { format!(" of relation \"{}\"", key.1) } else { String::new() };
            return Err(format!("null value in column \"{column}\"{of_relation} violates not-null constraint"));
        }
    }
    Ok(())
}

/// Every insert in an explained plan (`WITH … INSERT` included): its table and the row the
/// server completed, one expression per column in column order.
fn inserted_rows(plan: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    let mut stack: Vec<&serde_json::Value> = plan.as_array().into_iter().flatten().map(|p| &p["Plan"]).collect();
    while let Some(node) = stack.pop() {
        let children = node["Plans"].as_array();
        if node["Node Type"] == "ModifyTable" && node["Operation"] == "Insert" {
            // The row comes from the subplan ("Outer"; "Member" before PostgreSQL 14), not from
            // an InitPlan a subquery or CTE hangs on the node, which EXPLAIN lists first.
            let row = children
                .and_then(|c| c.iter().find(|c| matches!(c["Parent Relationship"].as_str(), Some("Outer" | "Member"))))
                .and_then(|c| c["Output"].as_array());
            if let (Some(schema), Some(table), Some(row)) =
                (node["Schema"].as_str(), node["Relation Name"].as_str(), row)
            {
                let row = row.iter().map(|e| e.as_str().unwrap_or_default().to_string()).collect();
                found.push((schema.to_string(), table.to_string(), row));
            }
        }
        stack.extend(children.into_iter().flatten());
    }
    found
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
    // The first name is the most precise (the column before its relation).
    error.split('"').skip(1).step_by(2).filter(|n| !n.is_empty()).find_map(|name| {
        let name = name.to_ascii_lowercase();
        plan.statements.iter().rev().find(|s| s.query.to_ascii_lowercase().contains(&name)).map(|s| s.seq)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(lines: &[&str]) -> std::collections::BTreeSet<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn what_the_running_release_may_rely_on_is_narrowed_by_drops_renames_and_new_demands_only() {
        let before = shape(&[
            "relation public.users",
            "column public.users.id integer not null",
            "column public.users.email text not null",
            "required public.users.email",
            "column public.users.nickname text",
            "constraint public.users.users_pkey",
        ]);
        // Only additions: a new table, an optional column, a NOT NULL dropped.
        let mut relaxed = before.clone();
        relaxed.extend(shape(&[
            "relation public.posts",
            "column public.posts.id integer not null",
            "required public.posts.id",
            "column public.users.bio text",
        ]));
        relaxed.remove("column public.users.email text not null");
        relaxed.remove("required public.users.email");
        relaxed.insert("column public.users.email text".into());
        assert_eq!(narrowed(&before, &relaxed), Vec::<String>::new());
        // A rename, a SET NOT NULL, a new check and a new column every insert must give.
        let mut demanding = before.clone();
        demanding.remove("column public.users.nickname text");
        demanding.extend(shape(&[
            "column public.users.display_name text not null",
            "constraint public.users.email_has_at",
            "column public.users.tenant integer not null",
            "required public.users.tenant",
        ]));
        assert_eq!(
            narrowed(&before, &demanding),
            vec![
                "column public.users.nickname text".to_string(),
                "constraint public.users.email_has_at".to_string(),
                "required public.users.tenant".to_string(),
            ]
        );
    }

    #[test]
    fn a_not_null_break_gets_a_default_first_in_the_apps_framework() {
        let error = "null value in column \"nickname\" of relation \"users\" violates not-null constraint";
        assert!(two_step(error, Framework::Rails).starts_with("first deploy: `change_column_default` for nickname"));
        assert!(two_step(error, Framework::Django).contains("`db_default`"));
        assert!(two_step(error, Framework::Other).contains("`ALTER COLUMN nickname SET DEFAULT …`"));
    }

    #[test]
    fn the_inserted_rows_of_an_explained_plan_are_found_at_any_depth() {
        let plan = serde_json::json!([{"Plan": {"Node Type": "CTE Scan", "Plans": [
            {"Node Type": "ModifyTable", "Operation": "Insert", "Schema": "public", "Relation Name": "users",
             "Plans": [{"Node Type": "Result", "Parent Relationship": "InitPlan", "Output": ["NULL::text"]},
                       {"Node Type": "Result", "Parent Relationship": "Outer", "Output": ["$1", "NULL::text"]}]},
            {"Node Type": "ModifyTable", "Operation": "Update", "Schema": "public", "Relation Name": "posts",
             "Plans": [{"Node Type": "Result", "Parent Relationship": "Outer", "Output": ["NULL::text"]}]}
        ]}}]);
        assert_eq!(
            inserted_rows(&plan),
            vec![("public".to_string(), "users".to_string(), vec!["$1".to_string(), "NULL::text".to_string()])]
        );
    }

    #[test]
    fn only_what_a_release_sends_and_prepare_takes_is_checked() {
        for q in
            ["SELECT 1", "insert into t values ($1)", "WITH x AS (SELECT 1) SELECT * FROM x", " update t set a = $1"]
        {
            assert!(preparable(q), "{q}");
        }
        for q in [
            "BEGIN",
            "COMMIT",
            "SET statement_timeout = $1",
            "ALTER TABLE t ADD c int",
            "COPY t TO STDOUT",
            "SHOW x",
            "SELECT 1; COPY (SELECT '') TO PROGRAM 'true'",
        ] {
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
