//! pg-blockers end to end: the binary, heroku-sim serving the app's DATABASE_URL, and a real
//! PostgreSQL replaying the incidents.

use std::time::Duration;

use heroku_sim::{Sim, World};
use test_support::sessions::{create_big_table, lock_waiters, spawn, wait_until, Backup, StuckAlter};
use test_support::tool::{LiveOutput, OutputExt, Tool};
use test_support::PgCluster;

fn sim_with_database(url: &str) -> Sim {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", url);
    w.add_postgres("acme", "HEROKU_POSTGRESQL_TEAL", "postgresql-teal-12345", url);
    Sim::start(w).unwrap()
}

fn tool(sim: &Sim) -> Tool {
    Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).against(sim)
}

#[test]
fn incident_001_names_the_backup_and_the_cancel_lets_the_drop_finish() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    create_big_table(&pg, "field_history", 50);
    let backup = Backup::start(&pg, "postgres", "field_history", true);
    let drop = spawn(&url, "django-migrate", "DROP TABLE field_history");
    wait_until("DROP waits", || lock_waiters(&pg) == 1);
    let sim = sim_with_database(&url);
    let t = tool(&sim);

    // The whole look: the backup (waiting on its client, so the command escalates), the DROP
    // behind it, the exact command, and the platform's way with its cost.
    let out = t.run(&["-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    assert!(text.contains(&format!("● {} Heroku Postgres Backups", backup.pid)), "{text}");
    test_support::assert_whole!("incident-001-live.stdout", text.clone());
    assert!(!text.contains("test-superuser-pw"), "password leaked:\n{text}");
    // From a bare URL the app is unknown: the platform's way is still offered, APP to fill in;
    // DATABASE_URL is not set here and the URL holds a password: the command names the
    // variable and says what to set, never the password.
    let out = t.run(&["--database-url", &url]);
    let text = out.stdout_text();
    test_support::assert_whole!("incident-001-live-from-a-url.stdout", text.clone());
    assert!(!text.contains("test-superuser-pw"), "password leaked:\n{text}");
    let run_line = format!("run:  pg-blockers --database-url \"$DATABASE_URL\" --cancel {} --escalate", backup.pid);
    // With DATABASE_URL holding that URL, the printed command runs as it stands.
    let out = t.command(&["--database-url", &url]).env("DATABASE_URL", &url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&run_line) && !text.contains("to run it:"), "{text}");

    let out = t.run(&["-a", "acme", "--json"]);
    let doc = out.json();
    assert_eq!(doc["blocked_total"], 1);
    assert_eq!(doc["roots"][0]["pid"], backup.pid);
    assert_eq!(doc["roots"][0]["children"][0]["pid"], drop.pid);
    assert_eq!(doc["recommendation"]["pid"], backup.pid);
    assert_eq!(doc["recommendation"]["platform_command"], "heroku pg:backups:cancel -a acme");
    let sessions = doc["sessions"].as_array().unwrap();
    let b = sessions.iter().find(|s| s["pid"] == backup.pid).unwrap();
    assert_eq!(b["labels"], serde_json::json!(["backup"]));
    assert!(b["query"].as_str().unwrap().starts_with("COPY \"public\".\"field_history\""));
    assert!(!out.stdout_text().contains("test-superuser-pw"));

    // A generous --grace: the backend sees the cancel when its write to the slow client completes.
    let out = t.run(&["-a", "acme", "--cancel", &backup.pid.to_string(), "--grace", "15s", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains(&format!("✓ pid {} released its locks", backup.pid)), "{}", out.dump());
    assert!(out.stdout_text().contains("1 of 1 previously blocked session is running again"), "{}", out.dump());
    drop.finish().expect("DROP completes");
}

#[test]
fn incident_000_shows_the_chain_and_cancelling_the_alter_frees_forty() {
    let pg = PgCluster::start().unwrap();
    let stuck = StuckAlter::start(&pg, 40, "rails-release");
    let sim = sim_with_database(&pg.superuser_url("postgres"));
    let t = tool(&sim);

    // The whole look: the report at the root, the ALTER behind it blocking 40, the 40 readers
    // grouped, the recommendation and the alternative that releases the queue at once.
    let out = t.run(&["-a", "acme"]);
    let text = out.stdout_text();
    assert!(text.contains(&format!("● {} reporting", stuck.reader.pid)), "{text}");
    test_support::assert_whole!("incident-000-live.stdout", text);

    let doc = t.run(&["-a", "acme", "--json"]).json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["blocked_total"], 41);
    assert_eq!(doc["roots"][0]["pid"], stuck.reader.pid);
    assert_eq!(doc["roots"][0]["blocking_total"], 41);
    assert_eq!(doc["roots"][0]["children"][0]["pid"], stuck.alter.pid);
    assert_eq!(doc["roots"][0]["children"][0]["blocking_total"], 40);
    assert_eq!(doc["alternative"]["pid"], stuck.alter.pid);

    let out = t.run(&["-a", "acme", "--cancel", &stuck.alter.pid.to_string(), "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["action"]["running_again"], 40);
    assert_eq!(doc["action"]["previously_blocked"], 40);
    assert_eq!(stuck.queued.into_iter().map(|r| r.finish()).filter(Result::is_ok).count(), 40);
}

/// A credential that owns none of the sessions gets no false all-clear: the waits come from
/// pg_locks, and what it cannot see is said as hidden.
#[test]
fn a_credential_that_owns_none_of_the_sessions_gets_the_forest_not_an_all_clear() {
    let pg = PgCluster::start().unwrap();
    let stuck = StuckAlter::start(&pg, 40, "rails release.2343");
    let second = pg.create_role("second_credential", "second-pw", "postgres").unwrap();
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers"));
    let out = t.run(&["--database-url", &second, "--exit-status"]);
    assert_eq!(out.code(), 6, "blocking found: {}", out.dump());
    let text = out.stdout_text();
    assert!(!text.contains("✓"), "{text}");
    assert!(text.contains("41 sessions waiting, 1 root blocker"), "{text}");
    assert!(text.contains(&format!("● {} reporting", stuck.reader.pid)), "{text}");
    assert!(text.contains("query hidden from this credential"), "{text}");
    assert!(text.contains("sessions of other roles: query text hidden from this credential"), "{text}");
    // It may not signal the superuser's sessions: no cancel the server would refuse is proposed.
    assert!(text.contains("this credential cannot:"), "{text}");
    assert!(!text.contains("run:  pg-blockers --database-url"), "{text}");
    let out = t.run(&["--database-url", &second, "--json"]);
    let doc = out.json();
    assert_eq!(doc["blocked_total"], 41);
    assert!(doc["hidden_sessions"].as_u64().unwrap() >= 42, "{doc}");
}

/// No free connection: one line that says what it means and the ways out with their cost;
/// exit 1, nothing changed.
#[test]
fn a_database_with_no_free_connection_is_said_with_the_ways_out() {
    let pg = PgCluster::start_with_max_connections(6).unwrap();
    let url = pg.superuser_url("postgres");
    let held = test_support::sessions::take_every_slot(&pg);
    let out = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &url).run(&[]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let err = out.stderr_text();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("every connection slot is taken") && err.contains("heroku pg:killall"), "{err}");
    assert!(err.contains("SQLSTATE 53300"), "{err}");
    // A URL typed by hand names no app: the command it suggests says where the app goes,
    // rather than a `pg:killall` without `-a` that would not run as printed.
    assert!(err.contains("`heroku pg:killall -a APP`"), "{err}");
    drop(held);
}

/// A DDL holding the system catalogs in an open transaction would hang any new session; this
/// tool's own session gives up at its lock_timeout and says so in one line.
#[test]
fn a_catalog_lock_held_by_ddl_does_not_hang_the_inspection() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let mut ddl = test_support::sessions::client(&url, "ddl");
    ddl.batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_class IN ACCESS EXCLUSIVE MODE").unwrap();
    let out = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &url).run(&[]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let err = out.stderr_text();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("gave up rather than wait in the lock queue"), "{err}");
    ddl.batch_execute("ROLLBACK").unwrap();
}

