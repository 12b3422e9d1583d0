//! The statements no trigger fires for — `LOCK TABLE`, `CLUSTER`, `VACUUM FULL`, `REINDEX` —
//! recorded from the tool's own server log with the locks PostgreSQL documents, held to an
//! oracle that shares nothing with that: each statement alone in a transaction on a second
//! database, and that backend's own `pg_locks` read there (for `VACUUM FULL`, which no
//! transaction may hold, the lock it asks for while a reader makes it wait), and `relfilenode`
//! before and after (a changed one is a rewrite). In the version matrix: every supported major.

use std::collections::{BTreeMap, BTreeSet};

use migration_plan::scratch::Scratch;
use pg_locks::lockplan::LockMode;
use test_support::sessions::{spawn, wait_until};

const SCHEMA: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text);
INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 200) g;
CREATE INDEX users_email ON users (email);
CREATE TABLE logs (id int, at date);
CREATE TABLE logs_2026 () INHERITS (logs);
";

/// (what the migration sends, the statement the oracle runs alone)
const CASES: &[(&str, &str)] = &[
    ("BEGIN; LOCK TABLE users IN SHARE MODE; COMMIT", "LOCK TABLE users IN SHARE MODE"),
    ("BEGIN; LOCK logs; COMMIT", "LOCK logs"),
    ("CLUSTER users USING users_pkey", "CLUSTER users USING users_pkey"),
    ("REINDEX TABLE users", "REINDEX TABLE users"),
    ("REINDEX INDEX users_email", "REINDEX INDEX users_email"),
];

struct Server {
    scratch: Scratch,
    url: String,
    psql: std::path::PathBuf,
}

fn server() -> Server {
    let bindir = test_support::postgres::find_bindir().unwrap();
    let server = schema_copy::ScratchServer::start(&bindir).unwrap();
    let url = server.url();
    let db = cli_kit::ResolvedDatabase {
        url: url.clone(),
        source: cli_kit::DatabaseSource::Flag,
        dbname: "postgres".into(),
        host: "127.0.0.1".into(),
    };
    let mut scratch = Scratch::named(db);
    scratch.server = Some(server);
    Server { scratch, url, psql: test_support::postgres::find_psql(&bindir).unwrap() }
}

fn client(url: &str) -> pg_locks::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn files(c: &mut impl postgres::GenericClient) -> BTreeMap<String, u32> {
    c.query(
        "SELECT 'public.' || relname, relfilenode::int8 FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get::<_, i64>(1) as u32))
    .collect()
}

fn own_locks(c: &mut impl postgres::GenericClient, pid_sql: &str) -> BTreeMap<String, LockMode> {
    let mut out: BTreeMap<String, LockMode> = BTreeMap::new();
    for r in c
        .query(
            &format!(
                "SELECT 'public.' || c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE l.pid = {pid_sql} AND l.locktype = 'relation' AND c.relnamespace = 'public'::regnamespace"
            ),
            &[],
        )
        .unwrap()
    {
        let mode = LockMode::parse(&r.get::<_, String>(1)).unwrap();
        let m = out.entry(r.get(0)).or_insert(mode);
        *m = (*m).max(mode);
    }
    out
}

/// The plan of `message` on the server's `postgres` database: the one statement no trigger saw.
fn planned(s: &Server, message: &str) -> (BTreeMap<String, LockMode>, BTreeSet<String>, String) {
    let command = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{} \"$DATABASE_URL\" -X -q -v ON_ERROR_STOP=1 -c '{message}'", s.psql.display()),
    ];
    let recorded = record(s, &command);
    assert!(recorded.unseen.is_empty(), "{:?}", recorded.unseen);
    // Seen once: from the log, or (REINDEX from PostgreSQL 17) by an event trigger.
    let seen: Vec<_> = recorded
        .plan
        .statements
        .iter()
        .filter(|st| matches!(st.tag.as_str(), "LOCK TABLE" | "CLUSTER" | "VACUUM FULL" | "REINDEX"))
        .collect();
    assert_eq!(seen.len(), 1, "{message}: {:#?}", recorded.plan);
    let st = seen[0];
    (
        st.locks.iter().map(|l| (l.relation.clone(), l.mode)).collect(),
        st.rewrites.iter().cloned().collect(),
        st.tag.clone(),
    )
}

/// The plan of `command` on the server's `postgres` database (production's queries unread).
fn record(s: &Server, command: &[String]) -> migration_plan::record::Recorded {
    migration_plan::record(
        "test",
        &s.scratch,
        command,
        &migration_plan::breaks::Statements::Unavailable("not read".into()),
        migration_plan::breaks::Framework::Other,
    )
    .unwrap()
}

fn fresh(s: &Server, name: &str) -> String {
    let mut admin = client(&s.url);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE base")).unwrap();
    s.url.replacen("/postgres?", &format!("/{name}?"), 1)
}

