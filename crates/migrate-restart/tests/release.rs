//! `migrate-restart release` end to end: heroku-sim runs the release phase (the release command
//! as a local process on `release.N`), against a real PostgreSQL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use heroku_sim::Sim;
use serde_json::Value;
use test_support::generation::Generation;
use test_support::on_both_generations;
use test_support::sessions::{lock_waiters, spawn, wait_until, Running};
use test_support::tool::{LiveOutput, OutputExt, Tool};
use test_support::PgCluster;

struct Setup {
    pg: PgCluster,
    sim: Sim,
    tool: Tool,
}

fn setup() -> Setup {
    setup_on(Generation::Cedar)
}

/// acme (web×2) on generation `g`, its DATABASE_URL a real PostgreSQL with `users`.
fn setup_on(g: Generation) -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let sim = Sim::start(test_support::acme::acme_world(&pg, g)).unwrap();
    let tool = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&sim.url(), &sim.token());
    Setup { pg, sim, tool }
}

/// A release command: psql against the app's DATABASE_URL, as a framework's migrate would.
fn release_sql(pg: &PgCluster, sql: &str) -> String {
    format!("echo '== migrating'; {}", test_support::acme::psql_migration(pg, sql))
}

fn push(s: &Setup, release_command: &str) -> u64 {
    s.sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", release_command)])
}

fn status_of(s: &Setup, version: u64) -> String {
    s.sim.with(|w| w.apps["acme"].releases.iter().find(|r| r.version == version).unwrap().status.clone())
}

fn has_column(pg: &PgCluster) -> bool {
    pg.psql(
        "postgres",
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'",
    )
    .unwrap()
        == "1"
}

/// A report holding `users` for `secs` seconds, running when this returns.
fn long_reader(s: &Setup, secs: u32) -> Running {
    test_support::sessions::long_report(&s.pg, &s.pg.superuser_url("postgres"), secs)
}