/// A follower (a streaming replica) never gets an all-clear: the leader's waits are not visible
/// there, and `--exit-status` says it cannot vouch (exit 3).
#[test]
fn a_follower_is_said_to_be_one_and_never_gets_an_all_clear() {
    let pg = PgCluster::start().unwrap();
    let follower = pg.start_follower().unwrap();
    let (_holder, _waiter) = one_waiter(&pg);
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers"));
    let out = t.run(&["--database-url", &follower.superuser_url("postgres"), "--exit-status"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let text = out.stdout_text();
    assert!(
        text.contains("is a follower (a read-only replica): the leader's lock waits are not visible here"),
        "{text}"
    );
    assert!(
        text.contains(
            "If it is a Postgres Advanced follower pool, its one endpoint spreads connections over several instances"
        ),
        "{text}"
    );
    assert!(!text.contains("✓"), "{text}");
    let out = t.run(&["--database-url", &follower.superuser_url("postgres"), "--json"]);
    assert_eq!(out.json()["follower"], true);
    let out = t.run(&["--database-url", &pg.superuser_url("postgres"), "--json"]);
    assert_eq!(out.json()["follower"], false, "the leader is not a follower");
    assert_eq!(out.json()["blocked_total"], 1, "and its wait is seen there");

    // Attached to an app: the follower is HEROKU_POSTGRESQL_TEAL_URL, the leader DATABASE_URL.
    let mut w = World::default();
    w.add_app("acme");
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    w.add_postgres("acme", "HEROKU_POSTGRESQL_TEAL", "postgresql-teal-67890", &follower.superuser_url("postgres"));
    let sim = Sim::start(w).unwrap();
    let out = tool(&sim).run(&["-a", "acme", "HEROKU_POSTGRESQL_TEAL"]);
    assert!(
        out.stdout_text().contains("The leader is most likely DATABASE_URL of acme: pg-blockers -a acme"),
        "{}",
        out.dump()
    );
    let doc = tool(&sim).run(&["-a", "acme", "HEROKU_POSTGRESQL_TEAL", "--json"]).json();
    assert_eq!(doc["leader"], "DATABASE_URL", "{doc}");
}

#[test]
fn nothing_blocked_is_one_line_and_exit_status_reports_blocking() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &url);
    let out = t.run(&["--exit-status"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.stdout_text().lines().count(), 1, "{}", out.dump());
    assert!(out.stdout_text().starts_with("✓ No blocking on DATABASE_URL from the environment"), "{}", out.dump());

    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let _holder = spawn(&url, "holder", "SELECT pg_sleep(600) FROM t");
    let _waiter = spawn(&url, "waiter", "BEGIN; LOCK TABLE t; COMMIT");
    wait_until("a waiter", || lock_waiters(&pg) == 1);
    let out = t.run(&["--json", "--exit-status"]);
    assert_eq!(out.code(), 6, "{}", out.dump());
    assert_eq!(out.json()["blocked_total"], 1);
    // --min-wait hides chains that have not waited long enough.
    let out = t.run(&["--min-wait", "1h", "--exit-status"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("waiting below --min-wait"), "{}", out.dump());
}

#[test]
fn acting_without_a_terminal_or_confirm_refuses_and_cancels_nothing() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let holder = spawn(&url, "holder", "SELECT pg_sleep(600) FROM t");
    let _waiter = spawn(&url, "waiter", "BEGIN; LOCK TABLE t; COMMIT");
    wait_until("a waiter", || lock_waiters(&pg) == 1);
    let sim = sim_with_database(&url);
    let t = tool(&sim);
    let pid = holder.pid.to_string();

    let out = t.run(&["-a", "acme", "--cancel", &pid]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(out.stderr_text().contains("--confirm acme"), "{}", out.dump());
    let out = t.run(&["-a", "acme", "--cancel", &pid, "--confirm", "other-app"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    let out = t.run(&["-a", "acme", "--cancel", "999999", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("pid 999999 is not a session"), "{}", out.dump());
    assert!(!holder.is_finished(), "nothing may be cancelled");
    assert_eq!(lock_waiters(&pg), 1);
    // A --confirm naming another target is a refusal even when there would be nothing to do.
    let out = t.run(&["-a", "acme", "--cancel-roots", "--confirm", "otherdb"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(out.stderr_text().contains("--confirm otherdb does not match"), "{}", out.dump());
    // A terminate's cost is said as a terminate's: the session ends, not only its statement.
    let out = t.run(&["-a", "acme", "--terminate", &pid]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(
        out.stdout_text()
            .contains("cost: the session ends: its open transaction rolls back and its client loses the connection"),
        "{}",
        out.dump()
    );
    assert!(!holder.is_finished());
}

#[test]
fn bad_input_is_one_line_with_the_documented_code() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    let sim = sim_with_database(&url);
    let t = tool(&sim);
    let started = std::time::Instant::now();
    let out = t.run(&["--database-url", "postgres://u:pw@10.255.255.1:5432/db?sslmode=disable"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(started.elapsed() < Duration::from_secs(15), "an unreachable host must fail within the connect timeout");
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--database-url".into(), "postgres://u:hunter2@127.0.0.1:notaport/db".into()], 2, "malformed database URL"),
        (vec!["--database-url".into(), "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable".into()], 1, "cannot connect to database db on 127.0.0.1"),
        (vec!["--database-url".into(), pg.url("postgres", "wrong-pw", "postgres")], 4, "password authentication failed"),
        (vec!["NOPE".into(), "-a".into(), "acme".into()], 2, "no database `NOPE` on acme; its databases: DATABASE_URL (postgresql-teal-12345), HEROKU_POSTGRESQL_TEAL_URL (postgresql-teal-12345)"),
        (vec!["-a".into(), "nope".into()], 2, "app `nope` not found"),
        (vec!["-a".into(), "Bad_Name".into()], 2, "not a valid app name"),
        (vec!["-a".into(), "acme".into(), "--min-wait".into(), "soon".into()], 2, "not a duration"),
        (vec!["-a".into(), "acme".into(), "--watch".into(), "0s".into()], 2, "greater than zero"),
        (vec!["-a".into(), "acme".into(), "--watch".into(), "0".into()], 2, "greater than zero; use e.g. 500ms"),
        (vec!["-a".into(), "acme".into(), "--watch".into(), "-1s".into()], 2, "`-1s` is negative"),
    ];
    // Every refusal whole, in one document (tests/snapshots/refusals.snap).
    let mut refusals = test_support::snapshot::Transcript::new();
    for (args, code, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = t.run(&args);
        assert_eq!(out.code(), code, "{args:?}\n{}", out.dump());
        refusals.record("pg-blockers", &args, &out);
        let err = out.stderr_text();
        assert!(
            !err.contains("hunter2") && !err.contains("wrong-pw") && !err.contains("test-superuser-pw"),
            "secret leaked: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout\n{}", out.dump());
        // Under --json the same failure ends with one document saying it (docs/json/error.md).
        let out = t.run(&[args.as_slice(), &["--json"]].concat());
        assert_eq!(out.code(), code, "{args:?}\n{}", out.dump());
        let doc = out.json();
        assert_eq!(doc["schema_version"], 1, "{doc}");
        assert_eq!(doc["error"]["exit_code"], code, "{doc}");
        assert!(doc["error"]["message"].as_str().unwrap().contains(needle), "{doc}");
        let text = out.stdout_text();
        assert!(!text.contains("hunter2") && !text.contains("wrong-pw"), "secret leaked: {text}");
    }
    test_support::assert_whole!("refusals", refusals.text());
    // TLS defaults: an app's URL without sslmode requires TLS, which this test server lacks.
    let plain = format!("postgres://postgres:test-superuser-pw@127.0.0.1:{}/postgres", pg.port());
    sim.with(|w| w.set_config_var("acme", "DATABASE_URL", &plain));
    let out = t.run(&["-a", "acme"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stderr_text().contains("sslmode=require"), "{}", out.dump());
    // Without an app token: the login hint and exit 4.
    let out = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("HEROKU_HOST", &sim.url()).run(&["-a", "acme"]);
    assert_eq!(out.code(), 4, "{}", out.dump());
    assert!(out.stderr_text().contains("heroku login"), "{}", out.dump());
}

fn one_waiter(pg: &PgCluster) -> (test_support::sessions::Running, test_support::sessions::Running) {
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let holder = spawn(&url, "holder", "SELECT pg_sleep(600) FROM t");
    let waiter = spawn(&url, "waiter", "BEGIN; LOCK TABLE t; COMMIT");
    wait_until("a waiter", || lock_waiters(pg) == 1);
    (holder, waiter)
}

#[test]
fn attachment_names_resolve_as_in_the_heroku_cli_and_cancel_roots_clears_the_root() {
    let pg = PgCluster::start().unwrap();
    let (holder, waiter) = one_waiter(&pg);
    let sim = sim_with_database(&pg.superuser_url("postgres"));
    let t = tool(&sim);
    for (name, var) in [
        ("TEAL", "HEROKU_POSTGRESQL_TEAL_URL"),
        ("HEROKU_POSTGRESQL_TEAL", "HEROKU_POSTGRESQL_TEAL_URL"),
        ("DATABASE", "DATABASE_URL"),
        ("postgresql-teal-12345", "DATABASE_URL"),
    ] {
        let out = t.run(&[name, "-a", "acme", "--json"]);
        assert_eq!(out.code(), 0, "{name}: {}", out.dump());
        let source = out.json()["database"]["source"].as_str().unwrap().to_string();
        assert!(source.starts_with(&format!("{var} of acme")), "{name} resolved to {source}");
    }
    // -v logs each API request (method, path, status, Request-Id, ms) and never the token.
    let out = t.run(&["TEAL", "-a", "acme", "-v"]);
    let err = out.stderr_text();
    assert!(err.contains("→ GET /apps/acme/config-vars 200") && err.contains("Request-Id sim-"), "{}", out.dump());
    assert!(err.contains("→ GET /apps/acme/addon-attachments 200"), "{}", out.dump());
    assert!(err.contains("with the token from HEROKU_API_KEY"), "says where the token came from: {}", out.dump());
    assert!(!err.contains(&sim.token()) && !out.stdout_text().contains(&sim.token()), "token leaked");
    let out = t.run(&["TEAL", "-a", "acme", "--cancel-roots", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("Will cancel on HEROKU_POSTGRESQL_TEAL_URL of acme"), "{}", out.dump());
    assert!(out.stdout_text().contains(&format!("✓ pid {} released its locks", holder.pid)), "{}", out.dump());
    waiter.finish().unwrap();
    assert!(holder.finish().unwrap_err().contains("canceling statement"));
}

/// `pg-blockers --cancel … | head -1`: the cancel is sent and checked to its end, and the exit
/// code is its own. An idle-in-transaction holder ignores a cancel, so the honest answer is 3.
#[test]
fn a_closed_stdout_does_not_turn_an_unverified_cancel_into_success() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let mut idle = test_support::sessions::client(&url, "idle-holder");
    let pid: i32 = idle.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    idle.batch_execute("BEGIN; SELECT * FROM t").unwrap();
    let waiter = spawn(&url, "waiter", "BEGIN; LOCK TABLE t; COMMIT");
    wait_until("a waiter", || lock_waiters(&pg) == 1);
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &url);
    let run = test_support::tool::run_closing_stdout_after_first_line(t.command(&[
        "--cancel",
        &pid.to_string(),
        "--grace",
        "1s",
        "--confirm",
        "postgres",
    ]));
    assert!(run.first_line.starts_with("Will cancel on"), "{:?}", run.first_line);
    assert_eq!(run.code(), 3, "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains(&format!("✗ pid {pid} STILL BLOCKING after 1s")), "{}", run.stderr);
    assert!(!waiter.is_finished(), "the waiter still waits: the cancel could not help");
    drop(idle);
    waiter.finish().unwrap();
}

#[test]
fn the_prompt_on_a_terminal_defaults_to_no_and_yes_cancels() {
    let pg = PgCluster::start().unwrap();
    let (holder, waiter) = one_waiter(&pg);
    let sim = sim_with_database(&pg.superuser_url("postgres"));
    let t = tool(&sim);
    let pid = holder.pid.to_string();

    let mut no = t.pty(&["-a", "acme", "--cancel", &pid]);
    no.expect("cancel 1 session(s)?", Duration::from_secs(20));
    no.send("\r");
    assert_eq!(no.wait(Duration::from_secs(20)).code(), Some(5), "{}", no.screen());
    assert!(no.screen().contains("not confirmed; nothing was changed"), "{}", no.screen());
    assert!(!holder.is_finished());

    let mut yes = t.pty(&["-a", "acme", "--cancel", &pid]);
    yes.expect("cancel 1 session(s)?", Duration::from_secs(20));
    yes.send("y");
    assert_eq!(yes.wait(Duration::from_secs(20)).code(), Some(0), "{}", yes.screen());
    assert!(yes.screen().contains("1 of 1 previously blocked session is running again"), "{}", yes.screen());
    waiter.finish().unwrap();
}

/// `--watch --json` writes one report per line to stdout, and a read-only watch ends by itself
/// when its reader goes away (`| head -2`).
#[test]
fn watch_json_is_one_report_per_stdout_line_and_ends_with_its_reader() {
    use std::io::BufRead;
    let pg = PgCluster::start().unwrap();
    let (_holder, _waiter) = one_waiter(&pg);
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &pg.superuser_url("postgres"));
    let mut child = t
        .command(&["--watch", "200ms", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..2 {
            let line = lines.next().expect("a line").unwrap();
            let report: pg_blockers::report::BlockersReport = serde_json::from_str(&line).expect("one report per line");
            assert_eq!(report.blocked_total, 1);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the watch did not end after its reader went away");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn watch_prints_a_snapshot_per_interval_without_a_terminal_and_redraws_on_one() {
    let pg = PgCluster::start().unwrap();
    let (_holder, _waiter) = one_waiter(&pg);
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &pg.superuser_url("postgres"));

    let mut child = t.command(&["--watch", "200ms"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let seen = LiveOutput::start(child.stdout.take().unwrap());
    wait_until("three snapshots", || seen.text().matches("Blocking on").count() >= 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let text = seen.text();
    let snapshots = text.matches("--- every 200ms").count();
    assert!(snapshots >= 3, "expected a snapshot per interval, got {snapshots}:\n{text}");
    // The last snapshot may have been cut off by the kill.
    assert!(text.matches("Blocking on").count().abs_diff(snapshots) <= 1, "{text}");
    assert!(!text.contains("\x1b[2J"), "no screen clearing without a terminal");

    let mut term = t.pty(&["--watch", "200ms"]);
    term.expect("Blocking on", Duration::from_secs(20));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while term.screen().matches("\x1b[H\x1b[2J").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no redraw:\n{}", term.screen());
        std::thread::sleep(Duration::from_millis(50));
    }
    term.signal(2); // SIGINT, as Ctrl-C
    assert!(!term.wait(Duration::from_secs(10)).success());
}

/// The app's URL points at PgBouncer in transaction mode (Heroku's connection pooling): the
/// tool says so, shows the server's chain, and its cancel through the pooler is verified.
#[test]
fn through_pgbouncer_in_transaction_mode_the_chain_is_shown_and_the_cancel_verified() {
    let pg = PgCluster::start().unwrap();
    let bouncer = test_support::pgbouncer::PgBouncer::start(&pg, "transaction", 5).unwrap();
    let stuck = StuckAlter::start(&pg, 10, "rails-release");
    let sim = sim_with_database(&bouncer.url("postgres"));
    let t = tool(&sim);
    let out = t.run(&["-a", "acme"]);
    let text = out.stdout_text();
    assert!(text.contains("read through a connection pooler"), "{}", out.dump());
    assert!(text.contains("11 sessions waiting, 1 root blocker"), "{}", out.dump());
    let doc = t.run(&["-a", "acme", "--json"]).json();
    assert_eq!(doc["through_pooler"], true);
    assert_eq!(doc["roots"][0]["pid"], stuck.reader.pid);
    let out = t.run(&["-a", "acme", "--cancel", &stuck.alter.pid.to_string(), "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.json()["action"]["running_again"], 10);
}

/// What the credential may do decides the recommendation: an ordinary role that does not own
/// the blocking sessions gets no cancel the server would refuse (and its --cancel fails with
/// the reason, nothing changed); a role in pg_signal_backend gets the cancel, and it works.
#[test]
fn the_recommendation_follows_what_the_credential_may_signal() {
    let pg = PgCluster::start().unwrap();
    pg.psql("postgres", "CREATE TABLE users AS SELECT g AS id FROM generate_series(1, 1000) g").unwrap();
    let owner = pg.create_role("app_owner", "owner-pw", "postgres").unwrap();
    pg.psql("postgres", "ALTER TABLE users OWNER TO app_owner").unwrap();
    let reader = test_support::sessions::long_report(&pg, &owner, 600);
    let alter = spawn(&owner, "rails release.7", "ALTER TABLE users ADD COLUMN nickname text");
    wait_until("the ALTER waits", || lock_waiters(&pg) == 1);
    let ordinary = pg.create_role("readonly_dashboard", "ro-pw", "postgres").unwrap();
    let signaller = pg.create_role("oncall", "oncall-pw", "postgres").unwrap();
    pg.psql("postgres", "GRANT pg_signal_backend TO oncall").unwrap();
    let t = Tool::new(env!("CARGO_BIN_EXE_pg-blockers"));

    let doc = t.run(&["--database-url", &ordinary, "--json"]).json();
    assert_eq!(doc["recommendation"]["pid"], reader.pid);
    let why = doc["recommendation"]["needs_credential"].as_str().unwrap_or_else(|| panic!("{doc}"));
    assert!(why.contains("runs as role app_owner") && why.contains("(readonly_dashboard) may not signal it"), "{why}");
    assert!(doc["recommendation"]["command"].as_str().unwrap().contains("$URL_OF_A_CREDENTIAL_THAT_MAY"), "{doc}");
    let out = t.run(&["--database-url", &ordinary, "--cancel", &reader.pid.to_string(), "--confirm", "postgres"]);
    assert_ne!(out.code(), 0, "{}", out.dump());
    assert!(!reader.is_finished(), "nothing was cancelled");

    let doc = t.run(&["--database-url", &signaller, "--json"]).json();
    assert_eq!(doc["recommendation"]["pid"], reader.pid);
    assert!(doc["recommendation"].get("needs_credential").is_none(), "{doc}");
    let out = t.run(&["--database-url", &signaller, "--cancel", &reader.pid.to_string(), "--confirm", "postgres"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(reader.finish().is_err(), "the report was cancelled");
    alter.finish().expect("the ALTER got its lock");
}

test_support::on_both_generations! {
    /// The database behind a Cedar or a Fir app is found the same way (the app's config vars
    /// and attachments): incident 000's chain is shown and cancelling the ALTER by pid frees the
    /// queue on both.
    fn the_apps_database_is_found_and_the_chain_cleared_on_either_generation(g) {
        let pg = PgCluster::start().unwrap();
        let stuck = StuckAlter::start(&pg, 10, "rails-release");
        let mut w = World::default();
        w.add_app("acme");
        g.apply(&mut w, "acme");
        w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
        w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
        let sim = Sim::start(w).unwrap();
        let t = tool(&sim);
        let doc = t.run(&["-a", "acme", "--json"]).json();
        assert_eq!(doc["blocked_total"], 11, "{doc}");
        assert_eq!(doc["roots"][0]["children"][0]["pid"], stuck.alter.pid);
        let out = t.run(&["-a", "acme", "--cancel", &stuck.alter.pid.to_string(), "--confirm", "acme", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.json()["action"]["running_again"], 10);
        assert_eq!(stuck.queued.into_iter().map(|r| r.finish()).filter(Result::is_ok).count(), 10);
    }
}

/// Text from the database reaches the terminal shown, never obeyed: a query and an
/// application_name carrying escape sequences (clear screen, set the title) are printed
/// escaped in the human output; `--json` keeps them exact.
#[test]
fn control_characters_from_the_database_are_shown_escaped_and_kept_exact_in_json() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let _holder = spawn(&url, "evil\x1b[2J", "SELECT pg_sleep(600) /* \x1b]0;owned\x07 */ FROM t");
    // The reader holds its lock before the LOCK asks (else the LOCK may come first and be done).
    wait_until("the reader sleeps", || {
        pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
            .is_ok_and(|n| n == "1")
    });
    let _waiter = spawn(&url, "waiter", "BEGIN; LOCK TABLE t; COMMIT");
    wait_until("a waiter", || lock_waiters(&pg) == 1);
    let sim = sim_with_database(&url);
    let t = tool(&sim);
    let out = t.run(&["--database-url", &url]);
    let text = out.stdout_text();
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "no raw control character: {text:?}");
    // PostgreSQL itself replaces an application_name's non-printable bytes with `?`; a query
    // keeps them, and it is the query that reaches the terminal here.
    assert!(text.contains("\\x1b]0;owned\\x07"), "{text}");
    let out = t.run(&["--database-url", &url, "--json"]);
    let doc = out.stdout_text();
    assert!(doc.contains("\\u001b]0;owned\\u0007"), "--json keeps the exact text, JSON-escaped: {doc}");
}

/// `--cancel-roots` frees an ALTER that then holds its lock for a while (its transaction goes
/// on), and the queries queued behind the ALTER wait for it a little longer. The cancel did
/// what it was for — nothing waits on the cancelled session — so the report says ✓ and names
/// those still queued behind the freed ALTER, instead of "✗ 1 of 4 running again".
#[test]
fn sessions_queued_behind_what_the_cancel_freed_are_not_a_failed_cancel() {
    let pg = PgCluster::start().unwrap();
    let url = pg.superuser_url("postgres");
    pg.psql("postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)").unwrap();
    let reader = test_support::sessions::spawn(&url, "reporting", "SELECT count(*), pg_sleep(3600) FROM t");
    wait_until("the reader holds t", || {
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks WHERE pid = {} AND granted AND relation = 't'::regclass",
                reader.pid
            ),
        )
        .is_ok_and(|n| n == "1")
    });
    let alter = test_support::sessions::spawn(
        &url,
        "migrate",
        "BEGIN; ALTER TABLE t ADD COLUMN x int; SELECT pg_sleep(4); COMMIT",
    );
    wait_until("the ALTER waits", || lock_waiters(&pg) == 1);
    let queued: Vec<_> = (0..3).map(|_| test_support::sessions::spawn(&url, "web", "SELECT count(*) FROM t")).collect();
    wait_until("the queries queue behind it", || lock_waiters(&pg) == 4);
    let out = Tool::new(env!("CARGO_BIN_EXE_pg-blockers")).env("DATABASE_URL", &url).run(&[
        "--cancel-roots",
        "--confirm",
        "postgres",
        "--json",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["action"]["still_blocked"], serde_json::json!([]), "{doc}");
    let mut behind: Vec<i64> =
        doc["action"]["queued_behind"].as_array().unwrap().iter().map(|p| p.as_i64().unwrap()).collect();
    behind.sort();
    let mut expected: Vec<i64> = queued.iter().map(|q| q.pid as i64).collect();
    expected.sort();
    assert_eq!(behind, expected, "{doc}");
    let err = out.stderr_text();
    assert!(
        err.contains(
            "✓ 1 of 4 previously blocked sessions are running again; 3 still wait behind a session the cancel freed"
        ),
        "{err}"
    );
    assert!(!err.contains('✗'), "{err}");
    alter.finish().unwrap();
    for q in queued {
        q.finish().unwrap();
    }
}
