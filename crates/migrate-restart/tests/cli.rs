//! migrate-restart end to end: heroku-sim runs the one-off dyno's command as a local process
//! behind its TLS rendezvous, against a real PostgreSQL with PGOPTIONS in force.

use std::time::Duration;

use heroku_sim::{FaultKind, Sim, World};
use test_support::sessions::{create_big_table, lock_waiters, wait_until, Backup};
use test_support::tool::{LiveOutput, OutputExt, Tool};
use test_support::PgCluster;

struct Setup {
    pg: PgCluster,
    sim: Sim,
    tool: Tool,
}

fn setup() -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(18 * 3600));
    w.add_formation("acme", "worker", 1, "sidekiq", Duration::from_secs(17 * 3600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    w.timing.start_delay = Duration::from_millis(100);
    w.timing.stop_delay = Duration::from_millis(100);
    let sim = Sim::start(w).unwrap();
    let tool = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&sim.url(), &sim.token());
    let ca = tool.home().join("sim-ca.pem");
    sim.write_ca(&ca).unwrap();
    let tool = tool.env("SSL_CERT_FILE", ca.to_str().unwrap());
    Setup { pg, sim, tool }
}

/// A migration the dyno runs: psql against the app's DATABASE_URL, as a framework would.
fn sql_migration(pg: &PgCluster, sql: &str) -> String {
    test_support::acme::psql_migration(pg, sql)
}

/// A report holding `users` for `secs` seconds, running when this returns.
fn long_reader(s: &Setup, secs: u32) -> test_support::sessions::Running {
    test_support::sessions::long_report(&s.pg, &s.pg.superuser_url("postgres"), secs)
}

/// Waits for a spawned tool and returns its status with stdout and stderr together.
fn finish(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let status = child.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
    (status, text)
}

fn restarts(sim: &Sim) -> usize {
    sim.requests().iter().filter(|r| r.method == "DELETE").count()
}

#[test]
fn success_restarts_and_verifies_every_dyno() {
    let s = setup();
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["schema_version"], 1);
    let _: migrate_restart::report::MigrateReport = serde_json::from_value(doc.clone()).expect("a MigrateReport");
    assert_eq!(doc["result"], "succeeded");
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["attempts"][0]["exit_status"], 0);
    assert_eq!(doc["restart"]["verified"], true);
    let names: Vec<&str> =
        doc["restart"]["dynos"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web.1", "web.2", "worker.1"]);
    assert!(doc["restart"]["dynos"].as_array().unwrap().iter().all(|d| d["fresh"] == true && d["up"] == true));
    let cols =
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'";
    assert_eq!(s.pg.psql("postgres", cols).unwrap(), "1");
    // PGOPTIONS and PGAPPNAME reached the dyno, and the create was sent once.
    let create = s.sim.requests().into_iter().find(|r| r.method == "POST" && r.path == "/apps/acme/dynos").unwrap();
    let body = create.body.unwrap();
    assert_eq!(body["env"]["PGOPTIONS"], "-c lock_timeout=5000");
    assert_eq!(body["attach"], false, "detached by default: the migration survives the operator's connection");
    let log_session =
        s.sim.requests().into_iter().find(|r| r.path == "/apps/acme/log-sessions").expect("followed through the log");
    assert_eq!(log_session.body.unwrap()["dyno"], "run.1001");
    assert!(body["command"].as_str().unwrap().contains("heroku-command-exit-status"));
    assert_eq!(restarts(&s.sim), 1, "restart all is one request");
}

