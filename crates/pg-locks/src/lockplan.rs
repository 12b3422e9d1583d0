//! The lock plan: which relations a migration locks, in which mode, recorded on a scratch copy
//! of the schema where the migration really runs — and, joined with a production database's
//! live locks, who would make it wait and who would queue behind it.
//!
//! Recorded, not guessed: [`install_recorder`] adds two event triggers to the scratch database.
//! At the end of every DDL command (`ddl_command_end`, which runs inside the command's own
//! transaction) one writes down every relation lock the transaction holds at that moment —
//! tables, the indexes and partitions a statement never names, the table a foreign key
//! references — and which of them the command added; at every table rewrite (`table_rewrite`)
//! the other notes the table. Locks are held until the transaction ends, so what a statement
//! shows is what production would see held from then on until the migration commits.
//!
//! One lock is written from the documentation rather than seen: `CREATE INDEX CONCURRENTLY`
//! holds ShareUpdateExclusiveLock on its table at session level and has let it go when the
//! trigger runs. A dropped relation is gone from the catalog by then too; DROP holds
//! AccessExclusiveLock on it, which is what is written down.
//!
//! Data statements fire no event trigger: statement-level triggers on every table of the
//! scratch database (and on each table the migration creates) record `INSERT`, `UPDATE`,
//! `DELETE` and `TRUNCATE` the same way at the statement's end, with the rows it wrote; a
//! foreign key's cascade is its parent statement's. An `INSERT` lets go of the index locks the
//! executor took for it when it ends, and those are left out. The recorder is held to
//! `pg_locks` and `relfilenode` by an oracle test on every supported major.
//!
//! What it cannot see: `LOCK TABLE`, `CLUSTER`, `VACUUM` and `REINDEX` (no event trigger and no
//! table trigger fires for them: the plan reads them from its own server's log instead); a migration's own transaction that rolls back (its records
//! roll back with it); how long a statement runs on production's data (the scratch tables are
//! empty: the plan measures that on a sample).

use std::collections::{BTreeMap, BTreeSet};

use postgres::Client;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// PostgreSQL's table-level lock modes, weakest first (the documentation's "Table-Level Lock
/// Modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    /// `SELECT`.
    AccessShareLock,
    /// `SELECT … FOR UPDATE/SHARE`.
    RowShareLock,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusiveLock,
    /// `VACUUM`, `CREATE INDEX CONCURRENTLY`, `ANALYZE`, some `ALTER TABLE` forms.
    ShareUpdateExclusiveLock,
    /// `CREATE INDEX`.
    ShareLock,
    /// `CREATE TRIGGER`, `ADD FOREIGN KEY` (on both tables).
    ShareRowExclusiveLock,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    ExclusiveLock,
    /// `DROP TABLE`, most `ALTER TABLE` forms, `TRUNCATE`, `VACUUM FULL`.
    AccessExclusiveLock,
}

impl LockMode {
    /// Every mode, weakest first.
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShareLock,
        LockMode::RowShareLock,
        LockMode::RowExclusiveLock,
        LockMode::ShareUpdateExclusiveLock,
        LockMode::ShareLock,
        LockMode::ShareRowExclusiveLock,
        LockMode::ExclusiveLock,
        LockMode::AccessExclusiveLock,
    ];

    /// The mode as pg_locks names it; `None` for a name that is not a table-level mode.
    pub fn parse(name: &str) -> Option<LockMode> {
        LockMode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The name pg_locks uses.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShareLock => "AccessShareLock",
            LockMode::RowShareLock => "RowShareLock",
            LockMode::RowExclusiveLock => "RowExclusiveLock",
            LockMode::ShareUpdateExclusiveLock => "ShareUpdateExclusiveLock",
            LockMode::ShareLock => "ShareLock",
            LockMode::ShareRowExclusiveLock => "ShareRowExclusiveLock",
            LockMode::ExclusiveLock => "ExclusiveLock",
            LockMode::AccessExclusiveLock => "AccessExclusiveLock",
        }
    }

    /// Whether a session holding `self` makes a request for `other` wait (and the other way
    /// round: the table is symmetric), as the documentation's "Conflicting Lock Modes" table.
    pub fn conflicts_with(self, other: LockMode) -> bool {
        use LockMode::*;
        let (weak, strong) = if self <= other { (self, other) } else { (other, self) };
        match weak {
            AccessShareLock => strong == AccessExclusiveLock,
            RowShareLock => strong >= ExclusiveLock,
            RowExclusiveLock => strong >= ShareLock,
            ShareUpdateExclusiveLock => strong >= ShareUpdateExclusiveLock,
            ShareLock => strong >= ShareRowExclusiveLock,
            ShareRowExclusiveLock | ExclusiveLock | AccessExclusiveLock => true,
        }
    }

    /// What would queue behind a request for this mode while it waits: every later request
    /// that conflicts with it, said for people.
    pub fn queues(self) -> &'static str {
        match self {
            LockMode::AccessExclusiveLock => "every query on the table, reads included",
            LockMode::ExclusiveLock => "every query but plain reads",
            LockMode::ShareRowExclusiveLock | LockMode::ShareLock => "every write (INSERT, UPDATE, DELETE)",
            LockMode::ShareUpdateExclusiveLock => "VACUUM, ANALYZE, CREATE INDEX and schema changes",
            LockMode::RowExclusiveLock => "CREATE INDEX and stronger schema changes",
            LockMode::RowShareLock | LockMode::AccessShareLock => "only statements taking an exclusive lock",
        }
    }
}

