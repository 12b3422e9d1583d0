//! The recorder held to an oracle it does not share: each statement runs alone in a transaction
//! on a second copy of the same database, and the test reads that backend's own `pg_locks`
//! (strongest mode per relation) and each table's `relfilenode` before and after (a changed one
//! is a rewrite). The plan must agree on every relation of the app's schema — data statements
//! (which fire no event trigger) and DDL alike. In the version matrix: every supported major.

use std::collections::{BTreeMap, BTreeSet};

use pg_locks::lockplan::{self, LockMode};
use test_support::PgCluster;

const SCHEMA: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text, flag bool);
INSERT INTO users SELECT g, 'u' || g, false FROM generate_series(1, 200) g;
CREATE INDEX users_email ON users (email);
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users (id) ON DELETE CASCADE, total int);
INSERT INTO orders SELECT g, 1 + g % 200, g FROM generate_series(1, 400) g;
CREATE MATERIALIZED VIEW totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;
CREATE TABLE events (id int, at timestamptz);
INSERT INTO events SELECT g, now() FROM generate_series(1, 50) g;
";

/// One statement of each kind a migration sends, data and schema alike.
const STATEMENTS: &[&str] = &[
    "UPDATE users SET flag = true WHERE id <= 100",
    "DELETE FROM orders WHERE id > 300",
    "INSERT INTO orders SELECT g, 1, 0 FROM generate_series(1000, 1010) g",
    "DELETE FROM users WHERE id = 5",
    "TRUNCATE events",
    "REFRESH MATERIALIZED VIEW totals",
    "ALTER TABLE users ADD COLUMN nickname text",
    "ALTER TABLE events ALTER COLUMN id TYPE bigint",
    "CREATE INDEX orders_total ON orders (total)",
    "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total >= 0)",
];

fn client(pg: &PgCluster, db: &str) -> pg_locks::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port())
        .user(test_support::postgres::SUPERUSER)
        .password(test_support::postgres::SUPERUSER_PASSWORD)
        .dbname(db)
        .connect(postgres::NoTls)
        .unwrap()
}

/// Relation → file, for the app's tables and materialized views.
fn files(c: &mut impl postgres::GenericClient) -> BTreeMap<String, u32> {
    c.query(
        "SELECT 'public.' || relname, relfilenode::int8 FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'm')",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get::<_, i64>(1) as u32))
    .collect()
}

/// The oracle: the statement alone in a transaction; this backend's locks on the app's
/// relations at its end (strongest per relation), and the tables whose file changed.
fn oracle(c: &mut pg_locks::Client, sql: &str) -> (BTreeMap<String, LockMode>, BTreeSet<String>) {
    let mut tx = c.transaction().unwrap();
    let before = files(&mut tx);
    tx.batch_execute(sql).unwrap();
    let mut locks: BTreeMap<String, LockMode> = BTreeMap::new();
    for r in tx
        .query(
            "SELECT 'public.' || c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted \
               AND c.relnamespace = 'public'::regnamespace",
            &[],
        )
        .unwrap()
    {
        let mode = LockMode::parse(&r.get::<_, String>(1)).unwrap();
        let m = locks.entry(r.get(0)).or_insert(mode);
        *m = (*m).max(mode);
    }
    let after = files(&mut tx);
    tx.rollback().unwrap();
    let rewritten =
        before.iter().filter(|(t, f)| after.get(*t).is_some_and(|a| a != *f)).map(|(t, _)| t.clone()).collect();
    (locks, rewritten)
}

#[test]
fn the_recorder_agrees_with_pg_locks_on_every_statement_kind() {
    let pg = PgCluster::start().unwrap();
    pg.psql("postgres", "CREATE DATABASE base").unwrap();
    pg.psql("base", SCHEMA).unwrap();
    let mut disagreements = Vec::new();
    for (i, sql) in STATEMENTS.iter().enumerate() {
        let (recorded_db, oracle_db) = (format!("recorded_{i}"), format!("oracle_{i}"));
        for db in [&recorded_db, &oracle_db] {
            pg.psql("postgres", &format!("CREATE DATABASE {db} TEMPLATE base")).unwrap();
        }
        let mut rec = client(&pg, &recorded_db);
        lockplan::install_recorder(&mut rec).unwrap();
        client(&pg, &recorded_db).batch_execute(sql).unwrap();
        let plan = lockplan::read_plan(&mut rec).unwrap();
        let (expected, rewritten) = oracle(&mut client(&pg, &oracle_db), sql);

        assert_eq!(plan.statements.len(), 1, "{sql}: one statement recorded: {plan:#?}");
        let s = &plan.statements[0];
        let recorded: BTreeMap<String, LockMode> = s.locks.iter().map(|l| (l.relation.clone(), l.mode)).collect();
        if recorded != expected {
            disagreements.push(format!("{sql}\n  recorded {recorded:?}\n  pg_locks {expected:?}"));
        }
        let recorded_rewrites: BTreeSet<String> = s.rewrites.iter().cloned().collect();
        if recorded_rewrites != rewritten {
            disagreements
                .push(format!("{sql}\n  recorded rewrites {recorded_rewrites:?}\n  relfilenode changed {rewritten:?}"));
        }
        if sql.starts_with("UPDATE") {
            assert_eq!(s.rows, Some(100), "{s:?}");
            assert_eq!(s.tag, "UPDATE");
        }
    }
    assert!(disagreements.is_empty(), "the recorder and pg_locks disagree:\n{}", disagreements.join("\n"));
}
