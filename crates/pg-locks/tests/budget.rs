//! The lock-wait budget on a real PostgreSQL: a claimed DDL that waits past the budget is
//! cancelled — verified, with the queries queued behind it released — and only what is proved to
//! be the tool's is ever claimed.

use std::time::{Duration, Instant};

use pg_locks::{enforce, waits, Ownership, Snapshot};
use test_support::sessions::{client, spawn, wait_until, StuckAlter};
use test_support::PgCluster;

fn epoch_now(c: &mut pg_locks::Client) -> f64 {
    c.query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[]).unwrap().get(0)
}

#[test]
fn a_named_ddl_that_set_lock_timeout_0_is_cancelled_at_the_budget_and_the_queue_runs() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let stuck = StuckAlter::start(&pg, 10, "migrate-restart/run.1");
    let mut c = client(&url, "pg-locks-budget");
    let snap = Snapshot::take(&mut c).unwrap();
    let claims = Ownership::AppName("migrate-restart/run.1".into()).claims(&snap);
    assert_eq!(claims.iter().map(|c| c.pid).collect::<Vec<_>>(), vec![stuck.alter.pid]);
    assert_eq!(claims[0].why, "its application_name is migrate-restart/run.1");
    let w = waits(&snap, &claims);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].pid, stuck.alter.pid);
    assert_eq!(w[0].blocker.as_ref().map(|b| b.pid), Some(stuck.reader.pid), "the reader holds it up");
    assert_eq!(w[0].queued_behind, 10);
    assert!(w[0].lock.starts_with("AccessExclusiveLock on users"), "{}", w[0].lock);

    let e = enforce(&mut c, &snap, &w[0], Duration::from_millis(1), Duration::from_secs(5)).unwrap();
    assert!(e.sent && e.verified, "{e:?}");
    assert_eq!(e.released, 10);
    let err = stuck.alter.finish().unwrap_err();
    assert!(err.contains("canceling statement due to user request"), "{err}");
    assert_eq!(stuck.queued.into_iter().map(|r| r.finish()).filter(Result::is_ok).count(), 10);
    // The reader was never touched.
    assert!(!stuck.reader.is_finished());
}

#[test]
fn a_statement_that_moved_on_is_not_cancelled() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let stuck = StuckAlter::start(&pg, 1, "migrate-restart/run.2");
    let mut c = client(&url, "pg-locks-budget");
    let snap = Snapshot::take(&mut c).unwrap();
    let claims = Ownership::AppName("migrate-restart/run.2".into()).claims(&snap);
    let mut w = waits(&snap, &claims).remove(0);
    // As if the statement seen had ended and another begun: the cancel must not go out.
    w.query_start_epoch = w.query_start_epoch.map(|t| t - 1.0);
    let e = enforce(&mut c, &snap, &w, Duration::from_millis(1), Duration::from_millis(300)).unwrap();
    assert!(!e.sent && !e.verified, "{e:?}");
    assert!(!stuck.alter.is_finished(), "the ALTER must still be waiting");
}

/// A release dyno's sessions carry no name of ours: DDL from a session that connected after the
/// dyno started is claimed, with the reason; an older DDL session, or a newer one that runs no
/// DDL, is not.
#[test]
fn sessions_that_connected_after_the_release_dyno_started_and_run_ddl_are_claimed() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE users (id int); CREATE TABLE audits (id int)").unwrap();
    let reader = spawn(&url, "reporting", "BEGIN; SELECT * FROM users, audits; SELECT pg_sleep(3600)");
    // An older session's DDL (someone else's migration, before the dyno started).
    let mut old = client(&url, "");
    wait_until("reader holds its locks", || test_support::sessions::lock_waiters(&pg) == 0);
    let mut c = client(&url, "pg-locks-budget");
    std::thread::sleep(Duration::from_millis(50));
    let since = epoch_now(&mut c);
    let old_pid: i32 = old.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let old_ddl = std::thread::spawn(move || old.batch_execute("ALTER TABLE audits ADD COLUMN x int").is_err());
    let release = spawn(&url, "", "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text");
    let newer_reader = spawn(&url, "", "SELECT * FROM users");
    wait_until("three wait", || test_support::sessions::lock_waiters(&pg) == 3);
    let snap = Snapshot::take(&mut c).unwrap();
    let claims =
        Ownership::ConnectedAfter { since_epoch: since, who: "release.3".into(), client_addr: None }.claims(&snap);
    assert_eq!(
        claims.iter().map(|c| c.pid).collect::<Vec<_>>(),
        vec![release.pid],
        "{claims:?} (old DDL {old_pid}, newer reader {})",
        newer_reader.pid
    );
    assert!(claims[0].why.contains("after release.3 started; runs ALTER TABLE"), "{}", claims[0].why);
    // Inside the dyno the guard also asks for its own client address: a session from another
    // host is not the dyno's, whatever it runs.
    let from = |addr: &str| Ownership::ConnectedAfter {
        since_epoch: since,
        who: "release.3".into(),
        client_addr: Some(addr.into()),
    };
    assert!(from("10.1.2.3").claims(&snap).is_empty(), "another host's DDL is never claimed");
    let here = from("127.0.0.1").claims(&snap);
    assert_eq!(here.iter().map(|c| c.pid).collect::<Vec<_>>(), vec![release.pid]);
    assert!(here[0].why.contains("from release.3's address 127.0.0.1"), "{}", here[0].why);
    let started = Instant::now();
    let w = waits(&snap, &claims);
    let e = enforce(&mut c, &snap, &w[0], Duration::from_millis(1), Duration::from_secs(5)).unwrap();
    assert!(e.verified && e.released == 1, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(release.finish().is_err());
    assert!(newer_reader.finish().is_ok());
    // The older DDL still waits: it was never ours.
    assert_eq!(test_support::sessions::lock_waiters(&pg), 1);
    drop(reader);
    c.batch_execute(&format!("SELECT pg_terminate_backend({})", old_pid)).unwrap();
    assert!(old_ddl.join().unwrap());
}
