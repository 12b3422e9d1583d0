//! The incidents replayed on a real PostgreSQL: the lock graph must show the true cause and
//! the cancel must be verified.

use std::time::Duration;

use pg_locks::{act, recommend, validate_targets, ActOptions, Client, ErrorKind, Forest, Label, Signal, Snapshot};
use test_support::sessions::{client, create_big_table, spawn, Backup, StuckAlter};
use test_support::PgCluster;

/// Polls snapshots until `cond` holds (bounded).
fn snapshot_when(c: &mut Client, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let mut last = None;
    test_support::sessions::wait_until(what, || {
        let s = Snapshot::take(c).unwrap();
        let ok = cond(&s);
        last = Some(s);
        ok
    });
    last.unwrap()
}

#[test]
fn incident_001_backup_copy_blocks_drop_table() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    create_big_table(&pg, "field_history", 50);
    let size: i64 = pg.psql("postgres", "SELECT pg_total_relation_size('field_history')").unwrap().parse().unwrap();
    assert!(size >= 50 * 1024 * 1024, "table is only {size} bytes");

    let backup = Backup::start(&pg, "postgres", "field_history", true);
    let drop = spawn(&url, "django-migrate", "DROP TABLE field_history");
    let mut c = client(&url, "pg-blockers");
    let snap = snapshot_when(&mut c, "DROP waits", |s| s.get(drop.pid).is_some_and(|x| x.is_blocked()));

    let forest = Forest::build(&snap);
    assert_eq!(forest.roots.len(), 1);
    assert_eq!(forest.roots[0].pid, backup.pid, "the backup is the root blocker");
    assert_eq!(forest.roots[0].children[0].pid, drop.pid);
    let drop_session = snap.get(drop.pid).unwrap();
    assert!(drop_session.has(Label::Ddl));
    let wait = drop_session.waiting_for.as_ref().unwrap();
    assert_eq!((wait.mode.as_str(), wait.object.as_deref()), ("AccessExclusiveLock", Some("field_history")));
    let b = snap.get(backup.pid).unwrap();
    assert!(b.has(Label::Backup));
    assert!(b.holds.iter().any(|h| h == "field_history AccessShareLock"), "{:?}", b.holds);

    let (primary, _) = recommend(&snap);
    let primary = primary.unwrap();
    assert_eq!((primary.pid, primary.action), (backup.pid, Signal::Cancel));
    assert!(primary.cost.contains("backup fails"), "{}", primary.cost);

    // The backend notices the cancel when its pending write to the (slow) client completes;
    // a generous bound keeps a loaded machine from failing the test — the poll ends at once.
    let opts = ActOptions { grace: Duration::from_secs(15), escalate: false };
    let report = act(&mut c, &snap, &[backup.pid], Signal::Cancel, opts).unwrap();
    assert!(report.outcomes[0].sent && report.outcomes[0].took, "{:?}", report.outcomes);
    assert_eq!((report.previously_blocked, report.running_again), (1, 1));
    drop.finish().expect("the DROP completes once the backup is cancelled");
    assert_eq!(pg.psql("postgres", "SELECT to_regclass('field_history') IS NULL").unwrap(), "t");
}

#[test]
fn a_backup_whose_client_stopped_reading_is_cleared_with_escalation() {
    // A backend blocked writing to a client that does not read may only notice a cancel when
    // it can write again; the recommendation says so and escalation clears it regardless.
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    create_big_table(&pg, "events", 20);
    let backup = Backup::start(&pg, "postgres", "events", false);
    let drop = spawn(&url, "migrate", "DROP TABLE events");
    let mut c = client(&url, "pg-blockers");
    let snap = snapshot_when(&mut c, "DROP waits", |s| s.get(drop.pid).is_some_and(|x| x.is_blocked()));
    let (primary, _) = recommend(&snap);
    let primary = primary.unwrap();
    assert_eq!(primary.pid, backup.pid);
    assert!(primary.note.as_deref().unwrap_or("").contains("--escalate"), "{primary:?}");

    let opts = ActOptions { grace: Duration::from_millis(500), escalate: true };
    let report = act(&mut c, &snap, &[backup.pid], Signal::Cancel, opts).unwrap();
    assert!(report.outcomes[0].took, "{:?}", report.outcomes);
    assert_eq!(report.running_again, 1);
    drop.finish().expect("DROP completes after the backup is gone");
}

