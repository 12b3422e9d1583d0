//! The lock recorder against real PostgreSQL, one statement kind per test, compared with what
//! PostgreSQL's documentation says each takes ("Explicit Locking", and each command's page).
//! In the version matrix, so every supported major version is checked.

use pg_locks::lockplan::{self, LockMode, LockPlan, PlannedStatement};
use test_support::sessions::{spawn, wait_until};
use test_support::PgCluster;

/// A scratch database with `users` (a primary key), `orders` (referencing nothing yet) and the
/// recorder installed; `migration` then runs as one client request (one transaction).
fn record(setup: &str, migration: &str) -> LockPlan {
    let pg = PgCluster::start().unwrap();
    pg.psql(
        "postgres",
        "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 100) g;
         CREATE TABLE orders (id int PRIMARY KEY, user_id int)",
    )
    .unwrap();
    if !setup.is_empty() {
        pg.psql("postgres", setup).unwrap();
    }
    let mut c = client(&pg);
    lockplan::install_recorder(&mut c).unwrap();
    pg.psql("postgres", migration).unwrap();
    lockplan::read_plan(&mut c).unwrap()
}

fn client(pg: &PgCluster) -> pg_locks::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port())
        .user(test_support::postgres::SUPERUSER)
        .password(test_support::postgres::SUPERUSER_PASSWORD)
        .dbname("postgres")
        .connect(postgres::NoTls)
        .unwrap()
}

fn only(plan: &LockPlan) -> &PlannedStatement {
    assert_eq!(plan.statements.len(), 1, "{plan:#?}");
    &plan.statements[0]
}

fn mode_on(s: &PlannedStatement, relation: &str) -> Option<LockMode> {
    s.locks.iter().find(|l| l.relation == relation).map(|l| l.mode)
}

#[test]
fn add_column_takes_access_exclusive_and_rewrites_nothing() {
    let plan = record("", "ALTER TABLE users ADD COLUMN nickname text");
    let s = only(&plan);
    assert_eq!(s.tag, "ALTER TABLE");
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::AccessExclusiveLock), "{s:#?}");
    assert!(s.rewrites.is_empty(), "{s:#?}");
    assert!(!s.waits_for_older_transactions);
    // The server's own count: a catalog change reads no block of the table's rows.
    assert_eq!(s.blocks_read, Some(0), "{s:#?}");
}

#[test]
fn add_column_with_a_volatile_default_rewrites_the_table() {
    let plan = record("", "ALTER TABLE users ADD COLUMN score float8 DEFAULT random()");
    let s = only(&plan);
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::AccessExclusiveLock), "{s:#?}");
    assert_eq!(s.rewrites, vec!["public.users".to_string()], "{s:#?}");
}

#[test]
fn alter_type_rewrites_the_table_and_locks_its_index() {
    let plan = record("", "ALTER TABLE users ALTER COLUMN id TYPE bigint");
    let s = only(&plan);
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::AccessExclusiveLock), "{s:#?}");
    assert_eq!(s.rewrites, vec!["public.users".to_string()], "{s:#?}");
    // The primary key's index is rebuilt: a relation the statement never names.
    assert!(s.locks.iter().any(|l| l.relation == "public.users_pkey" && l.kind == "index"), "{s:#?}");
    // Copying the rows reads them: the server counts the table's blocks (its one page, at least).
    assert!(s.blocks_read.is_some_and(|b| b >= 1), "{s:#?}");
}

#[test]
fn add_foreign_key_locks_both_tables_share_row_exclusive() {
    let plan = record("", "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)");
    let s = only(&plan);
    assert_eq!(mode_on(s, "public.orders"), Some(LockMode::ShareRowExclusiveLock), "{s:#?}");
    // The referenced table: a name only the constraint shows.
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::ShareRowExclusiveLock), "{s:#?}");
}

#[test]
fn drop_table_with_a_foreign_key_locks_the_table_it_references_too() {
    let plan = record(
        "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)",
        "DROP TABLE orders",
    );
    let s = only(&plan);
    assert_eq!(s.tag, "DROP TABLE");
    assert_eq!(mode_on(s, "public.orders"), Some(LockMode::AccessExclusiveLock), "{s:#?}");
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::AccessExclusiveLock), "{s:#?}");
}