on_both_generations! {
    /// The release phase is followed to its success and the formation verified on it, on
    /// either generation (a pod-named release dyno on Fir); the report says which.
    fn a_release_phase_that_succeeds_is_followed_and_the_formation_verified_on_it(g) {
        let s = setup_on(g);
        // Long enough for its dyno to be seen (a phase that ends first is reported without one).
        let v = push(&s, &format!("sleep 1; {}", release_sql(&s.pg, "ALTER TABLE users ADD COLUMN nickname text")));
        let out = s.tool.run(&["release", "-a", "acme", "--confirm", "acme", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let doc = out.json();
        let report: migrate_restart::report::ReleaseReport = serde_json::from_value(doc.clone()).expect("a ReleaseReport");
        assert_eq!(report.phase.result, release_phase::PhaseResult::Succeeded);
        assert_eq!(report.phase.release.version, v);
        assert_eq!(report.phase.previous_version, Some(v - 1));
        let prefix = if g == Generation::Fir { "release-" } else { "release." };
        assert!(report.phase.dyno.as_ref().unwrap().name.starts_with(prefix), "{doc}");
        assert_eq!(doc["platform"]["generation"], g.name(), "{doc}");
        assert!(report.phase.database.watched);
        assert_eq!(report.phase.lock_wait_ms, Some(5000));
        assert!(report.phase.enforcements.is_empty());
        let formation = report.formation.unwrap();
        assert!(formation.verified);
        assert_eq!(formation.dynos.len(), 2);
        assert!(formation.dynos.iter().all(|d| d.release_version == Some(v) && d.state == "up"));
        assert!(out.stderr_text().contains("== migrating"), "the release output is shown: {}", out.dump());
        assert!(has_column(&s.pg));
    }
}

on_both_generations! {
    /// Incident 000 in the release phase, on Cedar and on Fir: the release's ALTER (which
    /// turned its own lock_timeout off) waits behind a long reader and the site's queries queue
    /// behind it. The budget cancels the ALTER — only it — the queue runs, the release fails,
    /// the app stays on the previous release, and the output names the blocker and the retry.
    fn incident_000_in_the_release_phase_is_cut_at_the_lock_wait_budget(g) {
        let s = setup_on(g);
        let reader = long_reader(&s, 60);
        let v = push(&s, &release_sql(&s.pg, "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text"));
        let mut child = s.tool.command(&["release", "-a", "acme", "--lock-wait", "1s", "--confirm", "acme", "--json"]);
        child.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = child.spawn().unwrap();
        let err = LiveOutput::start(child.stderr.take().unwrap());
        wait_until("the release's ALTER waits", || lock_waiters(&s.pg) == 1);
        let waiting_since = Instant::now();
        let url = s.pg.superuser_url("postgres");
        let queued: Vec<Running> =
            (0..20).map(|i| spawn(&url, &format!("web.{}", i % 2 + 1), "SELECT count(*) FROM users")).collect();
        for q in queued {
            q.finish().expect("a queued query runs once the ALTER is cancelled");
        }
        let blocked_for = waiting_since.elapsed();
        assert!(blocked_for < Duration::from_secs(4), "the site was blocked {blocked_for:?} with a 1s budget");
        let status = child.wait().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let stderr = err.finish();
        assert_eq!(status.code(), Some(1), "{stderr}");
        let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        let report: migrate_restart::report::ReleaseReport = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(report.phase.result, release_phase::PhaseResult::Failed);
        let e = &report.phase.enforcements[0];
        assert!(e.sent && e.verified, "{doc}");
        assert_eq!(e.wait.blocker.as_ref().unwrap().pid, reader.pid);
        assert!(e.wait.why.contains("after release") && e.wait.why.contains("runs ALTER TABLE"), "{}", e.wait.why);
        assert!(e.overrun_ms.unwrap() < 1000, "cancelled {}ms past the budget", e.overrun_ms.unwrap());
        assert_eq!(report.retry_command.as_deref(), Some("heroku releases:retry -a acme"));
        assert!(stderr.contains("Lock-wait budget 1s: cancelled the release's"), "{stderr}");
        assert!(stderr.contains("why this session: began"), "{stderr}");
        assert!(!stderr.contains("got its lock"), "a cancelled wait did not get its lock: {stderr}");
        assert!(stderr.contains("acme stays on v"), "{stderr}");
        assert!(stderr.contains("heroku releases:retry -a acme"), "{stderr}");
        assert_eq!(status_of(&s, v), "failed");
        assert!(s.sim.with(|w| w.apps["acme"].current_version()) == v - 1);
        assert!(!has_column(&s.pg));
        assert!(!reader.is_finished(), "the reader is not the release's and was never touched");
    }
}

/// The budget cancels on the user's behalf: without a terminal it needs --confirm, and refuses
/// with nothing cancelled; `--lock-wait off` only watches and needs none.
#[test]
fn the_budget_needs_confirmation_and_lock_wait_off_only_watches() {
    let s = setup();
    let reader = long_reader(&s, 3);
    let v = push(&s, &release_sql(&s.pg, "ALTER TABLE users ADD COLUMN nickname text"));
    let out = s.tool.run(&["release", "-a", "acme"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(out.stderr_text().contains("--confirm acme, or --lock-wait off"), "{}", out.dump());
    assert_eq!(status_of(&s, v), "pending");

    let out = s.tool.run(&["release", "-a", "acme", "--lock-wait", "off", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let report: migrate_restart::report::ReleaseReport = serde_json::from_value(out.json()).unwrap();
    assert_eq!(report.phase.lock_wait_ms, None);
    assert!(report.phase.enforcements.is_empty());
    let wait = &report.phase.waits[0];
    assert_eq!(wait.blocker.as_ref().unwrap().pid, reader.pid, "who blocks the release is said");
    assert!(out.stderr_text().contains("waits for AccessExclusiveLock on users"), "{}", out.dump());
    assert_eq!(
        out.stderr_text().matches("waits for AccessExclusiveLock").count(),
        1,
        "once per change: {}",
        out.dump()
    );
    assert!(has_column(&s.pg));
    reader.finish().unwrap();
}

/// `--deadline`: the release dyno is stopped by id, and the release fails.
#[test]
fn the_deadline_stops_the_release_dyno_by_id() {
    let s = setup();
    let v = push(&s, "echo '== long task'; sleep 30");
    let started = Instant::now();
    let out = s.tool.run(&["release", "-a", "acme", "--deadline", "1s", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(started.elapsed() < Duration::from_secs(15));
    let doc = out.json();
    let action = &doc["phase"]["deadline_action"];
    assert_eq!(action["stop_sent"], true, "{doc}");
    assert_eq!(action["dyno_gone"], true, "{doc}");
    let dyno_id = doc["phase"]["dyno"]["id"].as_str().unwrap().to_string();
    assert!(
        s.sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == format!("/apps/acme/dynos/{dyno_id}/actions/stop")),
        "stopped by id"
    );
    assert_eq!(status_of(&s, v), "failed");
}

/// A release that already failed: its last lines and exit 1, no confirmation needed.
#[test]
fn a_release_that_already_failed_shows_its_last_lines_and_exits_1() {
    let s = setup();
    let v = push(&s, "echo '== AddNickname: migrating'; echo 'PG::LockNotAvailable: canceling statement due to lock timeout' >&2; exit 1");
    wait_until("the release fails", || status_of(&s, v) == "failed");
    let out = s.tool.run(&["release", &format!("v{v}"), "-a", "acme"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let text = out.stdout_text();
    assert!(text.contains(&format!("The release phase of v{v} failed")), "{}", out.dump());
    assert!(text.contains("PG::LockNotAvailable"), "{}", out.dump());
    assert!(text.contains(&format!("acme stays on v{}", v - 1)), "{}", out.dump());
}

/// Ctrl-C while following: 130, and the release phase goes on.
#[test]
fn an_interrupt_leaves_the_release_phase_running() {
    let s = setup();
    let v = push(&s, "sleep 30");
    let mut cmd = s.tool.command(&["release", "-a", "acme", "--lock-wait", "off"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err = LiveOutput::start(child.stderr.take().unwrap());
    wait_until("following", || err.text().contains("running on release."));
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let text = err.finish();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("goes on"), "{text}");
    assert_eq!(status_of(&s, v), "pending");
}

#[test]
fn bad_input_is_one_line_and_the_documented_code() {
    let s = setup();
    let out = s.tool.run(&["release", "-a", "acme", "--lock-wait", "soon"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("or `off` to only watch"), "{}", out.dump());
    let out = s.tool.run(&["release", "v99", "-a", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("acme has no release v99"), "{}", out.dump());
}

/// On a terminal the budget is asked for once, up front, defaulting to No: a No cancels
/// nothing (exit 5, the release phase goes on); a yes follows and guards.
#[test]
fn on_a_terminal_the_budget_is_asked_for_once_up_front() {
    let s = setup();
    let reader = long_reader(&s, 60);
    let v = push(&s, &release_sql(&s.pg, "ALTER TABLE users ADD COLUMN nickname text"));
    let question = "Let migrate-restart cancel the release's statements on acme as described?";
    let mut no = s.tool.pty(&["release", "-a", "acme", "--lock-wait", "1s"]);
    no.expect(question, Duration::from_secs(20));
    no.send("\r");
    assert_eq!(no.wait(Duration::from_secs(20)).code(), Some(5), "{}", no.screen());
    assert_eq!(status_of(&s, v), "pending", "No cancels nothing");
    let mut yes = s.tool.pty(&["release", "-a", "acme", "--lock-wait", "1s"]);
    yes.expect(question, Duration::from_secs(20));
    yes.send("y");
    assert_eq!(yes.wait(Duration::from_secs(30)).code(), Some(1), "{}", yes.screen());
    // dialoguer draws the question, then redraws it answered (✔ … · yes): one question asked.
    assert_eq!(yes.screen().matches(&format!("? {question}")).count(), 1, "asked once: {}", yes.screen());
    assert!(yes.screen().contains("Lock-wait budget 1s: cancelled"), "{}", yes.screen());
    assert_eq!(status_of(&s, v), "failed");
    assert!(!reader.is_finished());
}

/// The release succeeded but a formation dyno never comes up on it: exit 3, the dyno named.
#[test]
fn a_formation_that_never_comes_up_on_the_release_is_exit_3() {
    let s = setup();
    s.sim.with(|w| w.dyno_mut("acme", "web.2").never_up = true);
    push(&s, "echo '== nothing to migrate'");
    let out = s.tool.run(&["release", "-a", "acme", "--lock-wait", "off", "--restart-timeout", "2s"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(out.stdout_text().contains("web.2 NOT VERIFIED"), "{}", out.dump());
}

/// A release superseded while its release phase runs is said as what it is — "superseded by
/// vN", status expired, not failed — and exits 3: the release followed will never run.
#[test]
fn a_release_superseded_while_followed_is_said_as_superseded_not_failed() {
    let s = setup();
    let v = push(&s, "echo '== slow migration'; sleep 3");
    let mut c = s.tool.command(&["release", "-a", "acme", "--confirm", "acme", "--json"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let newer = s.sim.push("acme", "cafe5678", "hotfix", &[("web", "puma")]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["phase"]["result"], "superseded", "{doc}");
    assert_eq!(doc["phase"]["superseded_by"], newer, "{doc}");
    assert_eq!(status_of(&s, v), "expired");
    assert!(
        out.stderr_text().contains(&format!(
            "v{v} was superseded by v{newer} before its release phase ended (status expired, not failed)"
        )),
        "{}",
        out.dump()
    );
}

/// A release phase whose statement holds its lock while it scans: the follower cuts it once
/// the site's first query has waited the hold budget, the release fails, the app stays on its
/// release, and the ending says a retry as it is would hold as long again.
#[test]
fn a_release_statement_the_site_queues_behind_is_cut_at_the_hold_budget() {
    let s = setup();
    test_support::acme::slow_validation_table(&s.pg, 400).unwrap();
    let v = push(&s, &release_sql(&s.pg, test_support::acme::VALIDATING_SCAN));
    let mut child = s.tool.command(&["release", "-a", "acme", "--lock-wait", "1s", "--confirm", "acme", "--json"]);
    child.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = child.spawn().unwrap();
    let err = LiveOutput::start(child.stderr.take().unwrap());
    wait_until("the scan holds its lock", || test_support::acme::holds_events_exclusively(&s.pg, ""));
    let blocked_for =
        test_support::sessions::queue_behind(&s.pg.superuser_url("postgres"), 10, "SELECT count(*) FROM events");
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let stderr = err.finish();
    assert!(blocked_for < Duration::from_millis(1000 + 2500), "the site was blocked {blocked_for:?}: {stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let report: migrate_restart::report::ReleaseReport = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report.phase.lock_hold_ms, Some(1000));
    let e = &report.phase.enforcements[0];
    assert!(e.verified && e.for_holding(), "{e:?}");
    assert!(e.wait.why.contains("runs ALTER TABLE"), "{}", e.wait.why);
    assert!(stderr.contains("Hold budget 1s: cancelled the release's `ALTER TABLE events"), "{stderr}");
    assert!(stderr.contains("The hold budget cut its `ALTER TABLE events"), "{stderr}");
    assert!(stderr.contains("would hold the lock as long again"), "{stderr}");
    assert_eq!(status_of(&s, v), "failed");
    assert!(!test_support::acme::validated(&s.pg));
}