#[test]
fn incident_000_reader_alter_and_forty_queued_queries() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let stuck = StuckAlter::start(&pg, 40, "rails-release");
    let mut c = client(&url, "pg-blockers");
    let snap = snapshot_when(&mut c, "41 blocked", |s| s.blocked().count() == 41);

    let forest = Forest::build(&snap);
    assert_eq!(forest.blocked_total, 41);
    assert_eq!(forest.roots.len(), 1);
    let root = &forest.roots[0];
    assert_eq!(root.pid, stuck.reader.pid, "the long reader is the root");
    assert_eq!(root.blocking_total, 41);
    assert_eq!(root.children.len(), 1);
    let alter_node = &root.children[0];
    assert_eq!(alter_node.pid, stuck.alter.pid);
    assert_eq!((alter_node.blocking_direct, alter_node.blocking_total), (40, 40));
    // Every queued reader waits on the ALTER (the lock queue), not on the reader.
    for r in &stuck.queued {
        assert_eq!(snap.get(r.pid).unwrap().blocked_by, vec![stuck.alter.pid]);
    }
    // The one version-dependent column: the lock-wait start exists from PostgreSQL 14; before
    // that the wait reads as the statement's age, and the query must not fail for its absence.
    let major = pg.server_major().unwrap();
    assert_eq!(snap.server_version_num / 10_000, major as i32);
    let alter_wait = snap.get(stuck.alter.pid).unwrap().waiting_for.clone().unwrap();
    assert_eq!(alter_wait.wait_secs.is_some(), major >= 14, "lock-wait time on PostgreSQL {major}: {alter_wait:?}");
    assert!(snap.get(stuck.alter.pid).unwrap().wait_secs().is_some());

    let (primary, alternative) = recommend(&snap);
    let primary = primary.unwrap();
    assert_eq!((primary.pid, primary.unblocks), (stuck.reader.pid, 41));
    let alternative = alternative.unwrap();
    assert_eq!((alternative.pid, alternative.unblocks), (stuck.alter.pid, 40));
    assert!(alternative.cost.contains("migration fails"));

    // Cancelling the ALTER alone lets the 40 finish.
    let report = act(&mut c, &snap, &[stuck.alter.pid], Signal::Cancel, ActOptions::default()).unwrap();
    assert!(report.outcomes[0].took);
    assert_eq!((report.previously_blocked, report.running_again), (40, 40));
    let err = stuck.alter.finish().unwrap_err();
    assert!(err.contains("canceling statement due to user request"), "{err}");
    let finished = stuck.queued.into_iter().map(|r| r.finish()).filter(Result::is_ok).count();
    assert_eq!(finished, 40);
    let cols =
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'";
    assert_eq!(pg.psql("postgres", cols).unwrap(), "0");
}

#[test]
fn idle_in_transaction_holder_needs_terminate_and_escalation_does_it() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE accounts (id int primary key, balance int); INSERT INTO accounts VALUES (1, 10)")
        .unwrap();
    let mut holder = client(&url, "console");
    holder.batch_execute("BEGIN; UPDATE accounts SET balance = 11 WHERE id = 1").unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let alter = spawn(&url, "migrate", "ALTER TABLE accounts ADD COLUMN note text");
    let mut c = client(&url, "pg-blockers");
    let snap = snapshot_when(&mut c, "ALTER waits", |s| s.get(alter.pid).is_some_and(|x| x.is_blocked()));
    assert!(snap.get(holder_pid).unwrap().has(Label::IdleInTransaction));
    let (primary, _) = recommend(&snap);
    let primary = primary.unwrap();
    assert_eq!((primary.pid, primary.action), (holder_pid, Signal::Terminate));
    assert!(primary.cost.contains("uncommitted work"));

    // A cancel does nothing to an idle transaction: verified as not taken.
    let opts = ActOptions { grace: Duration::from_millis(300), escalate: false };
    let report = act(&mut c, &snap, &[holder_pid], Signal::Cancel, opts).unwrap();
    assert!(!report.outcomes[0].took, "a cancel cannot release an idle transaction");
    assert_eq!(report.still_blocked, vec![alter.pid]);

    let snap = Snapshot::take(&mut c).unwrap();
    let report = act(&mut c, &snap, &[holder_pid], Signal::Cancel, ActOptions { escalate: true, ..opts }).unwrap();
    let o = &report.outcomes[0];
    assert!(o.took && o.escalated && o.signal == Signal::Terminate, "{o:?}");
    alter.finish().expect("ALTER runs after the holder is terminated");
}

