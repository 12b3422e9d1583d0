//! The hold budget on a real PostgreSQL (every supported major: 12 and 13 have no `waitstart`,
//! so the guard counts from when it first saw the waiter). A claimed statement that *holds* a
//! lock the site queues behind is cut once the first waiter has waited past the budget — never
//! for its own length, never when it is not the tool's — and what the test reads from
//! `pg_locks` and the catalog, not what the guard reports, says the cut took.

use std::time::{Duration, Instant};

use pg_locks::{Budgets, Enforcement, Guard, Ownership};
use test_support::sessions::{client, spawn, wait_until, Running};
use test_support::PgCluster;

/// The modes `pid` holds on `events`, read by the test from pg_locks.
fn modes_held_on_events(c: &mut pg_locks::Client, pid: i32) -> Vec<String> {
    c.query(
        "SELECT mode FROM pg_locks WHERE pid = $1 AND granted AND relation = 'events'::regclass ORDER BY mode",
        &[&pid],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn waiting(c: &mut pg_locks::Client, pids: &[i32]) -> usize {
    c.query_one("SELECT count(*)::int FROM pg_locks WHERE NOT granted AND pid = ANY ($1)", &[&pids.to_vec()])
        .unwrap()
        .get::<_, i32>(0) as usize
}

/// Looks (as the watch does) until the guard acts or `limit` passes.
fn look_until_cut(guard: &mut Guard, c: &mut pg_locks::Conn, limit: Duration) -> Option<Enforcement> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let look = guard.look(c).unwrap();
        if let Some(e) = look.enforcements.into_iter().next() {
            return Some(e);
        }
        std::thread::sleep(look.next.min(Duration::from_millis(100)));
    }
    None
}

fn conn(pg: &PgCluster) -> pg_locks::Conn {
    pg_locks::connect(&pg_locks::ConnectOptions::new(pg.superuser_url("postgres"), "pg-locks-hold")).unwrap()
}

fn readers(url: &str, n: usize) -> Vec<Running> {
    (0..n).map(|i| spawn(url, &format!("web.{i}"), "SELECT count(*) FROM events")).collect()
}

#[test]
fn a_statement_the_site_queues_behind_is_cut_at_the_budget_from_the_first_waiters_wait() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    test_support::acme::slow_validation_table(&pg, 400).unwrap();
    let mut oracle = client(&url, "oracle");
    let migration = spawn(&url, "migrate-restart/run.1", test_support::acme::VALIDATING_SCAN);
    wait_until("the scan holds its lock", || {
        modes_held_on_events(&mut oracle, migration.pid).contains(&"AccessExclusiveLock".to_string())
    });
    let budget = Duration::from_secs(1);
    let mut guard = Guard::new(Budgets { wait: None, hold: Some(budget) }, false, Duration::from_secs(5));
    guard.claim(Ownership::AppName("migrate-restart/run.1".into()));
    let mut c = conn(&pg);

    // Nobody queues behind it: it runs past the budget and is not cut.
    assert!(look_until_cut(&mut guard, &mut c, budget * 2).is_none(), "a hold nobody waits on is never cut");
    assert!(!migration.is_finished(), "the scan still runs");

    // Taken before the readers start: none of them can have begun to wait earlier, so a cut
    // sooner than the budget after this instant would be early (taken after they are seen
    // waiting, a loaded machine's slow look would make a timely cut seem early).
    let queued_at = Instant::now();
    let queued = readers(&url, 3);
    let pids: Vec<i32> = queued.iter().map(|r| r.pid).collect();
    wait_until("three readers queue behind it", || waiting(&mut oracle, &pids) == 3);
    let cut = look_until_cut(&mut guard, &mut c, Duration::from_secs(10)).expect("the hold budget acts");
    let after = queued_at.elapsed();
    assert!(after >= budget - Duration::from_millis(100), "cut {after:?} after the readers queued, budget {budget:?}");
    assert!(after < budget + Duration::from_secs(2), "cut {after:?} after the readers queued");
    assert!(cut.sent && cut.verified, "{cut:?}");
    let held = cut.held.as_ref().expect("a cut for holding");
    assert_eq!(cut.wait.pid, migration.pid);
    assert_eq!(cut.wait.lock, "AccessExclusiveLock on events");
    assert!(pids.contains(&held.first_waiter.pid), "{held:?}");
    assert_eq!(held.first_waiter_wants, "AccessShareLock on events");
    assert_eq!(held.queued, 3);
    assert_eq!(cut.released, 3);
    assert!(held.running_ms >= 2000, "it had run past the budget before anyone queued: {held:?}");
    assert!(held.safe_form.as_deref().is_some_and(|f| f.contains("NOT VALID")), "{held:?}");

    // What the server says, not what the guard reported: the statement failed as cancelled,
    // the constraint is not there, the lock is gone, and every reader ran.
    let err = migration.finish().unwrap_err();
    assert!(err.contains("canceling statement due to user request"), "{err}");
    assert!(modes_held_on_events(&mut oracle, cut.wait.pid).is_empty());
    assert!(!test_support::acme::validated(&pg), "its transaction rolled back");
    assert!(queued.into_iter().all(|r| r.finish().is_ok()));
}

