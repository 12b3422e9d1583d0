//! `migrate-restart release -- git push heroku main`: the follower starts before the release
//! exists, picks it up while the real `git push` still streams, and exits with the release's
//! real outcome — 1 when the release phase failed though the push said 0.

use std::process::Stdio;
use std::time::{Duration, Instant};

use heroku_sim::Sim;
use serde_json::Value;
use test_support::app_repo::AppRepo;
use test_support::generation::Generation;
use test_support::sessions::{lock_waiters, long_report, spawn, wait_until, Running};
use test_support::tool::{LiveOutput, OutputExt, Tool};
use test_support::PgCluster;

struct Setup {
    pg: PgCluster,
    sim: Sim,
    tool: Tool,
}

fn setup() -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let sim = Sim::start(test_support::acme::acme_world(&pg, Generation::Cedar)).unwrap();
    let tool = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&sim.url(), &sim.token());
    Setup { pg, sim, tool }
}

fn procfile(pg: &PgCluster, sql: &str) -> String {
    format!("web: puma\nrelease: echo '== migrating'; {}\n", test_support::acme::psql_migration(pg, sql))
}

/// Runs the tool from the repository (the push is its COMMAND).
fn run_in(s: &Setup, repo: &AppRepo, args: &[&str]) -> std::process::Output {
    let mut c = s.tool.command(args);
    c.current_dir(repo.path()).env("GIT_CONFIG_NOSYSTEM", "1").env("HOME", repo.path());
    c.output().unwrap()
}