#[test]
fn create_index_takes_share_and_concurrently_share_update_exclusive() {
    let plan = record("", "CREATE INDEX users_email ON users (email)");
    let s = only(&plan);
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::ShareLock), "{s:#?}");
    assert!(!s.waits_for_older_transactions);

    let plan = record("", "CREATE INDEX CONCURRENTLY users_email ON users (email)");
    let s = only(&plan);
    assert_eq!(mode_on(s, "public.users"), Some(LockMode::ShareUpdateExclusiveLock), "{s:#?}");
    assert!(s.waits_for_older_transactions, "{s:#?}");
}

#[test]
fn a_partitioned_table_locks_every_partition() {
    let plan = record(
        "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        "ALTER TABLE events ADD COLUMN source text",
    );
    let s = only(&plan);
    assert_eq!(mode_on(s, "public.events"), Some(LockMode::AccessExclusiveLock), "{s:#?}");
    assert!(s.locks.iter().any(|l| l.relation == "public.events" && l.kind == "partitioned table"), "{s:#?}");
    for part in ["public.events_2025", "public.events_2026"] {
        assert_eq!(mode_on(s, part), Some(LockMode::AccessExclusiveLock), "{part}: {s:#?}");
    }
}

/// Statements of one transaction hold their locks together until it commits: the second
/// statement still holds the first one's lock, marked as not its own.
#[test]
fn statements_of_one_transaction_accumulate_their_locks() {
    let plan =
        record("", "BEGIN; CREATE INDEX users_email ON users (email); ALTER TABLE orders ADD COLUMN note text; COMMIT");
    assert_eq!(plan.statements.len(), 2, "{plan:#?}");
    let (first, second) = (&plan.statements[0], &plan.statements[1]);
    assert_eq!(first.transaction, second.transaction);
    let users = second.locks.iter().find(|l| l.relation == "public.users").expect("still held");
    assert_eq!((users.mode, users.new), (LockMode::ShareLock, false), "{second:#?}");
    let orders = second.locks.iter().find(|l| l.relation == "public.orders").expect("taken");
    assert_eq!((orders.mode, orders.new), (LockMode::AccessExclusiveLock, true), "{second:#?}");
    assert_eq!(plan.strongest().get("public.users"), Some(&LockMode::ShareLock));
}

/// The join: a long reader of `users` holds AccessShareLock, which an ALTER's
/// AccessExclusiveLock would wait for; a reader of an unrelated table is no obstacle.
#[test]
fn the_plan_joined_with_live_locks_names_the_reader_that_would_block_it() {
    let pg = PgCluster::start().unwrap();
    pg.psql("postgres", "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE audit (id int)").unwrap();
    let url = pg.superuser_url("postgres");
    let reader = spawn(&url, "reporting", "BEGIN; SELECT count(*) FROM users; SELECT pg_sleep(60)");
    let unrelated = spawn(&url, "reporting", "BEGIN; SELECT count(*) FROM audit; SELECT pg_sleep(60)");
    wait_until("both readers hold their tables", || {
        pg.psql("postgres", "SELECT count(*) FROM pg_locks WHERE relation IN ('users'::regclass, 'audit'::regclass) AND mode = 'AccessShareLock'")
            .is_ok_and(|n| n == "2")
    });
    let plan = LockPlan {
        statements: vec![PlannedStatement {
            seq: 1,
            tag: "ALTER TABLE".into(),
            object: Some("public.users".into()),
            query: "ALTER TABLE users ADD COLUMN nickname text".into(),
            transaction: 1,
            locks: vec![pg_locks::lockplan::PlannedLock {
                relation: "public.users".into(),
                kind: "table".into(),
                mode: LockMode::AccessExclusiveLock,
                new: true,
                created: false,
            }],
            rewrites: Vec::new(),
            waits_for_older_transactions: false,
            ran_us: None,
            blocks_read: None,
            rows: None,
            estimate: None,
        }],
    };
    let found = lockplan::obstacles(&mut client(&pg), &plan).unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    let o = &found[0];
    assert_eq!(
        (o.pid, o.relation.as_str(), o.mode, o.granted),
        (reader.pid, "public.users", LockMode::AccessShareLock, true)
    );
    assert_eq!(o.application_name.as_deref(), Some("reporting"));
    assert!(!found.iter().any(|o| o.pid == unrelated.pid), "a reader of another table is no obstacle");
}