/// `--attach` keeps the rendezvous path: output without log delay, the marker's status.
#[test]
fn attach_still_runs_the_migration_through_the_rendezvous() {
    let s = setup();
    let cmd = format!("echo attached; {}", sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text"));
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--attach", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stderr_text().contains("attached"), "{}", out.dump());
    let create = s.sim.requests().into_iter().find(|r| r.method == "POST" && r.path == "/apps/acme/dynos").unwrap();
    assert_eq!(create.body.unwrap()["attach"], true);
    assert!(!s.sim.requests().iter().any(|r| r.path.ends_with("/log-sessions")), "no log session when attached");
    assert_eq!(out.json()["attempts"][0]["log_reopens"], 0);
    assert_eq!(out.json()["attempts"][0]["follow_command"], serde_json::Value::Null, "nothing to follow when attached");
}

/// The log stream drops mid-run: it is re-opened with history and no line is lost or repeated.
#[test]
fn a_dropped_log_stream_loses_and_repeats_no_line() {
    let s = setup();
    s.sim.with(|w| w.faults.log_drop_after = Some(3));
    let cmd = "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.2; done";
    let out = s.tool.run(&["-a", "acme", "--command", cmd, "--confirm", "acme", "--no-preflight", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let err = out.stderr_text();
    let seen: Vec<&str> = err.lines().filter(|l| l.starts_with("line")).collect();
    assert_eq!(seen, ["line1", "line2", "line3", "line4", "line5", "line6"], "{err}");
    let doc = out.json();
    assert!(doc["attempts"][0]["log_reopens"].as_u64().unwrap() >= 1, "the stream was re-opened: {doc}");
    assert_eq!(doc["attempts"][0]["follow_command"], "migrate-restart follow -a acme run.1001 --restart all");
    assert_eq!(doc["attempts"][0]["exit_status"], 0);
    assert_eq!(
        s.sim.requests().iter().filter(|r| r.path == "/apps/acme/log-sessions").count() as u64,
        1 + doc["attempts"][0]["log_reopens"].as_u64().unwrap()
    );
}

/// A stream that drops while more lines arrive than the log's history keeps: the gap is said,
/// and the run still concludes from what came through.
#[test]
fn a_gap_the_log_history_cannot_fill_is_said() {
    let s = setup();
    s.sim.with(|w| {
        w.faults.log_drop_after = Some(2);
        w.faults.log_history_limit = 1;
    });
    let cmd = "sleep 0.3; printf 'a\\nb\\nc\\n'; sleep 0.5";
    let out = s.tool.run(&["-a", "acme", "--command", cmd, "--confirm", "acme", "--no-preflight", "--restart", "none"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stderr_text().contains("may be missing"), "{}", out.dump());
}

/// Lines that reach the log late still come through, and the exit status with them.
#[test]
fn late_log_lines_still_come_through() {
    let s = setup();
    s.sim.with(|w| w.faults.log_delay = std::time::Duration::from_millis(700));
    let out = s.tool.run(&["-a", "acme", "--command", "echo slow-line; exit 4", "--confirm", "acme", "--no-preflight"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout_text().contains("slow-line") && out.stdout_text().contains("exited with status 4"),
        "{}",
        out.dump()
    );
}

/// The marker the command printed and the platform's exit line disagree (a forged marker, then
/// the shell killed): the run counts as failed and says why.
#[test]
fn a_marker_and_exit_line_that_disagree_fail_the_run() {
    let s = setup();
    // `kill -9 0`: the dyno's whole process group (the sim gives each dyno its own session),
    // the shell that would print the real marker included.
    let cmd = "echo \"\u{FFFF} heroku-command-exit-status: 0\"; kill -9 0";
    let out = s.tool.run(&["-a", "acme", "--command", cmd, "--confirm", "acme", "--no-preflight", "--json"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stderr_text().contains("the command's marker says 0, the platform says 137"), "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert_eq!(doc["attempts"][0]["ending"], "disagreed: marker 0, platform 137");
    assert_eq!(restarts(&s.sim), 0);
    test_support::assert_whole!("ending-disagreed.stderr", out.stderr_text());
}

/// The dyno a run started, once it exists: (name, still listed).
fn run_dyno(sim: &Sim) -> Option<String> {
    sim.with(|w| {
        w.apps["acme"].dynos.iter().find(|d| d.name.starts_with("run.") && d.process.is_some()).map(|d| d.name.clone())
    })
}

/// A detached run started in the background: returns it once it has printed its follow
/// command, with its stderr being read and the dyno's name.
fn start_detached(s: &Setup, cmd: &str) -> (std::process::Child, LiveOutput, String) {
    let mut child = s
        .tool
        .command(&["-a", "acme", "--command", cmd, "--confirm", "acme", "--no-preflight"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = LiveOutput::start(child.stderr.take().unwrap());
    wait_until("the follow command is printed", || err.text().contains("migrate-restart follow -a acme run."));
    // The dyno is listed before its process has started: wait for the process, on a loaded
    // machine too.
    let mut dyno = None;
    wait_until("the migration runs", || {
        dyno = run_dyno(&s.sim);
        dyno.is_some()
    });
    let dyno = dyno.expect("the migration runs");
    assert!(err.text().contains(&format!("migrate-restart follow -a acme {dyno} --restart all")), "{}", err.text());
    (child, err, dyno)
}

/// Waits for a run from [`start_detached`]: its status, stdout and stderr together.
fn end_detached(mut child: std::process::Child, err: LiveOutput) -> (std::process::ExitStatus, String) {
    let status = child.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    (status, text + &err.finish())
}

/// kill -9 of migrate-restart mid-migration leaves the migration running to its end; `follow`
/// on the same machine picks it up from its record, reports its exit status, restarts and
/// verifies. From another machine it needs the dyno and `--restart`.
#[test]
fn a_killed_tool_leaves_the_migration_running_and_follow_concludes_it() {
    let s = setup();
    let (mut child, _err, dyno) = start_detached(&s, "echo started; sleep 1.5; echo done-migrating");
    child.kill().unwrap(); // SIGKILL: no clean-up of any kind
    child.wait().unwrap();
    let exited = format!("heroku[{dyno}]: Process exited with status 0");
    wait_until("the migration ends on its own", || {
        s.sim.with(|w| w.log_text("acme").iter().any(|l| l.ends_with(&exited)))
    });
    assert_eq!(restarts(&s.sim), 0, "nothing restarted yet");

    let other = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&s.sim.url(), &s.sim.token());
    let out = other.run(&["follow", "-a", "acme", &dyno, "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "another machine must say what to restart: {}", out.dump());
    assert!(out.stderr_text().contains("--restart all|TYPE,…|none"), "{}", out.dump());

    let out = s.tool.run(&["follow", "-a", "acme", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stderr_text().contains("started") && out.stderr_text().contains("done-migrating"), "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["result"], "succeeded");
    assert_eq!(doc["attempts"][0]["dyno"], dyno.as_str());
    assert_eq!(doc["attempts"][0]["exit_status"], 0);
    assert_eq!(doc["restart"]["verified"], true);
    assert_eq!(restarts(&s.sim), 1, "follow restarted, as the run would have");
    let out = s.tool.run(&["follow", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "the record is gone once concluded: {}", out.dump());

    // From another machine, with the dyno and --restart: the same conclusion.
    let out = other.run(&["follow", "-a", "acme", &dyno, "--restart", "none", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains(&format!("✓ migration finished on {dyno}")), "{}", out.dump());
}

/// Sends `signal` to a detached run mid-migration: the tool stops following, leaves the dyno
/// running, says `why` and how to pick it up, exits 3, stops nothing and speaks of no Ctrl-C.
fn assert_left_running_on(signal: i32, why: &str) {
    let s = setup();
    let (child, err, dyno) = start_detached(&s, "sleep 3; echo finished");
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let (status, text) = end_detached(child, err);
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(text.contains(why), "{text}");
    assert!(
        text.contains(&format!("Pick it up from any machine: migrate-restart follow -a acme {dyno} --restart all")),
        "{text}"
    );
    assert_eq!(run_dyno(&s.sim).as_deref(), Some(dyno.as_str()), "the migration still runs");
    assert!(!s.sim.requests().iter().any(|r| r.path.ends_with("/actions/stop")), "nothing was stopped");
    assert!(!text.contains("Ctrl-C"), "nobody pressed Ctrl-C: {text}");
}

/// A closed terminal (SIGHUP) is not a request to stop: the migration goes on (exit 3).
#[test]
fn a_hangup_leaves_the_migration_running_and_prints_the_follow_command() {
    assert_left_running_on(libc::SIGHUP, "the terminal hung up (SIGHUP); the migration goes on");
}

/// A cancelled CI job (SIGTERM) is not a request to stop the migration either.
#[test]
fn a_sigterm_leaves_the_detached_migration_running_and_prints_the_follow_command() {
    assert_left_running_on(
        libc::SIGTERM,
        "SIGTERM: a cancelled job or a stop request ends this process, not the migration",
    );
}

/// A lost connection: the log stream drops and no new log session can be opened. The tool says
/// it stopped following, leaves the migration running and prints how to pick it up (exit 3).
#[test]
fn a_lost_log_connection_leaves_the_migration_running_and_prints_the_follow_command() {
    let s = setup();
    let (child, err, dyno) = start_detached(&s, "echo a; sleep 0.5; echo b; sleep 3");
    s.sim.with(|w| w.faults.log_drop_after = Some(0));
    s.sim.add_fault(FaultKind::ServiceUnavailable, Some("POST"), Some("/log-sessions"), 50);
    let (status, text) = end_detached(child, err);
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(text.contains(&format!("stopped following {dyno} (could not read the log")), "{text}");
    assert!(
        text.contains(&format!("Pick it up from any machine: migrate-restart follow -a acme {dyno} --restart all")),
        "{text}"
    );
    assert_eq!(run_dyno(&s.sim).as_deref(), Some(dyno.as_str()), "the migration still runs");
    assert!(!s.sim.requests().iter().any(|r| r.path.ends_with("/actions/stop")), "nothing was stopped");
    assert_eq!(restarts(&s.sim), 0);
    // How much of the migration's own output arrived before the stream dropped is a race;
    // the ending around it is not.
    let own_output = |l: &&str| *l == "a" || *l == "b";
    let ending: Vec<&str> = text.lines().filter(|l| !own_output(l)).collect();
    test_support::assert_whole!("ending-lost-detached", ending.join("\n"));
}

#[test]
fn a_failing_migration_restarts_nothing_and_shows_its_last_lines() {
    let s = setup();
    let cmd = format!("echo starting; {}", sql_migration(&s.pg, "ALTER TABLE nope ADD COLUMN x int"));
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let text = out.stdout_text();
    assert!(text.contains("✗ the migration exited with status 1"), "{text}");
    assert!(text.contains("nothing was restarted"), "{text}");
    assert!(
        text.contains("Last ") && text.contains("  starting") && text.contains("relation \"nope\" does not exist"),
        "{text}"
    );
    assert_eq!(restarts(&s.sim), 0, "no restart after a failed migration");
    test_support::assert_whole!("ending-exited-1.stdout", text);
    test_support::assert_whole!("ending-exited-1.stderr", out.stderr_text());
}

/// A migration that succeeds, in its whole human output: the plan, the run, the restart and
/// its verification.
#[test]
fn a_successful_run_reads_whole() {
    let s = setup();
    let cmd = format!("echo migrating; {}", sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text"));
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    test_support::assert_whole!("ending-exited-0.stdout", out.stdout_text());
    test_support::assert_whole!("ending-exited-0.stderr", out.stderr_text());
}

#[test]
fn a_blocked_migration_hits_its_lock_timeout_is_retried_and_the_blocker_is_named() {
    let s = setup();
    let reader = long_reader(&s, 600);
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--confirm",
        "acme",
        "--lock-wait",
        "1500ms",
        "--retries",
        "1",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let err = out.stderr_text();
    // The watch line is printed once per change (once per attempt here), not once a second.
    let watch_lines = err.matches("migration waits for AccessExclusiveLock on users").count();
    assert!((1..=2).contains(&watch_lines), "{watch_lines} watch lines:\n{err}");
    assert!(
        err.contains(&format!(
            "migration waits for AccessExclusiveLock on users, held by pid {} (reporting, active",
            reader.pid
        )),
        "{err}"
    );
    assert!(
        err.contains("lock timeout: the migration gave up waiting for a lock (attempt 1 of 2); retrying in ")
            && err.contains("(backoff up to 2s, with jitter)"),
        "{err}"
    );
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a["lock_timeout"] == true && a["exit_status"] == 1));
    assert!(attempts[0]["lock_waits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains(&format!("pid {}", reader.pid))));
    assert_eq!(restarts(&s.sim), 0);
    // The lock timeout kept the app up: nothing is left waiting behind the reader.
    assert_eq!(lock_waiters(&s.pg), 0);
}

#[test]
fn when_the_blocker_ends_before_the_retry_the_migration_succeeds() {
    let s = setup();
    let _reader = long_reader(&s, 2);
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--lock-wait", "500ms", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{doc}");
    assert_eq!(attempts.last().unwrap()["exit_status"], 0);
    assert_eq!(doc["restart"]["verified"], true);
}

/// With a credential that owns none of the sessions, the preflight never gives an all-clear it
/// cannot vouch for: a hidden session holding a table lock is named (its age is unknown), and
/// a hidden session waiting on a lock still refuses the start.
#[test]
fn the_preflight_with_a_credential_that_owns_none_of_the_sessions() {
    let s = setup();
    let second = s.pg.create_role("second_credential", "second-pw", "postgres").unwrap();
    let reader = long_reader(&s, 600);
    let args = ["-a", "acme", "--command", "true", "--restart", "none", "--confirm", "acme", "--database-url", &second];
    let out = s.tool.run(&args);
    assert_eq!(out.code(), 0, "not a blocker, so the migration runs: {}", out.dump());
    let err = out.stderr_text();
    assert!(!out.stdout_text().contains("✓ preflight"), "no all-clear: {}", out.dump());
    assert!(
        err.contains("table locks are held by 1 session of other roles, and this credential cannot see for how long"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {} (reporting: query hidden from this credential) holds users", reader.pid)),
        "{err}"
    );

    // The lock watch, through the same credential, still names who holds the migration up.
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--restart",
        "none",
        "--confirm",
        "acme",
        "--database-url",
        &second,
        "--lock-wait",
        "1500ms",
        "--retries",
        "0",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stderr_text().contains(&format!(
            "migration waits for AccessExclusiveLock on users, held by pid {} (reporting, state and age hidden from this credential)",
            reader.pid
        )),
        "{}",
        out.dump()
    );

    let waiter =
        test_support::sessions::spawn(&s.pg.superuser_url("postgres"), "admin", "BEGIN; LOCK TABLE users; COMMIT");
    wait_until("the LOCK waits", || lock_waiters(&s.pg) == 1);
    let out = s.tool.run(&args);
    assert_eq!(out.code(), 5, "a hidden lock wait is still a blocker: {}", out.dump());
    assert!(
        out.stdout_text()
            .contains(&format!("[lock wait] pid {} (admin: query hidden from this credential)", waiter.pid)),
        "{}",
        out.dump()
    );
}

#[test]
fn the_preflight_refuses_while_a_backup_copy_runs() {
    let s = setup();
    create_big_table(&s.pg, "field_history", 20);
    let _backup = Backup::start(&s.pg, "postgres", "field_history", false);
    let cmd = sql_migration(&s.pg, "DROP TABLE field_history");
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    // The findings, then the one-line refusal with the ways out.
    test_support::assert_whole!("preflight-refused.stdout", out.stdout_text());
    test_support::assert_whole!("preflight-refused.stderr", out.stderr_text());
    assert!(!s.sim.requests().iter().any(|r| r.method == "POST"), "no dyno may be created");
    // --wait-clear waits, boundedly, then refuses the same way.
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--wait-clear", "1s"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(out.stderr_text().contains("Waiting up to 1s"), "{}", out.dump());
    // From a --database-url with a password (not in this shell's DATABASE_URL), the printed
    // pg-blockers command names "$DATABASE_URL" and the refusal says what to set first.
    let url = s.pg.superuser_url("postgres");
    let out = s.tool.run(&["-a", "acme", "--database-url", &url, "--command", &cmd, "--confirm", "acme"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    let err = out.stderr_text();
    assert!(err.contains("(pg-blockers --database-url \"$DATABASE_URL\")"), "{err}");
    assert!(err.contains("set DATABASE_URL to the URL you gave --database-url"), "{err}");
    assert!(!err.contains("test-superuser-pw"), "{err}");
}

/// Starts an ALTER migration (lock timeout 10m) behind a long reader and returns once it
/// waits in the lock queue, with its one-off dyno's name.
fn start_a_migration_that_waits(s: &Setup) -> (std::process::Child, String) {
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let child = s
        .tool
        .command(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--lock-wait", "10m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the migration waits in the lock queue", || lock_waiters(&s.pg) == 1);
    let dyno = s.sim.dyno_names("acme").into_iter().find(|n| n.starts_with("run.")).unwrap();
    (child, dyno)
}

/// Ctrl-C as `kill -INT` of the tool.
fn sigint(child: &std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
}

#[test]
fn ctrl_c_mid_migration_stops_the_dyno_and_ends_its_session() {
    let s = setup();
    let _reader = long_reader(&s, 600);
    let (mut child, dyno) = start_a_migration_that_waits(&s);
    // Interrupted once the operator has been told what it waits for: the whole output is then
    // the same every run.
    let err = LiveOutput::start(child.stderr.take().unwrap());
    wait_until("the lock watch names the wait", || err.text().contains("⏳ migration waits for"));
    sigint(&child);
    let out = end_detached(child, err);
    assert_eq!(out.0.code(), Some(130), "{:?}\n{}", out.0, out.1);
    assert!(out.1.contains(&format!("✓ {dyno} stopped")), "{}", out.1);
    let left =
        s.pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'migrate-restart/%'")
            .unwrap();
    assert_eq!(left, "0", "a migration session was left behind");
    assert_eq!(lock_waiters(&s.pg), 0, "no DDL left in the lock queue");
    assert!(!s.sim.dyno_names("acme").contains(&dyno));
    assert_eq!(restarts(&s.sim), 0);
    test_support::assert_whole!("ending-interrupted", out.1);
}

/// `--timeout` passed: the dyno is stopped by id and seen gone, its session ended, exit 1.
#[test]
fn a_migration_past_its_timeout_is_stopped_and_reads_whole() {
    let s = setup();
    let child = s
        .tool
        .command(&["-a", "acme", "--command", "echo started; sleep 60", "--confirm", "acme", "--timeout", "2s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (status, text) = finish(child);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(s.sim.dyno_names("acme").iter().all(|d| !d.starts_with("run.")), "the one-off dyno was stopped");
    assert_eq!(restarts(&s.sim), 0);
    test_support::assert_whole!("ending-timed-out", text);
}

/// Cleanup after Ctrl-C waits up to 30 s to see the dyno gone; when it will not go, a second
/// Ctrl-C stops waiting at once and says what may be left, rather than ending the session of a
/// migration whose dyno may still be running it.
#[test]
fn a_second_ctrl_c_stops_waiting_for_a_dyno_that_will_not_stop() {
    let s = setup();
    let _reader = long_reader(&s, 600);
    let (child, dyno) = start_a_migration_that_waits(&s);
    s.sim.with(|w| w.dyno_mut("acme", &dyno).ignores_stop = true);
    sigint(&child);
    let first = std::time::Instant::now();
    // The stop request is the sign that cleanup has begun and is now waiting.
    wait_until("the stop request", || {
        s.sim.requests().iter().any(|r| r.method == "POST" && r.path.ends_with("/actions/stop"))
    });
    // Signals within 300 ms count as one keypress (cli_kit::interrupt); a person's second
    // Ctrl-C comes later than that.
    std::thread::sleep(Duration::from_millis(400).saturating_sub(first.elapsed()));
    let second = std::time::Instant::now();
    sigint(&child);
    let (status, text) = finish(child);
    let waited = second.elapsed();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(waited < Duration::from_secs(10), "the second Ctrl-C took {waited:?} to end the wait (the wait is 30 s)");
    assert!(text.contains(&format!("{dyno} NOT SEEN GONE")), "{text}");
    assert!(text.contains("stopped waiting; the database session may remain"), "{text}");
    // It said the truth: the dyno is still listed and its DDL still waits.
    assert!(s.sim.dyno_names("acme").contains(&dyno));
    assert_eq!(lock_waiters(&s.pg), 1);
    assert_eq!(restarts(&s.sim), 0);
}

#[test]
fn a_dyno_that_never_comes_up_after_the_restart_is_named_with_exit_3() {
    let s = setup();
    s.sim.with(|w| w.dyno_mut("acme", "web.2").never_up = true);
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--confirm",
        "acme",
        "--no-preflight",
        "--restart",
        "web",
        "--restart-timeout",
        "2s",
    ]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(out.stdout_text().contains("✗ web.2 NOT VERIFIED after 2s: starting since the restart"), "{}", out.dump());
    assert!(!out.stdout_text().contains("web.1 NOT VERIFIED"), "{}", out.dump());
    assert!(
        s.sim.requests().iter().any(|r| r.method == "DELETE" && r.path == "/apps/acme/formations/web"),
        "restart addressed to the type's formation"
    );
}

/// `--restart web,worker` restarts each type the way `heroku ps:restart --process-type` does
/// (the formation route, 3.sdk variant) and verifies every dyno; the dyno route would answer
/// 404 for a type.
#[test]
fn restarting_types_goes_through_the_formation_route_and_is_verified() {
    let s = setup();
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--confirm",
        "acme",
        "--no-preflight",
        "--restart",
        "web,worker",
        "--json",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.json()["restart"]["verified"], true, "{}", out.dump());
    let mut restarts: Vec<(String, Option<String>)> =
        s.sim.requests().into_iter().filter(|r| r.method == "DELETE").map(|r| (r.path, r.accept)).collect();
    restarts.sort(); // sent in parallel
    let sdk = Some("application/vnd.heroku+json; version=3.sdk".to_string());
    assert_eq!(
        restarts,
        [("/apps/acme/formations/web".to_string(), sdk.clone()), ("/apps/acme/formations/worker".to_string(), sdk)]
    );
}

/// `migrate-restart … | head -1`: the reader goes away after the first line of the migration's
/// output; the migration still runs to its end, the app is restarted and verified, and 0 means
/// that was observed.
#[test]
fn a_closed_stdout_does_not_end_the_migration_or_skip_the_restart() {
    let s = setup();
    let cmd = "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done";
    let run = test_support::tool::run_closing_stdout_after_first_line(s.tool.command(&[
        "-a",
        "acme",
        "--command",
        cmd,
        "--confirm",
        "acme",
        "--no-preflight",
    ]));
    assert_eq!(run.code(), 0, "first line {:?}; stderr:\n{}", run.first_line, run.stderr);
    assert!(run.stderr.contains("line5"), "the rest of the output reaches stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("✓ migration finished"), "{}", run.stderr);
    assert_eq!(restarts(&s.sim), 1, "the app was restarted:\n{}", run.stderr);
}

#[test]
fn check_lists_dynos_that_predate_the_schema_change() {
    let s = setup();
    let out = s.tool.run(&["check", "-a", "acme", "--since", "10m"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let text = out.stdout_text();
    assert!(text.contains("3 dynos booted before it and may hold a stale schema"), "{text}");
    assert!(text.contains("  web.1  up") && text.contains("  worker.1  up"), "{text}");

    // Django records migration times; check uses them when --since is not given.
    s.pg.psql("postgres", "CREATE TABLE django_migrations (id serial, app text, name text, applied timestamptz); INSERT INTO django_migrations (app, name, applied) VALUES ('billing', '0007_drop', now() - interval '5 minutes')").unwrap();
    let out = s.tool.run(&["check", "-a", "acme", "--json"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["source"], "the last migration recorded in django_migrations");
    assert_eq!(doc["stale"].as_array().unwrap().len(), 3);

    // After a restart nothing predates it.
    s.sim.with(|w| {
        for a in w.apps.values_mut() {
            for d in &mut a.dynos {
                d.created_at = std::time::SystemTime::now();
            }
        }
    });
    let out = s.tool.run(&["check", "-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("✓ Every dyno of acme booted after that."), "{}", out.dump());
}

#[test]
fn check_without_a_database_falls_back_to_the_current_release() {
    let mut w = heroku_sim::scenario("stale-schema").unwrap();
    w.timing.start_delay = Duration::from_millis(100);
    let sim = Sim::start(w).unwrap();
    let t = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&sim.url(), &sim.token());
    let out = t.run(&["check", "-a", "acme"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(out.stdout_text().contains("per the current release v2 (no migration time recorded)"), "{}", out.dump());
}

#[test]
fn bad_input_starts_nothing() {
    let s = setup();
    let t = &s.tool;
    let cases: &[(&[&str], i32)] = &[
        (&["-a", "acme", "--confirm", "acme"], 2),
        (&["-a", "acme", "--command", "true", "--restart", "web,clock", "--confirm", "acme"], 2),
        (&["-a", "acme", "--command", "true", "--lock-wait", "soon"], 2),
        (&["-a", "acme", "--command", "true", "--restart-timeout", "0s"], 2),
        (&["-a", "acme", "--command", "true", "--confirm", "other"], 5),
        (&["-a", "acme", "--command", "true"], 5),
        (
            &[
                "-a",
                "acme",
                "--command",
                "true",
                "--attach",
                "--confirm",
                "acme",
                "--no-preflight",
                "--restart",
                "all,web",
            ],
            2,
        ),
        (&["-a", "acme", "--command", "true", "--confirm", "acme", "--no-preflight", "--plan", "plan.json"], 2),
        (&["-a", "acme", "--command", "true", "--wait-clear", "0"], 2),
        (&["follow", "-a", "acme", "", "--confirm", "acme"], 2),
        (&["check", "-a", "acme", "--since", "2099-01-01T00:00:00Z"], 2),
        (&["check", "-a", "acme", "--since", "-5m"], 2),
        (&["release", "-a", "acme", "--deadline", "2h", "--confirm", "acme"], 2),
        (
            &[
                "-a",
                "acme",
                "--command",
                "true",
                "--confirm",
                "acme",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/x",
            ],
            1,
        ),
        (
            &[
                "-a",
                "acme",
                "--command",
                "true",
                "--confirm",
                "acme",
                "--no-preflight",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/x",
            ],
            5,
        ),
    ];
    // Every refusal whole, in one document (tests/snapshots/refusals.snap).
    let mut refusals = test_support::snapshot::Transcript::new();
    for (args, code) in cases {
        let out = t.run(args);
        assert_eq!(out.code(), *code, "{args:?}: {}", out.dump());
        refusals.record("migrate-restart", args, &out);
    }
    test_support::assert_whole!("refusals", refusals.text());
    assert!(!s.sim.requests().iter().any(|r| r.method == "POST"), "no dyno may be created");

    // The Procfile's release line is the default command.
    std::fs::write(t.home().join("Procfile"), "web: puma\nrelease: echo from-procfile\n").unwrap();
    let out = t.run(&["-a", "acme", "--confirm", "acme", "--restart", "none"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("from-procfile"), "{}", out.dump());

    // A rendezvous whose certificate is not trusted: one line, and the dyno is stopped.
    let untrusted = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&s.sim.url(), &s.sim.token());
    let out = untrusted.run(&["-a", "acme", "--command", "true", "--confirm", "acme", "--restart", "none", "--attach"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stderr_text().contains("TLS") && out.stderr_text().contains("was stopped"), "{}", out.dump());
    assert_eq!(out.stderr_text().lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", out.dump());
    // Under --json the run still ends with its report, the dyno it created and stopped recorded.
    let out = untrusted.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--confirm",
        "acme",
        "--restart",
        "none",
        "--attach",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["result"], "failed", "{doc}");
    let attempt = &doc["attempts"][0];
    assert!(attempt["dyno"].as_str().is_some_and(|d| d.starts_with("run.")), "{doc}");
    let ending = attempt["ending"].as_str().unwrap();
    assert!(ending.starts_with("lost: not attached:") && ending.contains("was stopped"), "{doc}");
    assert_eq!(attempt["exit_status"], serde_json::Value::Null);

    // No attach_url from the platform.
    s.sim.with(|w| w.one_offs.rendezvous_port = None);
    let out = t.run(&["-a", "acme", "--command", "true", "--confirm", "acme", "--restart", "none", "--attach"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stderr_text().contains("returned no attach_url"), "{}", out.dump());
}

#[test]
fn a_lost_rendezvous_claims_neither_success_nor_failure() {
    let s = setup();
    let child = s
        .tool
        .command(&["-a", "acme", "--command", "sleep 30", "--confirm", "acme", "--no-preflight", "--attach"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The platform ends the dyno under the attached client (as a crash or a deploy would).
    let mut pid = None;
    wait_until("the one-off dyno runs", || {
        pid = s.sim.with(|w| w.apps["acme"].dynos.iter().find(|d| d.name.starts_with("run.")).and_then(|d| d.process));
        pid.is_some()
    });
    heroku_sim::oneoff::kill_group(pid.unwrap(), Duration::from_secs(30));
    let (status, text) = finish(child);
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("lost the connection to run.")
            && text.contains("The migration may still be running or may have finished"),
        "{text}"
    );
    assert!(text.contains("heroku logs -a acme --dyno run."), "{text}");
    assert!(!text.contains("✓ migration finished") && !text.contains("exited with status"), "{text}");
    assert_eq!(restarts(&s.sim), 0);
    test_support::assert_whole!("ending-lost-attached", text);
}

#[test]
fn output_streams_while_the_migration_runs() {
    let s = setup();
    let child = s
        .tool
        .command(&[
            "-a",
            "acme",
            "--command",
            "echo first-line; sleep 3; echo last-line",
            "--confirm",
            "acme",
            "--no-preflight",
            "--restart",
            "none",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let seen = LiveOutput::start(child.stdout.take().unwrap());
    // The plan line quotes the command; the command's own output is a line of its own.
    let printed = |text: &str| seen.text().lines().any(|l| l.trim() == text);
    wait_until("the first line arrives", || printed("first-line"));
    assert!(child.try_wait().unwrap().is_none(), "the first line is shown while the command still runs");
    assert!(!printed("last-line"));
    assert!(child.wait().unwrap().success());
    wait_until("the last line arrives", || printed("last-line"));
}

/// A migration that turns its own lock_timeout off (`SET lock_timeout = 0`, as an app's
/// database.yml or a migration can) waits behind a long reader: the outside budget cancels it
/// at --lock-wait + 0.5s, says the session's own timeout was not in force, and the retry
/// flow goes on as for a lock timeout; nothing is left waiting.
#[test]
fn a_migration_that_overrides_its_lock_timeout_is_cancelled_from_outside_and_retried() {
    let s = setup();
    let reader = long_reader(&s, 600);
    let cmd = sql_migration(&s.pg, "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text");
    let started = std::time::Instant::now();
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--confirm",
        "acme",
        "--lock-wait",
        "1s",
        "--retries",
        "1",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let err = out.stderr_text();
    assert!(err.contains("lock_timeout 1s via PGOPTIONS, enforced from outside at 1.5s"), "the plan says it: {err}");
    assert!(err.contains("Lock-wait budget 1.5s: cancelled the migration's"), "{err}");
    assert!(err.contains("PGOPTIONS ignored or overridden"), "{err}");
    assert!(
        err.contains(
            "lock-wait budget: the migration's statement was cancelled after waiting past the budget (attempt 1 of 2)"
        ),
        "{err}"
    );
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "retried once");
    for a in attempts {
        assert_eq!(a["lock_timeout"], true);
        let e = &a["outside_budget"][0];
        assert_eq!(e["verified"], true, "{a}");
        assert_eq!(e["wait"]["blocker"]["pid"], reader.pid);
        assert!(e["overrun_ms"].as_u64().unwrap() < 1000, "{e}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "two attempts of ~1.5s plus a backoff");
    assert_eq!(lock_waiters(&s.pg), 0, "nothing is left waiting behind the reader");
    assert_eq!(restarts(&s.sim), 0);
    assert!(!reader.is_finished(), "the reader is not the migration's");
}

/// When the session's own lock_timeout is in force, Postgres cancels first and the outside
/// budget never acts; a retry after the blocker ended succeeds.
#[test]
fn with_pgoptions_in_force_the_outside_budget_does_not_act() {
    let s = setup();
    let _reader = long_reader(&s, 2);
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--lock-wait", "500ms", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{doc}");
    assert!(attempts.iter().all(|a| a["outside_budget"].as_array().unwrap().is_empty()), "{doc}");
    assert_eq!(attempts[0]["lock_timeout"], true);
}

/// A migration in several statements, as psql runs them: each `-c` on its own (a CREATE INDEX
/// CONCURRENTLY cannot run inside a transaction block).
fn psql_steps(pg: &test_support::PgCluster, steps: &[&str]) -> String {
    let mut cmd = format!("{} \"$DATABASE_URL\" -X -q -v ON_ERROR_STOP=1", pg.psql_path().display());
    for s in steps {
        cmd.push_str(&format!(" -c \"{s}\""));
    }
    cmd
}

fn index_state(pg: &test_support::PgCluster, name: &str) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT coalesce((SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('{name}')), 'absent')"),
    )
    .unwrap()
}

/// A CREATE INDEX CONCURRENTLY cancelled by the budget leaves an INVALID index: the retry is
/// blocked with the exact statement to run, and the version the attempt recorded is named.
#[test]
fn an_invalid_index_left_by_a_cancelled_attempt_blocks_the_retry_with_the_command() {
    let s = setup();
    s.pg.psql("postgres", "CREATE TABLE schema_migrations (version varchar PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20260101000000')").unwrap();
    let _reader = long_reader(&s, 600);
    let cmd = psql_steps(
        &s.pg,
        &[
            "INSERT INTO schema_migrations VALUES ('20261122000001')",
            "SET lock_timeout = 0",
            "CREATE INDEX CONCURRENTLY index_users_on_id ON users (id)",
        ],
    );
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--confirm",
        "acme",
        "--lock-wait",
        "500ms",
        "--retries",
        "2",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    assert!(text.contains("DROP INDEX CONCURRENTLY public.index_users_on_id;"), "the exact statement: {text}");
    assert!(text.contains("Not retrying"), "{text}");
    assert!(
        text.contains("already applied by the failed attempt (recorded since this run began): 20261122000001"),
        "{text}"
    );
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "no retry over the debris: {doc}");
    let left = &attempts[0]["left_behind"];
    assert_eq!(left["invalid_indexes"][0]["name"], "public.index_users_on_id", "{doc}");
    assert_eq!(left["recorded_versions"], serde_json::json!(["20261122000001"]));
    assert_eq!(attempts[0]["outside_budget"][0]["verified"], true);
    assert_eq!(index_state(&s.pg, "index_users_on_id"), "false", "left INVALID, not touched without the flag");
}

/// `--drop-invalid-indexes` drops what the cancelled attempt left (verified), and the retry,
/// once the reader is gone, builds the index.
#[test]
fn drop_invalid_indexes_cleans_the_debris_and_the_retry_succeeds() {
    let s = setup();
    let _reader = long_reader(&s, 3);
    let cmd = psql_steps(&s.pg, &["SET lock_timeout = 0", "CREATE INDEX CONCURRENTLY index_users_on_id ON users (id)"]);
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--confirm",
        "acme",
        "--lock-wait",
        "500ms",
        "--retries",
        "3",
        "--drop-invalid-indexes",
        "--json",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{doc}");
    assert_eq!(attempts[0]["left_behind"]["dropped"], serde_json::json!(["public.index_users_on_id"]), "{doc}");
    assert!(out.stderr_text().contains("dropped public.index_users_on_id (verified gone)"), "{}", out.dump());
    assert_eq!(index_state(&s.pg, "index_users_on_id"), "true", "built by the retry, valid");
}

/// A Heroku app whose DATABASE_URL goes through PgBouncer (transaction mode) and whose direct
/// URL is another config var.
fn setup_pooled() -> (Setup, test_support::pgbouncer::PgBouncer) {
    let s = setup();
    let bouncer = test_support::pgbouncer::PgBouncer::start(&s.pg, "transaction", 5).unwrap();
    let pooled = bouncer.url("postgres");
    s.sim.with(|w| {
        w.set_config_var("acme", "HEROKU_POSTGRESQL_TEAL_URL", &s.pg.superuser_url("postgres"));
        w.set_config_var("acme", "DATABASE_URL", &pooled);
        w.set_config_var("acme", "DATABASE_CONNECTION_POOL_URL", &pooled);
    });
    (s, bouncer)
}

/// Through PgBouncer the migration's PGOPTIONS is refused: said in one line with the config var
/// to use, and retried once without it — the migration runs and is verified.
#[test]
fn through_pgbouncer_the_refused_pgoptions_is_said_and_the_retry_without_it_migrates() {
    let (s, _bouncer) = setup_pooled();
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let err = out.stderr_text();
    assert!(
        err.contains("a connection pooler refused the migration's startup options")
            && err.contains("DATABASE_URL of acme goes through a pooler; migrations should use the direct URL: acme also has HEROKU_POSTGRESQL_TEAL_URL"),
        "{err}"
    );
    assert!(
        err.contains("retrying once without PGOPTIONS; the lock-wait budget is enforced from outside at 5.5s"),
        "{err}"
    );
    assert!(
        err.contains("DATABASE_URL of acme goes through a connection pooler (it refused the startup options)"),
        "the preflight says it: {err}"
    );
    let doc = out.json();
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{doc}");
    assert_eq!((attempts[0]["pooler_refused"].as_bool(), attempts[0]["pgoptions"].as_bool()), (Some(true), Some(true)));
    assert_eq!(
        (attempts[1]["pooler_refused"].as_bool(), attempts[1]["pgoptions"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(doc["restart"]["verified"], true);
    let create =
        s.sim.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/apps/acme/dynos").nth(1).unwrap();
    assert!(create.body.unwrap()["env"].get("PGOPTIONS").is_none(), "the retry has no PGOPTIONS");
}

/// Without PGOPTIONS the outside budget is the guard: through PgBouncer, a migration stuck
/// behind a long reader is cancelled at the budget and nothing is left waiting.
#[test]
fn through_pgbouncer_the_migration_without_pgoptions_is_guarded_from_outside() {
    let (s, _bouncer) = setup_pooled();
    let reader = long_reader(&s, 600);
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--confirm",
        "acme",
        "--lock-wait",
        "1s",
        "--retries",
        "0",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc = out.json();
    let last = doc["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["pgoptions"], false, "{doc}");
    assert_eq!(last["outside_budget"][0]["verified"], true, "{doc}");
    assert_eq!(last["outside_budget"][0]["wait"]["blocker"]["pid"], reader.pid);
    assert_eq!(lock_waiters(&s.pg), 0, "nothing left waiting");
    assert_eq!(restarts(&s.sim), 0);
}

/// The pool is full (one server connection, held by the migration's waiting ALTER): the watch
/// reads the direct URL, so the outside budget still acts — through the pooler it would wait
/// in the pooler's queue.
#[test]
fn with_the_pool_full_the_outside_budget_still_acts_through_the_direct_url() {
    let s = setup();
    let bouncer = test_support::pgbouncer::PgBouncer::start(&s.pg, "transaction", 1).unwrap();
    s.sim.with(|w| {
        w.set_config_var("acme", "HEROKU_POSTGRESQL_TEAL_URL", &s.pg.superuser_url("postgres"));
        w.set_config_var("acme", "DATABASE_URL", &bouncer.url("postgres"));
    });
    let _reader = long_reader(&s, 600);
    let cmd = sql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let started = std::time::Instant::now();
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--confirm",
        "acme",
        "--lock-wait",
        "1s",
        "--retries",
        "0",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let doc = out.json();
    let last = doc["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outside_budget"][0]["verified"], true, "{doc}");
    assert_eq!(lock_waiters(&s.pg), 0);
}

/// No free connection slot: the preflight cannot look, so nothing starts — one line with the
/// ways out, exit 1, no dyno created.
#[test]
fn with_no_free_connection_the_preflight_says_so_and_nothing_starts() {
    let s = setup();
    let _held = test_support::sessions::take_every_slot(&s.pg);
    let out = s.tool.run(&["-a", "acme", "--command", "true", "--confirm", "acme"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let err = out.stderr_text();
    assert!(err.contains("cannot run the preflight") && err.contains("every connection slot is taken"), "{err}");
    assert!(err.contains("`heroku pg:killall -a acme`"), "the ways out, for this app: {err}");
    assert!(!s.sim.requests().iter().any(|r| r.method == "POST" && r.path == "/apps/acme/dynos"), "nothing started");
}

/// `--no-preflight` skips the check before the start, not the guard during the run: a migration
/// that turned its own lock_timeout off behind a long reader is still cut at the budget. Only
/// `--no-lock-watch` turns the watch off, and the plan says so.
#[test]
fn no_preflight_keeps_the_lock_wait_budget_only_no_lock_watch_removes_it() {
    let s = setup();
    let _reader = long_reader(&s, 120);
    let cmd = sql_migration(&s.pg, "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text");
    let started = std::time::Instant::now();
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--lock-wait",
        "1s",
        "--retries",
        "0",
        "--no-preflight",
        "--restart",
        "none",
        "--confirm",
        "acme",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(started.elapsed() < Duration::from_secs(30), "it did not wait for the reader");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cut = doc["attempts"][0]["outside_budget"].as_array().unwrap();
    assert!(cut.iter().any(|e| e["verified"] == true), "the outside budget cut the ALTER: {doc}");
    assert!(out.stderr_text().contains("enforced from outside at 1.5s"), "{}", out.dump());
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--no-preflight",
        "--no-lock-watch",
        "--restart",
        "none",
        "--confirm",
        "acme",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(
        out.stdout_text().contains("via PGOPTIONS only: --no-lock-watch, so nothing enforces it from outside"),
        "{}",
        out.dump()
    );
}

/// `follow` of a run that already ended and whose restart already happened reports what
/// happened: nothing is restarted again (every dyno booted after the run ended), and the
/// migration is timed from the platform's log (its first line to its exit line), not by how
/// long the follow took.
#[test]
fn following_a_finished_and_restarted_run_restarts_nothing_and_times_what_the_log_measured() {
    let s = setup();
    let out =
        s.tool.run(&["-a", "acme", "--command", "sleep 1; echo done", "--no-preflight", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dyno = doc["attempts"][0]["dyno"].as_str().unwrap().to_string();
    test_support::sessions::wait_until("the one-off is gone", || !s.sim.dyno_names("acme").contains(&dyno));
    let restarts_before = s.sim.requests().iter().filter(|r| r.method == "DELETE").count();
    let out = s.tool.run(&["follow", "-a", "acme", &dyno, "--restart", "all", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        s.sim.requests().iter().filter(|r| r.method == "DELETE").count(),
        restarts_before,
        "nothing restarted again: {}",
        out.dump()
    );
    assert!(
        out.stderr_text().contains("Nothing to restart on acme: every dyno booted after the migration ended"),
        "{}",
        out.dump()
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ms = doc["attempts"][0]["duration_ms"].as_u64().unwrap();
    assert!((900..10_000).contains(&ms), "the 1-second migration is timed as the log measured it: {ms} ms");
}

/// `follow` of a dyno the platform has never heard of (not listed, no line in the log) is a
/// usage error naming it, not "it may still be running".
#[test]
fn following_a_dyno_nobody_has_heard_of_is_a_usage_error() {
    let s = setup();
    let out = s.tool.run(&["follow", "-a", "acme", "run.9999", "--restart", "none", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("acme has no dyno run.9999 and its log has no line of one"), "{}", out.dump());
}

/// `--no-preflight` skips the look before the start, never the budget during it: a database
/// the watch cannot reach (nothing listens; a role with no free connection) refuses the run
/// (5) before any dyno exists, and no output claims a budget enforced from outside.
#[test]
fn a_database_the_watch_cannot_reach_refuses_the_run_before_a_dyno_exists() {
    let s = setup();
    s.pg.psql("postgres", "CREATE ROLE full_role LOGIN PASSWORD 'pw' CONNECTION LIMIT 0").unwrap();
    let no_slot = format!("postgres://full_role:pw@127.0.0.1:{}/postgres", s.pg.port());
    for url in ["postgres://nobody@127.0.0.1:1/nothing", no_slot.as_str()] {
        let out = s.tool.run(&[
            "-a",
            "acme",
            "--command",
            "true",
            "--no-preflight",
            "--database-url",
            url,
            "--restart",
            "none",
            "--confirm",
            "acme",
        ]);
        assert_eq!(out.code(), 5, "{}", out.dump());
        assert!(out.stderr_text().contains("cannot watch"), "{}", out.dump());
        assert!(out.stderr_text().contains("nothing was started"), "{}", out.dump());
        assert!(!out.dump().contains("enforced from outside at"), "no budget is claimed: {}", out.dump());
        assert!(
            !s.sim.requests().iter().any(|r| r.method == "POST" && r.path.ends_with("/dynos")),
            "no dyno was created"
        );
    }
    // No database known at all: refused the same way, unless --no-lock-watch says so.
    s.sim.with(|w| w.apps.get_mut("acme").unwrap().config_vars.remove("DATABASE_URL"));
    let out =
        s.tool.run(&["-a", "acme", "--command", "true", "--no-preflight", "--restart", "none", "--confirm", "acme"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(
        out.stderr_text().contains("--no-lock-watch to rely on the migration's own lock_timeout"),
        "{}",
        out.dump()
    );
    assert!(!s.sim.requests().iter().any(|r| r.method == "POST" && r.path.ends_with("/dynos")), "no dyno was created");
}

/// A release phase still running (its release pending, its `release.N` dyno up): a run now
/// would be a second migration beside it and a restart onto the release it replaces. Refused
/// (5) naming the release, nothing created; `--beside-release-phase` runs it anyway, said.
#[test]
fn a_run_while_a_release_phase_runs_is_refused_naming_the_release() {
    let s = setup();
    let version = s.sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", "sleep 20")]);
    wait_until("the release phase runs", || s.sim.dyno_names("acme").iter().any(|n| n.starts_with("release.")));
    let dyno = s.sim.dyno_names("acme").into_iter().find(|n| n.starts_with("release.")).unwrap();
    let out = s.tool.run(&["-a", "acme", "--command", "true", "--restart", "none", "--confirm", "acme"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    let line = out.stderr_text();
    assert!(line.contains(&format!("release v{version} of acme is in its release phase ({dyno} running)")), "{line}");
    assert!(line.contains("--beside-release-phase; nothing was started"), "{line}");
    assert!(!s.sim.requests().iter().any(|r| r.method == "POST" && r.path.ends_with("/dynos")), "no dyno was created");
    assert_eq!(restarts(&s.sim), 0);

    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--restart",
        "none",
        "--confirm",
        "acme",
        "--beside-release-phase",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.dump().contains("--beside-release-phase, so this migration runs beside it"), "{}", out.dump());
}

/// The debris rule, in the one-off runner: a lock timeout would be retried, but the check of
/// what the failed attempt left cannot run (the database refuses new connections after the
/// attempt — here the migration itself set `ALLOW_CONNECTIONS false`). No retry: one dyno,
/// exit 1, the reason and how to check by hand. (Before, migrate-restart retried anyway.)
#[test]
fn a_retry_whose_debris_check_cannot_connect_does_not_run() {
    let s = setup();
    let _reader = long_reader(&s, 120);
    let cmd = test_support::acme::migration_that_locks_out_new_connections(&s.pg);
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--lock-wait",
        "1s",
        "--retries",
        "2",
        "--no-preflight",
        "--restart",
        "none",
        "--confirm",
        "acme",
        "--json",
    ]);
    s.pg.psql("template1", "ALTER DATABASE postgres ALLOW_CONNECTIONS true").unwrap();
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 1, "not retried: {doc}");
    let err = out.stderr_text();
    assert!(err.contains("not retrying: what the failed attempt left could not be checked (cannot connect"), "{err}");
    assert!(err.contains("Check by hand, then run again: heroku pg:psql -a acme -c"), "{err}");
    let dynos = s.sim.requests().iter().filter(|r| r.method == "POST" && r.path == "/apps/acme/dynos").count();
    assert_eq!(dynos, 1, "one attempt");
}

/// `--lock-timeout`, the run's old name for the budget, still works and says once that it is
/// `--lock-wait` now (the same flag on every tool).
#[test]
fn the_old_lock_timeout_flag_still_works_and_says_its_new_name_once() {
    let s = setup();
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--lock-timeout",
        "3s",
        "--restart",
        "none",
        "--confirm",
        "acme",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let err = out.stderr_text();
    assert_eq!(err.matches("--lock-timeout is now --lock-wait").count(), 1, "{err}");
    assert!(out.stdout_text().contains("lock_timeout 3s via PGOPTIONS"), "{}", out.dump());
    let out =
        s.tool.run(&["-a", "acme", "--command", "true", "--lock-wait", "3s", "--restart", "none", "--confirm", "acme"]);
    assert!(!out.stderr_text().contains("--lock-timeout"), "{}", out.dump());
}

/// `--lock-wait off`, the same word as on every tool: no budget at all — no lock_timeout in
/// PGOPTIONS, no cut from outside, the guard in the slug told `off` too — said before the run.
#[test]
fn lock_wait_off_runs_without_a_budget_and_says_so() {
    let s = setup();
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        "true",
        "--lock-wait",
        "off",
        "--restart",
        "none",
        "--confirm",
        "acme",
    ]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("no lock-wait budget (--lock-wait off)"), "{}", out.dump());
    let create = s.sim.requests().into_iter().find(|r| r.method == "POST" && r.path == "/apps/acme/dynos").unwrap();
    let body = create.body.unwrap();
    assert!(body["env"].get("PGOPTIONS").is_none(), "no lock_timeout: {body}");
    assert!(body["command"].as_str().unwrap().contains("migrate-guard --lock-wait off "), "{body}");
}

/// A migration that waits for nothing but holds its lock while it scans (a validating CHECK on
/// a big table): the site's queries queue behind it. The watch from here cuts it once the first
/// has waited the hold budget, the queue runs, the run fails (exit 1) without a retry — the
/// same statement would hold as long again — and nothing is restarted. The server says the
/// constraint is not there.
#[test]
fn a_statement_the_site_queues_behind_is_cut_at_the_hold_budget_and_not_retried() {
    let s = setup();
    test_support::acme::slow_validation_table(&s.pg, 400).unwrap();
    let cmd = sql_migration(&s.pg, test_support::acme::VALIDATING_SCAN);
    let mut child =
        s.tool.command(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--lock-wait", "1s", "--json"]);
    child.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = child.spawn().unwrap();
    let err = LiveOutput::start(child.stderr.take().unwrap());
    wait_until("the scan holds its lock", || test_support::acme::holds_events_exclusively(&s.pg, "migrate-restart/"));
    let blocked_for =
        test_support::sessions::queue_behind(&s.pg.superuser_url("postgres"), 10, "SELECT count(*) FROM events");
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let text = err.finish();
    assert!(blocked_for < Duration::from_millis(1000 + 2500), "the site was blocked {blocked_for:?}: {text}");
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("; holds cut at 1s"), "the plan says the hold budget: {text}");
    assert!(text.contains("Hold budget 1s: cancelled the migration's `ALTER TABLE events ADD CONSTRAINT"), "{text}");
    assert!(text.contains("NOT VALID, then VALIDATE CONSTRAINT"), "the safe form: {text}");
    assert!(
        text.contains("was cut for holding a lock the site queued behind past the budget, and was not retried"),
        "{text}"
    );
    assert!(!text.contains("treated as a lock timeout"), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "not retried: {doc}");
    assert_eq!(attempts[0]["lock_timeout"], false);
    let cut = &attempts[0]["outside_budget"][0];
    assert_eq!(cut["verified"], true, "{cut}");
    assert_eq!(cut["wait"]["lock"], "AccessExclusiveLock on events");
    assert!(cut["held"]["first_waiter"]["application_name"].as_str().unwrap().starts_with("web."), "{cut}");
    assert!(!test_support::acme::validated(&s.pg), "its transaction rolled back");
    assert_eq!(restarts(&s.sim), 0);
}

/// `--plan` naming a query the migration breaks: while the running release still sends it, the
/// one-off run is refused (5) before any dyno, the query and its rate named; `--allow-breaking`
/// runs it and says so.
#[test]
fn a_contract_step_is_refused_while_the_old_code_still_sends_what_it_breaks() {
    let s = setup();
    s.pg.psql("postgres", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();
    s.pg.load_pg_stat_statements("postgres").unwrap();
    let web = test_support::acme::old_release_inserting_legacy_flag(&s.pg);
    let text = test_support::acme::legacy_flag_insert_text(&s.pg);
    let plan = format!(
        r#"{{"schema_version": 1, "statements": [{{"seq": 1, "tag": "ALTER TABLE", "object": "public.users",
            "query": "ALTER TABLE users DROP COLUMN legacy_flag", "transaction": 1,
            "locks": [{{"relation": "public.users", "kind": "table", "mode": "AccessExclusiveLock", "new": true}}],
            "rewrites": [], "waits_for_older_transactions": false}}],
          "breaks": [{{"query": {}, "error": "column does not exist"}}], "cannot_vouch": [], "verdict": "would_break"}}"#,
        serde_json::to_string(&text).unwrap()
    );
    let dir = test_support::tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    std::fs::write(&path, test_support::acme::plan_made_for(&s.pg, "postgres", &plan)).unwrap();
    let cmd = sql_migration(&s.pg, "ALTER TABLE users DROP COLUMN legacy_flag");
    let args =
        ["-a", "acme", "--command", &cmd, "--plan", path.to_str().unwrap(), "--restart", "none", "--confirm", "acme"];
    let out = s.tool.run(&args);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(
        out.stderr_text()
            .contains("the running release still sends `INSERT INTO users (id, legacy_flag) VALUES ($1, $2)` ("),
        "{}",
        out.dump()
    );
    assert!(out.stderr_text().contains("nothing was started"), "{}", out.dump());
    assert_eq!(s.sim.requests().iter().filter(|r| r.method == "POST").count(), 0, "no dyno was created");

    let out = s.tool.run(&[&args[..], &["--allow-breaking"]].concat());
    web.stop();
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stderr_text().contains("--allow-breaking: running the migration anyway"), "{}", out.dump());
}