#[test]
fn advisory_lock_chain() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let mut holder = client(&url, "worker-a");
    holder.batch_execute("SELECT pg_advisory_lock(42)").unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let b = spawn(&url, "worker-b", "SELECT pg_advisory_lock(42)");
    let c2 = spawn(&url, "worker-c", "SELECT pg_advisory_lock(42)");
    let mut c = client(&url, "pg-blockers");
    let snap = snapshot_when(&mut c, "two advisory waiters", |s| s.blocked().count() == 2);
    let forest = Forest::build(&snap);
    assert_eq!(forest.roots.len(), 1);
    assert_eq!(forest.roots[0].pid, holder_pid);
    assert_eq!(forest.roots[0].blocking_total, 2);
    let w = snap.get(b.pid).unwrap().waiting_for.clone().unwrap();
    assert_eq!((w.locktype.as_str(), w.object.as_deref()), ("advisory", Some("advisory key 42")));
    holder.batch_execute("SELECT pg_advisory_unlock(42)").unwrap();
    b.finish().unwrap();
    // b's session ended with the lock; closing it hands the lock to c.
    c2.finish().unwrap();
}

#[test]
fn nothing_blocked_gives_an_empty_forest_and_no_recommendation() {
    let pg = PgCluster::start().unwrap();
    let mut idle = client(&pg.superuser_url("postgres"), "idle-client");
    let idle_pid: i32 = idle.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut c = client(&pg.superuser_url("postgres"), "pg-blockers");
    let snap = Snapshot::take(&mut c).unwrap();
    assert!(snap.get(snap.own_pid).unwrap().has(Label::Own));
    // An idle session has no transaction: its age is absent, not zero.
    let i = snap.get(idle_pid).unwrap();
    assert_eq!((i.state.as_deref(), i.xact_age_secs), (Some("idle"), None));
    assert!(snap.get(snap.own_pid).unwrap().xact_age_secs.is_some());
    assert!(snap.server_version_num >= 120000);
    assert!(Forest::build(&snap).is_empty());
    assert_eq!(recommend(&snap), (None, None));
}

#[test]
fn an_ordinary_role_sees_the_blocking_and_bad_targets_are_refused() {
    let pg = PgCluster::start().unwrap();
    let su = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let app_url = pg.create_role("app_user", "app-pw", "postgres").unwrap();
    pg.psql("postgres", "GRANT ALL ON t TO app_user").unwrap();
    let holder = spawn(&su, "admin", "SELECT pg_sleep(600) FROM t");
    let waiter = spawn(&app_url, "app", "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT");

    let mut app = client(&app_url, "pg-blockers");
    let snap =
        snapshot_when(&mut app, "ordinary role sees the wait", |s| s.get(waiter.pid).is_some_and(|x| x.is_blocked()));
    let me: String =
        app.query_one("SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user", &[]).unwrap().get(0);
    assert_eq!(me, "false");
    let forest = Forest::build(&snap);
    assert_eq!(forest.roots[0].pid, holder.pid, "the root is visible even though it belongs to another role");

    let own = validate_targets(&snap, &[snap.own_pid]).unwrap_err();
    assert_eq!(own.kind, ErrorKind::Refused);
    let missing = validate_targets(&snap, &[999_999]).unwrap_err();
    assert_eq!(missing.kind, ErrorKind::Usage);
    assert!(missing.message.contains(&format!("root blockers now: {}", holder.pid)), "{}", missing.message);
    let system = snap.sessions.iter().find(|s| s.has(Label::NonClient)).expect("a system process is listed");
    assert_eq!(validate_targets(&snap, &[system.pid]).unwrap_err().kind, ErrorKind::Refused);

    // The ordinary role may not cancel the superuser's session: a clear permission error.
    let err = act(&mut app, &snap, &[holder.pid], Signal::Cancel, ActOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permission, "{}", err.message);
    let mut admin = client(&su, "admin-2");
    admin.query_one("SELECT pg_cancel_backend($1)", &[&holder.pid]).unwrap();
    let _ = holder.finish();
    waiter.finish().unwrap();
}

