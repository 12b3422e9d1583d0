//! Production's own queries as the plan reads them: from `pg_stat_statements` when this
//! credential may read them, said plainly when it may not; and the fallback sample of
//! `pg_stat_activity`, which sees what the sessions run.

use migration_plan::breaks::{self, Statements};
use test_support::sessions::{client, Workload};
use test_support::PgCluster;

#[test]
fn a_credential_that_cannot_read_other_roles_texts_is_named_and_the_owner_reads_them() {
    let pg = PgCluster::start().unwrap();
    pg.load_pg_stat_statements("postgres").unwrap();
    pg.psql(
        "postgres",
        "CREATE TABLE users (id int, legacy_flag boolean); CREATE ROLE reader LOGIN PASSWORD 'reader-pw'",
    )
    .unwrap();
    // Nothing the running release sends has been counted yet: that is no all-clear.
    match breaks::read_production(&mut client(&pg.superuser_url("postgres"), "plan"), 200) {
        Statements::Unavailable(why) => assert!(why.starts_with("pg_stat_statements holds no statement"), "{why}"),
        Statements::Read(q) => panic!("an empty read was taken as checked: {q:?}"),
    }
    let mut app = client(&pg.superuser_url("postgres"), "web.1");
    for id in 0..5 {
        app.query("SELECT legacy_flag FROM users WHERE id = $1", &[&id]).unwrap();
    }
    let mut reader = client(&pg.url("reader", "reader-pw", "postgres"), "plan");
    match breaks::read_production(&mut reader, 200) {
        Statements::Unavailable(why) => {
            assert!(
                why.starts_with("this credential cannot read other roles' statements in pg_stat_statements ("),
                "{why}"
            )
        }
        Statements::Read(q) => panic!("the hidden texts were read as nothing: {q:?}"),
    }
    match breaks::read_production(&mut client(&pg.superuser_url("postgres"), "plan"), 200) {
        Statements::Read(q) => {
            assert!(q.iter().any(|q| q.query == "SELECT legacy_flag FROM users WHERE id = $1" && q.calls == 5), "{q:?}")
        }
        Statements::Unavailable(why) => panic!("{why}"),
    }
}

#[test]
fn the_activity_sample_sees_what_the_sessions_run_and_counts_the_looks() {
    let pg = PgCluster::start().unwrap();
    pg.psql("postgres", "CREATE TABLE users (id int, legacy_flag boolean)").unwrap();
    let workload =
        Workload::start(&pg.superuser_url("postgres"), "web.1", std::time::Duration::from_millis(5), |c, n| {
            let _ = c.query("SELECT legacy_flag, pg_sleep(0.05) FROM users WHERE id = $1", &[&n]);
        });
    let sampled = breaks::sample_activity(
        &mut client(&pg.superuser_url("postgres"), "plan"),
        std::time::Duration::from_millis(600),
    );
    workload.stop();
    let seen = sampled.iter().find(|q| q.query == "SELECT legacy_flag, pg_sleep(0.05) FROM users WHERE id = $1");
    assert!(seen.is_some_and(|q| q.calls >= 3), "{sampled:?}");
}

/// The shape the plan compares before and after the migration sees what a release calls
/// besides tables: a dropped function, a dropped enum label's type change, a dropped sequence
/// narrow it; an added function does not.
#[test]
fn functions_types_and_sequences_are_part_of_what_the_running_release_relies_on() {
    let pg = PgCluster::start().unwrap();
    pg.psql(
        "postgres",
        "CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE SEQUENCE invoice_numbers; \
         CREATE FUNCTION next_invoice() RETURNS bigint LANGUAGE sql AS 'SELECT nextval(''invoice_numbers'')'",
    )
    .unwrap();
    let mut c = client(&pg.superuser_url("postgres"), "plan");
    let before = breaks::schema_shape(&mut c).unwrap();
    pg.psql(
        "postgres",
        "CREATE FUNCTION added() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER TYPE mood ADD VALUE 'calm'",
    )
    .unwrap();
    assert_eq!(breaks::narrowed(&before, &breaks::schema_shape(&mut c).unwrap()), Vec::<String>::new());
    pg.psql("postgres", "DROP FUNCTION next_invoice(); DROP SEQUENCE invoice_numbers; DROP TYPE mood").unwrap();
    let narrowed = breaks::narrowed(&before, &breaks::schema_shape(&mut c).unwrap());
    for gone in [
        "function next_invoice() returns bigint",
        "relation public.invoice_numbers",
        "type mood",
        "enum label mood 'happy'",
    ] {
        assert!(narrowed.iter().any(|n| n == gone), "{gone} in {narrowed:?}");
    }
}
