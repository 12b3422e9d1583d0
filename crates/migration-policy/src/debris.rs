//! What a failed attempt can leave behind, checked before a retry: a `CREATE INDEX
//! CONCURRENTLY` that was cancelled leaves an INVALID index (a retry then fails with "relation
//! already exists", or builds a second copy under another name), and a migration that is not
//! one transaction can be half applied (the framework records the versions that did apply).
//!
//! Both are found by comparing with a baseline read before the first attempt: the indexes
//! INVALID then are not this run's, and the versions recorded then were applied before it.

use std::collections::BTreeSet;
use std::time::Duration;

use pg_locks::ConnectOptions;
use serde::{Deserialize, Serialize};

/// What was there before the first attempt.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    invalid: BTreeSet<i64>,
    versions: BTreeSet<String>,
}

/// An INVALID index the failed attempt left, and the statement that removes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidIndex {
    /// `public.index_users_on_nickname`.
    pub name: String,
    /// The table it is on.
    pub table: String,
    /// `DROP INDEX CONCURRENTLY "public"."index_users_on_nickname";`
    pub drop_statement: String,
}

/// What one failed attempt left behind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftBehind {
    /// INVALID indexes that were not INVALID before the run.
    pub invalid_indexes: Vec<InvalidIndex>,
    /// Migration versions recorded since the run began (`schema_migrations`, or
    /// `django_migrations` as `app.name`): already applied, a retry skips them.
    pub recorded_versions: Vec<String>,
    /// The INVALID indexes `--drop-invalid-indexes` dropped (each seen gone).
    pub dropped: Vec<String>,
}

const INVALID_SQL: &str =
    "SELECT c.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(c.relname), t.oid::regclass::text, \
     format('DROP INDEX CONCURRENTLY %I.%I;', n.nspname, c.relname) \
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_class t ON t.oid = i.indrelid WHERE NOT i.indisvalid";

/// Versions as the frameworks record them; a table that does not exist reads as none.
const VERSIONS_SQL: &[(&str, &str)] = &[
    ("schema_migrations", "SELECT version::text FROM schema_migrations"),
    ("django_migrations", "SELECT app || '.' || name FROM django_migrations"),
];

fn connect(db: &ConnectOptions) -> anyhow::Result<pg_locks::Conn> {
    Ok(pg_locks::connect(db)?)
}

fn invalid(c: &mut pg_locks::Conn) -> anyhow::Result<Vec<(i64, InvalidIndex)>> {
    Ok(c.query(INVALID_SQL, &[])?
        .iter()
        .map(|r| (r.get(0), InvalidIndex { name: r.get(1), table: r.get(2), drop_statement: r.get(3) }))
        .collect())
}

fn versions(c: &mut pg_locks::Conn) -> anyhow::Result<BTreeSet<String>> {
    let mut all = BTreeSet::new();
    for (table, sql) in VERSIONS_SQL {
        let exists: bool = c.query_one("SELECT to_regclass($1) IS NOT NULL", &[table])?.get(0);
        if exists {
            all.extend(c.query(*sql, &[])?.iter().map(|r| r.get::<_, String>(0)));
        }
    }
    Ok(all)
}

impl Baseline {
    /// Reads the baseline before the first attempt.
    pub fn read(db: &ConnectOptions) -> anyhow::Result<Baseline> {
        let mut c = connect(db)?;
        Ok(Baseline {
            invalid: invalid(&mut c)?.into_iter().map(|(oid, _)| oid).collect(),
            versions: versions(&mut c)?,
        })
    }

    /// What is new since the baseline.
    pub fn left_behind(&self, db: &ConnectOptions) -> anyhow::Result<LeftBehind> {
        let mut c = connect(db)?;
        let invalid_indexes =
            invalid(&mut c)?.into_iter().filter(|(oid, _)| !self.invalid.contains(oid)).map(|(_, i)| i).collect();
        let recorded_versions = versions(&mut c)?.into_iter().filter(|v| !self.versions.contains(v)).collect();
        Ok(LeftBehind { invalid_indexes, recorded_versions, dropped: Vec::new() })
    }
}

/// Drops each index with `DROP INDEX CONCURRENTLY` and verifies it is gone. The drop waits for
/// transactions that may still use the index, but takes no lock that blocks reads or writes,
/// so it may wait (up to a minute) without holding the site up.
pub fn drop_invalid(db: &ConnectOptions, indexes: &[InvalidIndex]) -> anyhow::Result<Vec<String>> {
    let mut c = connect(db)?;
    c.batch_execute("SET lock_timeout = '60s'; SET statement_timeout = '90s'")?;
    let mut dropped = Vec::new();
    for i in indexes {
        c.batch_execute(&i.drop_statement).map_err(|e| anyhow::anyhow!("{}: {e}", i.drop_statement))?;
        let gone: bool = c.query_one("SELECT to_regclass($1) IS NULL", &[&i.name])?.get(0);
        anyhow::ensure!(gone, "{} is still there after {}", i.name, i.drop_statement);
        dropped.push(i.name.clone());
    }
    Ok(dropped)
}

/// How long a drop may take, for the message.
pub const DROP_WAIT: Duration = Duration::from_secs(60);