/// Incident 000 through a real push: the push would exit 0 on the failed release phase; the
/// wrapper cuts the ALTER at the budget and exits 1.
#[test]
fn a_guarded_push_of_incident_000_exits_1_and_the_site_is_blocked_no_longer_than_the_budget() {
    let s = setup();
    let reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let repo = AppRepo::new(
        &s.sim,
        "acme",
        Some(&procfile(&s.pg, "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text")),
    )
    .unwrap();
    let mut c = s.tool.command(&[
        "release",
        "-a",
        "acme",
        "--lock-wait",
        "1s",
        "--confirm",
        "acme",
        "--json",
        "--",
        "git",
        "push",
        "heroku",
        "main",
    ]);
    c.current_dir(repo.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let err = LiveOutput::start(child.stderr.take().unwrap());
    wait_until("the release's ALTER waits", || lock_waiters(&s.pg) == 1);
    let since = Instant::now();
    let url = s.pg.superuser_url("postgres");
    let queued: Vec<Running> =
        (0..20).map(|i| spawn(&url, &format!("web.{}", i % 2 + 1), "SELECT count(*) FROM users")).collect();
    for q in queued {
        q.finish().expect("a queued query runs once the ALTER is cut");
    }
    let blocked = since.elapsed();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let text = err.finish();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(blocked < Duration::from_millis(1000 + 1000), "blocked {blocked:?}: {text}");
    assert!(text.contains("remote: Waiting for release.... failed."), "the push's own output is relayed: {text}");
    assert!(text.contains("`git push heroku main` exited 0, but the release phase of v"), "{text}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["deploy"]["exit_status"], 0, "{doc}");
    assert_eq!(doc["deploy"]["command"], serde_json::json!(["git", "push", "heroku", "main"]));
    assert!(doc["deploy"]["seen_after_ms"].as_u64().is_some(), "{doc}");
    assert_eq!(doc["phase"]["result"], "failed", "{doc}");
    assert!(doc["phase"]["enforcements"].as_array().unwrap().iter().any(|e| e["verified"] == true), "{doc}");
    assert!(!reader.is_finished());
}

/// A clean push: 0, and every formation dyno runs the release.
#[test]
fn a_clean_push_exits_0_with_the_dynos_on_the_release() {
    let s = setup();
    let repo =
        AppRepo::new(&s.sim, "acme", Some(&procfile(&s.pg, "ALTER TABLE users ADD COLUMN nickname text"))).unwrap();
    let out = run_in(
        &s,
        &repo,
        &["release", "-a", "acme", "--confirm", "acme", "--json", "--", "git", "push", "heroku", "main"],
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    let v = doc["deploy"]["release_version"].as_u64().unwrap();
    assert_eq!(doc["phase"]["release"]["version"], v);
    assert_eq!(doc["formation"]["verified"], true, "{doc}");
    assert!(out.stderr_text().contains("remote: == migrating"), "{}", out.dump());
}

/// A push whose build has no release phase: 0, and said.
#[test]
fn a_push_without_a_release_phase_exits_0_and_says_so() {
    let s = setup();
    let repo = AppRepo::new(&s.sim, "acme", Some("web: puma\n")).unwrap();
    let out = run_in(&s, &repo, &["release", "-a", "acme", "--confirm", "acme", "--", "git", "push", "heroku", "main"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(
        out.stdout_text().contains("has no release phase (its Procfile has no release: line): it succeeded at once"),
        "{}",
        out.dump()
    );
}

/// A push that fails before any release: its own exit code, no release followed.
#[test]
fn a_push_that_fails_before_any_release_exits_with_its_own_code() {
    let s = setup();
    let repo = AppRepo::new(&s.sim, "acme", None).unwrap();
    let out = run_in(
        &s,
        &repo,
        &["release", "-a", "acme", "--confirm", "acme", "--json", "--", "git", "push", "heroku", "main"],
    );
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["result"], "no_release", "{doc}");
    assert_eq!(doc["deploy"]["exit_status"], 1);
    assert!(out.stderr_text().contains("failed (exit 1) and created no release of acme"), "{}", out.dump());
}

/// `--next` waits for a release made elsewhere; with none it times out with 3, said.
#[test]
fn next_follows_a_release_made_elsewhere_and_times_out_with_3() {
    let s = setup();
    let out = s.tool.run(&["release", "-a", "acme", "--next", "--next-timeout", "1s", "--confirm", "acme"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(out.stdout_text().contains("no new release of acme within 1s (--next-timeout)"), "{}", out.dump());
    assert!(
        out.stdout_text().contains("Will wait up to 1s for the next release of acme and follow it"),
        "{}",
        out.dump()
    );
    let mut c = s.tool.command(&["release", "-a", "acme", "--next", "--confirm", "acme", "--json"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let repo = AppRepo::new(&s.sim, "acme", Some(&procfile(&s.pg, "SELECT 1"))).unwrap();
    assert!(repo.command(&["push", "heroku", "main"]).output().unwrap().status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.json()["deploy"]["release_version"].as_u64().is_some());
}

/// Bad input: one line, exit 2, nothing run.
#[test]
fn no_command_after_the_dashes_or_one_that_cannot_start_is_a_usage_error() {
    let s = setup();
    let before = s.sim.with(|w| w.apps["acme"].releases.len());
    for (args, says) in [
        (vec!["release", "-a", "acme", "--confirm", "acme", "--"], "no COMMAND after `--`"),
        (
            vec!["release", "-a", "acme", "--confirm", "acme", "--", "/nonexistent/deploy"],
            "cannot start `/nonexistent/deploy`",
        ),
        (
            vec!["release", "v3", "-a", "acme", "--confirm", "acme", "--", "true"],
            "give a VERSION, --next or -- COMMAND, not several",
        ),
        (vec!["release", "-a", "acme", "--lock-wait", "-1s", "--confirm", "acme"], "`-1s` is negative"),
    ] {
        let out = s.tool.run(&args);
        assert_eq!(out.code(), 2, "{args:?}: {}", out.dump());
        assert!(out.stderr_text().contains(says), "{args:?}: {}", out.dump());
        assert_eq!(out.stderr_text().trim().lines().count(), 1, "{}", out.dump());
    }
    assert_eq!(s.sim.with(|w| w.apps["acme"].releases.len()), before);
}

/// The plan `migrate-restart plan --json` writes for the release's ALTER of `users`.
const USERS_PLAN: &str = r#"{"schema_version": 1, "database": "DATABASE_URL of acme", "scratch": "a copy",
  "command": ["sh"], "statements": [{"seq": 1, "tag": "ALTER TABLE", "object": "public.users",
  "query": "ALTER TABLE users ADD COLUMN nickname text", "transaction": 1,
  "locks": [{"relation": "public.users", "kind": "table", "mode": "AccessExclusiveLock", "new": true}],
  "rewrites": [], "waits_for_older_transactions": false}],
  "obstacles": [], "older_transactions": [], "activity": [], "cannot_vouch": [], "verdict": "clear"}"#;

/// `release --plan FILE -- git push heroku main`: while a report holds `users`, the push is
/// refused before it runs (5, nothing deployed, the report named); a reader of another table
/// is not in the plan's way, and the push goes ahead.
#[test]
fn with_a_plan_the_push_is_refused_while_a_session_is_in_its_way() {
    let s = setup();
    s.pg.psql("postgres", "CREATE TABLE audit (id int)").unwrap();
    let repo =
        AppRepo::new(&s.sim, "acme", Some(&procfile(&s.pg, "ALTER TABLE users ADD COLUMN nickname text"))).unwrap();
    let plan = repo.path().join("lock-plan.json");
    std::fs::write(&plan, test_support::acme::plan_made_for(&s.pg, "postgres", USERS_PLAN)).unwrap();
    let releases = |s: &Setup| s.sim.with(|w| w.apps["acme"].releases.len());
    let before = releases(&s);
    let reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let args = [
        "release",
        "-a",
        "acme",
        "--confirm",
        "acme",
        "--plan",
        "lock-plan.json",
        "--",
        "git",
        "push",
        "heroku",
        "main",
    ];
    let out = run_in(&s, &repo, &args);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(
        out.stderr_text().contains(&format!(
            "the release's migration would wait now: pid {} (reporting) holds AccessShareLock on public.users; nothing was deployed",
            reader.pid
        )),
        "{}",
        out.dump()
    );
    assert_eq!(releases(&s), before, "nothing was pushed");
    s.pg.psql("postgres", "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'reporting'")
        .unwrap();
    assert!(reader.finish().is_err(), "the report was cancelled");

    let _export = spawn(
        &s.pg.superuser_url("postgres"),
        "audit-export",
        "BEGIN; SELECT count(*) FROM audit; SELECT pg_sleep(120)",
    );
    let out = run_in(&s, &repo, &args);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("✓ the plan: nothing on DATABASE_URL of acme"), "{}", out.dump());
    assert_eq!(releases(&s), before + 1);
}