/// The incident-000 scene, all of one role, seen by a credential that owns none of it (a second
/// credential made with `heroku pg:credentials:create`): pg_stat_activity hides the state and
/// wait event of every session, pg_locks does not, so the pile-up is still found whole.
#[test]
fn a_credential_that_owns_none_of_the_sessions_sees_the_whole_pile_up() {
    let pg = PgCluster::start().unwrap();
    let stuck = StuckAlter::start(&pg, 40, "rails release.2343");
    let second = pg.create_role("second_credential", "second-pw", "postgres").unwrap();
    let mut c = client(&second, "pg-blockers");
    let snap = snapshot_when(&mut c, "the pile-up is seen", |s| s.blocked().count() == 41);
    let alter = snap.get(stuck.alter.pid).unwrap();
    assert!(alter.query_hidden && alter.query.is_none() && alter.state.is_none(), "{alter:?}");
    assert_eq!(alter.query_line(80), pg_locks::HIDDEN_QUERY);
    assert!(alter.has(Label::Ddl), "an AccessExclusiveLock request on a table is a schema change");
    assert_eq!(alter.waiting_for.as_ref().map(|w| w.mode.as_str()), Some("AccessExclusiveLock"));
    let forest = Forest::build(&snap);
    assert_eq!(forest.roots.len(), 1);
    assert_eq!(forest.roots[0].pid, stuck.reader.pid);
    assert_eq!(forest.blocked_total, 41);
    assert!(snap.hidden_count() >= 42, "reader, ALTER and 40 readers are hidden: {}", snap.hidden_count());
}

/// scripts/test runs this suite once per supported major version (12–17) and names the one it
/// asked for in `PG_EXPECT_MAJOR`; a run that silently fell back to another server fails here.
#[test]
fn the_server_under_test_is_the_version_asked_for() {
    let pg = PgCluster::start().unwrap();
    let major = pg.server_major().unwrap();
    assert!((12..=17).contains(&major), "PostgreSQL {major} is outside the supported range 12–17");
    if let Some(expected) = std::env::var("PG_EXPECT_MAJOR").ok().filter(|v| !v.is_empty()) {
        assert_eq!(major.to_string(), expected, "PG_BINDIR gave PostgreSQL {major}, scripts/test asked for {expected}");
    }
}

/// Records the lock snapshots the golden tests of pg-blockers render (its tests/fixtures):
/// real snapshots of the incident scenes. Run by hand after a change to what a snapshot holds:
/// `cargo nextest run -p pg-locks --run-ignored only record_fixtures`.
#[test]
#[ignore = "records fixtures; run by hand"]
fn record_fixtures() {
    let dir = test_support::workspace_root().join("crates/pg-blockers/tests/fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let save = |name: &str, snap: &Snapshot| {
        std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(snap).unwrap() + "\n").unwrap();
    };
    {
        let pg = PgCluster::start().unwrap();
        let stuck = StuckAlter::start(&pg, 40, "rails release.2343");
        std::thread::sleep(Duration::from_secs(2));
        let mut c = client(&pg.superuser_url("postgres"), "pg-blockers");
        save("incident-000", &snapshot_when(&mut c, "41 waiting", |s| s.blocked().count() == 41));
        let second = pg.create_role("second_credential", "second-pw", "postgres").unwrap();
        let mut c = client(&second, "pg-blockers");
        save("incident-000-second-credential", &snapshot_when(&mut c, "41 waiting", |s| s.blocked().count() == 41));
        drop(stuck);
    }
    {
        let pg = PgCluster::start().unwrap();
        let url = pg.superuser_url("postgres");
        create_big_table(&pg, "field_history", 20);
        let _backup = Backup::start(&pg, "postgres", "field_history", false);
        let _drop = spawn(&url, "migrate-restart/run.1001", "DROP TABLE field_history");
        let mut c = client(&url, "pg-blockers");
        save("incident-001", &snapshot_when(&mut c, "the DROP waits", |s| s.blocked().count() == 1));
    }
    {
        let pg = PgCluster::start().unwrap();
        let url = pg.superuser_url("postgres");
        pg.psql("postgres", "CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1)").unwrap();
        let mut idle = client(&url, "console");
        idle.batch_execute("BEGIN; UPDATE accounts SET id = 2").unwrap();
        let _waiter = spawn(&url, "web.1", "UPDATE accounts SET id = 3");
        let mut c = client(&url, "pg-blockers");
        save("idle-in-transaction", &snapshot_when(&mut c, "the update waits", |s| s.blocked().count() == 1));
        drop(idle);
    }
    {
        let pg = PgCluster::start().unwrap();
        let mut c = client(&pg.superuser_url("postgres"), "pg-blockers");
        save("nothing-blocked", &snapshot_when(&mut c, "a snapshot", |_| true));
    }
}