#[test]
fn a_holder_that_is_not_the_tools_is_never_cut_and_a_hold_budget_off_only_watches() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    test_support::acme::slow_validation_table(&pg, 400).unwrap();
    let mut oracle = client(&url, "oracle");
    let someone = spawn(&url, "reporting-job", test_support::acme::VALIDATING_SCAN);
    wait_until("the scan holds its lock", || !modes_held_on_events(&mut oracle, someone.pid).is_empty());
    let queued = readers(&url, 2);
    let pids: Vec<i32> = queued.iter().map(|r| r.pid).collect();
    wait_until("two readers queue behind it", || waiting(&mut oracle, &pids) == 2);
    let mut c = conn(&pg);

    // Not the tool's: not cut, however long the readers wait.
    let budgets = Budgets::both(Some(Duration::from_millis(200)));
    let mut guard = Guard::new(budgets, false, Duration::from_secs(5));
    guard.claim(Ownership::AppName("migrate-restart/run.1".into()));
    assert!(look_until_cut(&mut guard, &mut c, Duration::from_secs(1)).is_none());

    // The tool's, but the hold side is off: watched, not cut.
    let mut off = Guard::new(Budgets { wait: budgets.wait, hold: None }, false, Duration::from_secs(5));
    off.claim(Ownership::AppName("reporting-job".into()));
    assert!(look_until_cut(&mut off, &mut c, Duration::from_secs(1)).is_none());
    assert_eq!(waiting(&mut oracle, &pids), 2, "the readers still wait");
    assert!(!someone.is_finished());
    oracle.batch_execute(&format!("SELECT pg_cancel_backend({})", someone.pid)).unwrap();
    assert!(queued.into_iter().all(|r| r.finish().is_ok()));
}

/// A migration between two statements of its transaction (a framework's own code running)
/// holds its locks with no statement to cancel: the session is terminated, which rolls the
/// transaction back, and that is verified.
#[test]
fn a_transaction_idle_between_statements_holding_the_lock_is_terminated() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    test_support::acme::slow_validation_table(&pg, 400).unwrap();
    let mut oracle = client(&url, "oracle");
    let mut migration = client(&url, "migrate-restart/run.2");
    let pid: i32 = migration.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    migration.batch_execute("BEGIN; ALTER TABLE events ADD COLUMN nickname text").unwrap();
    let queued = readers(&url, 1);
    wait_until("the reader queues", || waiting(&mut oracle, &[queued[0].pid]) == 1);
    let mut guard = Guard::new(Budgets::both(Some(Duration::from_millis(300))), false, Duration::from_secs(5));
    guard.claim(Ownership::AppName("migrate-restart/run.2".into()));
    let cut = look_until_cut(&mut guard, &mut conn(&pg), Duration::from_secs(10)).expect("the hold budget acts");
    assert!(cut.verified, "{cut:?}");
    assert_eq!(cut.held.as_ref().map(|h| h.action), Some(pg_locks::Signal::Terminate));
    assert!(migration.batch_execute("COMMIT").is_err(), "its session is gone");
    let gone: i64 = oracle.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).unwrap().get(0);
    assert_eq!(gone, 0);
    let column: i64 = oracle
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'nickname'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(column, 0, "its transaction rolled back");
    assert!(queued.into_iter().all(|r| r.finish().is_ok()));
}

/// A session claimed only by when it connected and that it runs DDL (a release dyno's carry no
/// name of ours) is never ended between its statements: idle in its transaction, holding a
/// lock a reader queues behind, nothing but a name could prove it the migration's rather than
/// someone's `BEGIN; ALTER …` in psql. The same session running its DDL is cut.
#[test]
fn a_session_claimed_by_time_is_cut_only_while_its_ddl_runs() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    test_support::acme::slow_validation_table(&pg, 400).unwrap();
    let mut oracle = client(&url, "oracle");
    let since: f64 = oracle.query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[]).unwrap().get(0);
    std::thread::sleep(Duration::from_millis(20));
    let by_time = || Ownership::ConnectedAfter { since_epoch: since, who: "release.3".into(), client_addr: None };
    let budgets = Budgets::both(Some(Duration::from_millis(300)));

    // Idle in its transaction after the DDL: never cut.
    let mut idle = client(&url, "");
    idle.batch_execute("BEGIN; ALTER TABLE events ADD COLUMN nickname text").unwrap();
    let reader = readers(&url, 1);
    wait_until("the reader queues", || waiting(&mut oracle, &[reader[0].pid]) == 1);
    let mut guard = Guard::new(budgets, true, Duration::from_secs(5));
    guard.claim(by_time());
    assert!(look_until_cut(&mut guard, &mut conn(&pg), Duration::from_secs(2)).is_none(), "idle: not cut");
    assert!(idle.batch_execute("COMMIT").is_ok(), "its session is still there");
    assert!(reader.into_iter().all(|r| r.finish().is_ok()));

    // Running its DDL: cut (a cancel), and the queue runs.
    let scan = spawn(&url, "", test_support::acme::VALIDATING_SCAN);
    wait_until("the scan holds its lock", || !modes_held_on_events(&mut oracle, scan.pid).is_empty());
    let reader = readers(&url, 1);
    wait_until("the reader queues", || waiting(&mut oracle, &[reader[0].pid]) == 1);
    let mut guard = Guard::new(budgets, true, Duration::from_secs(5));
    guard.claim(by_time());
    let cut = look_until_cut(&mut guard, &mut conn(&pg), Duration::from_secs(10)).expect("the running DDL is cut");
    assert!(cut.verified, "{cut:?}");
    assert_eq!(cut.held.as_ref().map(|h| h.action), Some(pg_locks::Signal::Cancel));
    assert!(scan.finish().unwrap_err().contains("canceling statement due to user request"));
    assert!(reader.into_iter().all(|r| r.finish().is_ok()));
}