/// One relation lock a migration's transaction held at the end of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedLock {
    /// The relation, schema-qualified (`public.users`, `public.users_pkey`).
    pub relation: String,
    /// What it is: `table`, `index`, `partitioned table`, `partitioned index`, `sequence`,
    /// `view`, `materialized view`, … (pg_class.relkind, said).
    pub kind: String,
    /// The strongest mode held on it.
    pub mode: LockMode,
    /// Taken by this statement (false: held since an earlier one of the same transaction).
    pub new: bool,
    /// The migration created it: it was not in the schema the migration ran on, so the
    /// database the plan is for does not have it yet.
    #[serde(default)]
    pub created: bool,
}

/// One DDL statement of the migration and the locks held once it had run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStatement {
    /// 1, 2, … in the order they ran.
    pub seq: i64,
    /// The command tag (`ALTER TABLE`, `CREATE INDEX`, …).
    pub tag: String,
    /// What it made or changed, as PostgreSQL names it (`public.users`).
    pub object: Option<String>,
    /// The query text the client sent (a multi-statement string is sent whole).
    pub query: String,
    /// The migration's transaction: statements in one transaction hold their locks together.
    pub transaction: i64,
    /// Every relation lock the transaction held after it, strongest mode per relation.
    pub locks: Vec<PlannedLock>,
    /// Tables it rewrote (every row copied, under AccessExclusiveLock, for as long as that takes).
    pub rewrites: Vec<String>,
    /// It waits for every transaction older than it to end before it finishes (`CREATE INDEX
    /// CONCURRENTLY`, `REINDEX CONCURRENTLY`, `DETACH PARTITION CONCURRENTLY`).
    pub waits_for_older_transactions: bool,
    /// A data statement (`INSERT`, `UPDATE`, `DELETE`): the rows it wrote where it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// How long it ran where it was recorded, in microseconds (on empty tables: nothing like
    /// production's time; the estimate is what says that).
    #[serde(skip)]
    pub ran_us: Option<u64>,
    /// How many blocks of the database's relations it read where it was recorded, by the
    /// server's own count (None: not counted, e.g. a statement read from the server log).
    #[serde(skip)]
    pub blocks_read: Option<u64>,
    /// How long it would hold its locks on production's data, and what would queue behind them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// How long a statement would run on production's data, holding its locks, and what would
/// queue behind them meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// The best estimate, in milliseconds (null: not measured; `basis` says why).
    pub hold_ms: Option<u64>,
    /// The low end of the range.
    pub low_ms: Option<u64>,
    /// The high end of the range.
    pub high_ms: Option<u64>,
    /// How it was arrived at, in words.
    pub basis: String,
    /// The table whose size it scales with (the largest one it takes a new lock on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// That table's rows on production (its statistics: `pg_class.reltuples`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// That table's size on production, indexes and TOAST included, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// What queues behind its locks: the strongest lock it takes that the site's queries
    /// conflict with, held until its transaction ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Blocks>,
    /// A data statement: the rows it would change on production (its rows on the sample,
    /// scaled like its time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_changed: Option<u64>,
    /// It would run longer than a release phase may (the platform stops the release dyno after
    /// an hour, failing the release): it cannot finish there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub longer_than_a_release_phase: bool,
    /// The form of the statement that would not hold the lock the site queues behind this
    /// long, when one is known (for statements that take such a lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_form: Option<String>,
}