#[test]
fn statements_no_trigger_sees_are_recorded_from_the_log_as_pg_locks_shows_them() {
    let s = server();
    let mut admin = client(&s.url);
    admin.batch_execute("CREATE DATABASE base").unwrap();
    client(&s.url.replacen("/postgres?", "/base?", 1)).batch_execute(SCHEMA).unwrap();
    let mut disagreements = Vec::new();
    for (message, alone) in CASES {
        // The plan runs on `postgres`: a fresh copy of base each time.
        let mut p = client(&s.url);
        p.batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public").unwrap();
        p.batch_execute(SCHEMA).unwrap();
        let (locks, rewrites, tag) = planned(&s, message);
        let oracle_url = fresh(&s, "oracle");
        let mut o = client(&oracle_url);
        let mut tx = o.transaction().unwrap();
        let before = files(&mut tx);
        tx.batch_execute(alone).unwrap();
        let expected = own_locks(&mut tx, "pg_backend_pid()");
        let after = files(&mut tx);
        tx.rollback().unwrap();
        let rewritten: BTreeSet<String> =
            before.iter().filter(|(t, f)| after.get(*t).is_some_and(|a| a != *f)).map(|(t, _)| t.clone()).collect();
        if locks != expected || rewrites != rewritten {
            disagreements.push(format!(
                "{message} ({tag})\n  recorded {locks:?} rewrites {rewrites:?}\n  pg_locks {expected:?} relfilenode changed {rewritten:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "the recorder and pg_locks disagree:\n{}", disagreements.join("\n"));
}

/// VACUUM FULL runs in no transaction block: the oracle reads the lock it asks for while a
/// reader holds the table, and the table's file after it ran.
#[test]
fn vacuum_full_asks_for_what_the_plan_records_and_rewrites_the_table() {
    let s = server();
    client(&s.url).batch_execute(SCHEMA).unwrap();
    let (locks, rewrites, tag) = planned(&s, "VACUUM FULL users");
    assert_eq!(tag, "VACUUM FULL");
    assert_eq!(rewrites, BTreeSet::from(["public.users".to_string()]));

    let oracle_url = {
        let mut admin = client(&s.url);
        admin.batch_execute("CREATE DATABASE oracle").unwrap();
        let url = s.url.replacen("/postgres?", "/oracle?", 1);
        client(&url).batch_execute(SCHEMA).unwrap();
        url
    };
    let mut o = client(&oracle_url);
    let before = files(&mut o);
    let reader = spawn(&oracle_url, "reader", "BEGIN; SELECT count(*) FROM users; SELECT pg_sleep(30)");
    wait_until("the reader holds users", || !own_locks(&mut o, &reader.pid.to_string()).is_empty());
    let vacuum = spawn(&oracle_url, "vacuum", "VACUUM FULL users");
    wait_until("VACUUM FULL waits", || {
        o.query_one("SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", &[&vacuum.pid])
            .unwrap()
            .get::<_, i64>(0)
            == 1
    });
    let asked: String = o
        .query_one(
            "SELECT mode FROM pg_locks WHERE pid = $1 AND NOT granted AND relation = 'users'::regclass",
            &[&vacuum.pid],
        )
        .unwrap()
        .get(0);
    assert_eq!(locks.get("public.users").map(|m| m.name()), Some(asked.as_str()), "{locks:?}");
    o.batch_execute(&format!("SELECT pg_cancel_backend({})", reader.pid)).unwrap();
    vacuum.finish().unwrap();
    assert_ne!(files(&mut o)["public.users"], before["public.users"], "VACUUM FULL rewrote users");
}

/// A framework sends `BEGIN`, then each statement as a message of its own: a `LOCK TABLE` in
/// there shares the transaction of the statements recorded after it, so its lock is held
/// across them in the plan as it is on the server.
#[test]
fn a_lock_sent_on_its_own_inside_a_transaction_shares_that_transaction() {
    let s = server();
    client(&s.url).batch_execute(SCHEMA).unwrap();
    let dir = test_support::tempfile::tempdir().unwrap();
    let file = dir.path().join("migration.sql");
    std::fs::write(
        &file,
        "BEGIN;\nLOCK TABLE users IN SHARE MODE;\nUPDATE users SET email = email WHERE id = 1;\nCOMMIT;\nBEGIN;\nLOCK TABLE logs;\nCOMMIT;\n",
    )
    .unwrap();
    let command = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{} \"$DATABASE_URL\" -X -q -v ON_ERROR_STOP=1 -f '{}'", s.psql.display(), file.display()),
    ];
    let recorded = record(&s, &command);
    let tags: Vec<&str> = recorded.plan.statements.iter().map(|st| st.tag.as_str()).collect();
    assert_eq!(tags, vec!["LOCK TABLE", "UPDATE", "LOCK TABLE"], "{:#?}", recorded.plan);
    let t: Vec<i64> = recorded.plan.statements.iter().map(|st| st.transaction).collect();
    assert_eq!(t[0], t[1], "the LOCK and the UPDATE after it are one transaction: {t:?}");
    assert_ne!(t[2], t[1], "a LOCK after COMMIT is not: {t:?}");
}
