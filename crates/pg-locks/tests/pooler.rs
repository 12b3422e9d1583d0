//! Through a real PgBouncer in transaction mode, as Heroku's connection pooling puts one in
//! front of the database: the inspection connects (the pooler refuses the startup options, so
//! the timeouts are set per statement), sees the server's lock graph, and leaves nothing behind
//! on the shared server connection.

use pg_locks::{connect, ConnectOptions, Forest, Snapshot};
use test_support::pgbouncer::PgBouncer;
use test_support::sessions::{client, StuckAlter};
use test_support::PgCluster;

#[test]
fn through_pgbouncer_the_lock_graph_is_the_servers_and_no_setting_leaks_to_the_next_client() {
    let pg = PgCluster::start().unwrap();
    let bouncer = PgBouncer::start(&pg, "transaction", 1).unwrap();
    let url = bouncer.url("postgres");
    let mut conn = connect(&ConnectOptions::new(url.clone(), "pg-blockers")).unwrap();
    assert!(conn.through_pooler(), "PgBouncer refuses the options startup parameter");
    let snap = Snapshot::take(&mut conn).unwrap();
    assert!(snap.sessions.iter().any(|s| s.pid == snap.own_pid), "a snapshot through the pooler");
    // One server connection is shared: what this session set must not stay on it.
    let mut next = client(&url, "the-app");
    let lock_timeout: String = next.query_one("SHOW lock_timeout", &[]).unwrap().get(0);
    let statement_timeout: String = next.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
    assert_eq!((lock_timeout.as_str(), statement_timeout.as_str()), ("0", "0"), "the app's connection is clean");
    drop(next);

    // The pile-up behind a waiting ALTER, seen through the pooler as directly.
    let stuck = StuckAlter::start(&pg, 5, "rails");
    let snap = Snapshot::take(&mut conn).unwrap();
    let forest = Forest::build(&snap);
    assert_eq!(forest.roots.first().map(|r| r.pid), Some(stuck.reader.pid), "{forest:?}");
    assert_eq!(forest.blocked_total, 6);
}

/// The check above can fail: a session-level SET through the same pooler does reach the next
/// client (what the old fallback did).
#[test]
fn a_session_level_set_through_the_pooler_would_leak() {
    let pg = PgCluster::start().unwrap();
    let bouncer = PgBouncer::start(&pg, "transaction", 1).unwrap();
    let url = bouncer.url("postgres");
    let mut first = client(&url, "first");
    first.batch_execute("SET lock_timeout = 2000").unwrap();
    drop(first);
    let mut next = client(&url, "next");
    let lock_timeout: String = next.query_one("SHOW lock_timeout", &[]).unwrap().get(0);
    assert_eq!(lock_timeout, "2s");
}