/// The site's queries that would queue behind a statement's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocks {
    /// The relation.
    pub relation: String,
    /// The lock it takes there.
    pub mode: LockMode,
    /// `reads and writes`, or `writes`.
    pub queues: String,
    /// How long the lock is held: from this statement to the end of its transaction, in ms.
    pub for_ms: u64,
    /// Queries expected to queue meanwhile (the table's measured scans and writes a minute ×
    /// that time).
    pub queued: u64,
}

/// What a migration locked, statement by statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockPlan {
    /// In the order they ran.
    pub statements: Vec<PlannedStatement>,
}

impl LockPlan {
    /// Marks the locks on relations that were not in `existing` (the schema before the
    /// migration ran) as created by it.
    pub fn mark_created(&mut self, existing: &BTreeSet<String>) {
        for l in self.statements.iter_mut().flat_map(|s| s.locks.iter_mut()) {
            l.created = !existing.contains(&l.relation);
        }
    }

    /// The strongest mode the migration takes on each relation.
    pub fn strongest(&self) -> BTreeMap<String, LockMode> {
        let mut out: BTreeMap<String, LockMode> = BTreeMap::new();
        for l in self.statements.iter().flat_map(|s| &s.locks) {
            let m = out.entry(l.relation.clone()).or_insert(l.mode);
            *m = (*m).max(l.mode);
        }
        out
    }
}

/// A session on the production database whose lock on a planned relation conflicts with what
/// the migration will ask for there: it holds it (the migration would wait) or waits for it
/// (the migration would queue behind it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Obstacle {
    /// The relation, schema-qualified.
    pub relation: String,
    /// The strongest mode the migration takes on it.
    pub planned: LockMode,
    /// The session.
    pub pid: i32,
    /// Its mode on the relation.
    pub mode: LockMode,
    /// Held (true) or waited for (false).
    pub granted: bool,
    /// Its application_name.
    pub application_name: Option<String>,
    /// How long its transaction has been open, in seconds.
    pub xact_age_secs: Option<f64>,
}

/// Reads production's locks on the planned relations once, and keeps the conflicting ones.
pub fn obstacles(client: &mut Client, plan: &LockPlan) -> Result<Vec<Obstacle>, Error> {
    let planned = plan.strongest();
    let names: Vec<String> = planned.keys().cloned().collect();
    let rows = client
        .query(
            "SELECT l.pid, n.nspname || '.' || c.relname, l.mode, l.granted, a.application_name, \
               extract(epoch FROM now() - a.xact_start)::float8 \
             FROM pg_locks l \
             JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid() \
               AND (n.nspname || '.' || c.relname) = ANY($1) \
             ORDER BY l.granted DESC, a.xact_start NULLS LAST, l.pid",
            &[&names],
        )
        .map_err(|e| Error::from_driver("reading the locks on the planned relations", e))?;
    let mut out = Vec::new();
    for row in rows {
        let relation: String = row.get(1);
        let (Some(planned), Some(mode)) = (planned.get(&relation), LockMode::parse(row.get(2))) else { continue };
        if planned.conflicts_with(mode) {
            out.push(Obstacle {
                relation,
                planned: *planned,
                pid: row.get(0),
                mode,
                granted: row.get(3),
                application_name: row.get(4),
                xact_age_secs: row.get(5),
            });
        }
    }
    Ok(out)
}

/// How busy a planned table is: what would queue behind the migration's lock. Counted by the
/// server since its statistics were last reset, as averages per minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableActivity {
    /// The relation, schema-qualified.
    pub relation: String,
    /// Scans (sequential and index) per minute: each is a query that reads the table.
    pub scans_per_min: f64,
    /// Rows inserted, updated and deleted per minute.
    pub row_writes_per_min: f64,
    /// Over how long, in seconds (since the statistics were reset or the server started).
    pub over_secs: f64,
}

/// Reads how busy each planned table is, once (`pg_stat_user_tables`).
pub fn activity(client: &mut Client, plan: &LockPlan) -> Result<Vec<TableActivity>, Error> {
    let names: Vec<String> = plan.strongest().into_keys().collect();
    let rows = client
        .query(
            "SELECT s.schemaname || '.' || s.relname, \
               (coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0))::float8, \
               (s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::float8, \
               greatest(extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time())), 1)::float8 \
             FROM pg_stat_user_tables s JOIN pg_stat_database d ON d.datname = current_database() \
             WHERE (s.schemaname || '.' || s.relname) = ANY($1) ORDER BY 1",
            &[&names],
        )
        .map_err(|e| Error::from_driver("reading how busy the planned tables are", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let over: f64 = r.get(3);
            TableActivity {
                relation: r.get(0),
                scans_per_min: r.get::<_, f64>(1) * 60.0 / over,
                row_writes_per_min: r.get::<_, f64>(2) * 60.0 / over,
                over_secs: over,
            }
        })
        .collect())
}

/// The recorder's schema, out of the way of the migration's own.
pub const RECORDER_SCHEMA: &str = "_lockplan";

/// Installs the recorder in the scratch database (as a superuser: event triggers need one).
/// Idempotent. Never run this against production.
pub fn install_recorder(client: &mut Client) -> Result<(), Error> {
    client.batch_execute(RECORDER_SQL).map_err(|e| Error::from_driver("installing the lock recorder", e))
}

/// Removes the recorder (its records with it).
pub fn remove_recorder(client: &mut Client) -> Result<(), Error> {
    client
        .batch_execute(
            "DROP EVENT TRIGGER IF EXISTS _lockplan_ddl; DROP EVENT TRIGGER IF EXISTS _lockplan_rewrite; \
             DROP EVENT TRIGGER IF EXISTS _lockplan_start; \
             DROP EVENT TRIGGER IF EXISTS _lockplan_drop; \
             DROP SCHEMA IF EXISTS _lockplan CASCADE",
        )
        .map_err(|e| Error::from_driver("removing the lock recorder", e))
}

/// Every relation of the database, schema-qualified as the recorder names them (read before
/// the migration runs, to tell what it created).
pub fn existing_relations(client: &mut Client) -> Result<BTreeSet<String>, Error> {
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .map_err(|e| Error::from_driver("reading the relations before the migration", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The relations the plan locks that `client`'s database does not have and the migration does
/// not create: a plan made on another schema (another app's, or one this database has not
/// reached yet).
pub fn missing_relations(client: &mut Client, plan: &LockPlan) -> Result<Vec<String>, Error> {
    let wanted: BTreeSet<String> =
        plan.statements.iter().flat_map(|s| &s.locks).filter(|l| !l.created).map(|l| l.relation.clone()).collect();
    let wanted: Vec<String> = wanted.into_iter().collect();
    let rows = client
        .query(
            "SELECT r FROM unnest($1::text[]) r WHERE NOT EXISTS (SELECT 1 FROM pg_class c \
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname || '.' || c.relname = r) ORDER BY r",
            &[&wanted],
        )
        .map_err(|e| Error::from_driver("checking the plan's relations", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What the recorder wrote, as a plan.
pub fn read_plan(client: &mut Client) -> Result<LockPlan, Error> {
    let reading = |e| Error::from_driver("reading the recorded locks", e);
    let rows = client
        .query(
            "SELECT seq, tag, object, query, xid, relation, relkind, mode, is_new, rewrites, ms, rows, blocks \
             FROM _lockplan.locks_by_statement ORDER BY seq, relation",
            &[],
        )
        .map_err(reading)?;
    let mut plan = LockPlan::default();
    for row in rows {
        let seq: i64 = row.get(0);
        if plan.statements.last().is_none_or(|s| s.seq != seq) {
            let (tag, query): (String, String) = (row.get(1), row.get(3));
            plan.statements.push(PlannedStatement {
                seq,
                waits_for_older_transactions: waits_for_older_transactions(&tag, &query),
                tag,
                object: row.get(2),
                query,
                transaction: row.get(4),
                locks: Vec::new(),
                rewrites: row.get::<_, Option<Vec<String>>>(9).unwrap_or_default(),
                ran_us: row.get::<_, Option<f64>>(10).map(|ms| (ms.max(0.0) * 1000.0) as u64),
                rows: row.get::<_, Option<i64>>(11).map(|n| n.max(0) as u64),
                blocks_read: row.get::<_, Option<i64>>(12).map(|n| n.max(0) as u64),
                estimate: None,
            });
        }
        let (Some(relation), Some(mode)) = (row.get::<_, Option<String>>(5), row.get::<_, Option<String>>(7)) else {
            continue;
        };
        let Some(mode) = LockMode::parse(&mode) else { continue };
        let kind = relkind_name(row.get::<_, Option<i8>>(6).map(|k| k as u8 as char));
        let statement = plan.statements.last_mut().expect("pushed above");
        statement.locks.push(PlannedLock { relation, kind, mode, new: row.get(8), created: false });
    }
    Ok(plan)
}

/// `CREATE INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`, `ALTER TABLE … DETACH PARTITION …
/// CONCURRENTLY`: each waits for every transaction older than it before it can finish.
fn waits_for_older_transactions(tag: &str, query: &str) -> bool {
    let concurrently =
        query.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w.eq_ignore_ascii_case("concurrently"));
    concurrently && matches!(tag, "CREATE INDEX" | "REINDEX" | "ALTER TABLE")
}

fn relkind_name(k: Option<char>) -> String {
    match k {
        Some('r') => "table",
        Some('i') => "index",
        Some('S') => "sequence",
        Some('t') => "TOAST table",
        Some('v') => "view",
        Some('m') => "materialized view",
        Some('c') => "composite type",
        Some('f') => "foreign table",
        Some('p') => "partitioned table",
        Some('I') => "partitioned index",
        _ => "relation",
    }
    .to_string()
}

/// The recorder (its own file, SQL): tables of what each statement's transaction held, the
/// event triggers for DDL, the statement triggers for data statements on every table, and a
/// view with the strongest mode per relation and statement. Catalog relations and the
/// recorder's own are left out.
const RECORDER_SQL: &str = include_str!("lockplan_recorder.sql");

#[cfg(test)]
mod tests {
    use super::LockMode::{self, *};

    /// The documentation's "Conflicting Lock Modes" table, row by row: the modes each one
    /// conflicts with.
    #[test]
    fn the_conflict_table_is_the_documentations() {
        let table: [(LockMode, &[LockMode]); 8] = [
            (AccessShareLock, &[AccessExclusiveLock]),
            (RowShareLock, &[ExclusiveLock, AccessExclusiveLock]),
            (RowExclusiveLock, &[ShareLock, ShareRowExclusiveLock, ExclusiveLock, AccessExclusiveLock]),
            (
                ShareUpdateExclusiveLock,
                &[ShareUpdateExclusiveLock, ShareLock, ShareRowExclusiveLock, ExclusiveLock, AccessExclusiveLock],
            ),
            (
                ShareLock,
                &[
                    RowExclusiveLock,
                    ShareUpdateExclusiveLock,
                    ShareRowExclusiveLock,
                    ExclusiveLock,
                    AccessExclusiveLock,
                ],
            ),
            (
                ShareRowExclusiveLock,
                &[
                    RowExclusiveLock,
                    ShareUpdateExclusiveLock,
                    ShareLock,
                    ShareRowExclusiveLock,
                    ExclusiveLock,
                    AccessExclusiveLock,
                ],
            ),
            (
                ExclusiveLock,
                &[
                    RowShareLock,
                    RowExclusiveLock,
                    ShareUpdateExclusiveLock,
                    ShareLock,
                    ShareRowExclusiveLock,
                    ExclusiveLock,
                    AccessExclusiveLock,
                ],
            ),
            (AccessExclusiveLock, &LockMode::ALL),
        ];
        for (mode, conflicts) in table {
            for other in LockMode::ALL {
                assert_eq!(mode.conflicts_with(other), conflicts.contains(&other), "{mode:?} vs {other:?}");
            }
            assert_eq!(LockMode::parse(mode.name()), Some(mode));
        }
    }
}
