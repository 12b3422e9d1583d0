//! migrate-guard on the paths where the outside tools run too: `migrate-restart`'s one-off
//! migration runs under the guard when the app's slug has it (so the budget holds after the
//! operator's machine goes away), and `migrate-restart release` recognises a release phase
//! guarded from inside. In both paths the outside watch then stays a second line (the one rule
//! of `migration_policy::lockwatch::second_line`): never two cancels of one statement, and still
//! a bound when the inside guard does not act.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use heroku_sim::Sim;
use test_support::generation::Generation;
use test_support::sessions::{lock_waiters, long_report, wait_until};
use test_support::tool::{OutputExt, Tool};
use test_support::PgCluster;

/// Where cargo put the binaries (scripts/test builds them all first).
fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| test_support::workspace_root().join("target"))
        .join("debug");
    let b = dir.join(name);
    assert!(b.is_file(), "{} missing: run `cargo build --bins` (scripts/test does)", b.display());
    b
}

struct Setup {
    pg: PgCluster,
    sim: Sim,
    tool: Tool,
    _dir: test_support::tempfile::TempDir,
}

/// acme on Cedar, built with the migrate-guard buildpack, DATABASE_URL a real PostgreSQL.
fn setup() -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let dir = test_support::tempfile::tempdir().unwrap();
    let mut w = test_support::acme::acme_world(&pg, Generation::Cedar);
    test_support::buildpack::install_migrate_guard(&bin("migrate-guard"), &mut w, Generation::Cedar, dir.path())
        .unwrap();
    let sim = Sim::start(w).unwrap();
    let tool = Tool::new(bin("migrate-restart")).api(&sim.url(), &sim.token());
    Setup { pg, sim, tool, _dir: dir }
}

fn alter(pg: &PgCluster) -> String {
    test_support::acme::psql_migration(pg, "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text")
}

/// The operator's machine goes away (SIGKILL to migrate-restart) while the one-off's ALTER
/// waits: the guard inside the dyno still cuts it at the budget.
#[test]
fn the_one_off_migration_runs_under_the_guard_and_its_budget_outlives_the_operator() {
    let s = setup();
    let _reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let cmd = alter(&s.pg);
    let mut child = s
        .tool
        .command(&["-a", "acme", "--command", &cmd, "--lock-wait", "2s", "--retries", "0", "--confirm", "acme"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the one-off's ALTER waits", || lock_waiters(&s.pg) == 1);
    let waiting_since = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the guard in the dyno cuts the ALTER", || lock_waiters(&s.pg) == 0);
    let blocked = waiting_since.elapsed();
    assert!(blocked < Duration::from_millis(2500 + 1000), "blocked {blocked:?} after the operator went away");
    // The guard said so in the dyno's output (the app's log).
    let log = || s.sim.with(|w| w.logs.of("acme").iter().map(|l| l.text.clone()).collect::<Vec<_>>().join("\n"));
    wait_until("the guard's summary reaches the log", || log().contains("migrate-guard: outcome="));
    let log = log();
    assert!(log.contains("migrate-guard: guarding `sh -c"), "{log}");
    assert!(log.contains("migrate-guard: outcome=lock_timeout attempts=1 cut=1"), "{log}");
}

/// Watched from the operator's terminal, the guard cuts first and the outside watch, a second
/// line, cancels nothing: one cancel for one statement.
#[test]
fn with_the_guard_in_the_slug_the_outside_watch_is_a_second_line_and_never_cancels_twice() {
    let s = setup();
    let _reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let cmd = alter(&s.pg);
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--lock-wait",
        "1s",
        "--retries",
        "1",
        "--confirm",
        "acme",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "the guard's lock timeout is retried by the policy here: {doc}");
    for a in attempts {
        assert_eq!(a["lock_timeout"], true, "{doc}");
        let outside_cuts = a["outside_budget"].as_array().unwrap().iter().filter(|e| e["sent"] == true).count();
        assert_eq!(outside_cuts, 0, "the outside watch never sent a cancel: {doc}");
    }
    let err = out.stderr_text();
    assert!(err.contains("the app's slug has migrate-guard: it guards this run from inside the dyno"), "{err}");
    assert!(
        err.contains("the watch here stays as a second line, cutting what still waits at 3.5s and what others have queued behind for 3s"),
        "{err}"
    );
    assert!(err.contains("migrate-guard: ✂ Lock-wait budget 1.5s"), "{err}");
}

/// `migrate-restart release` on a release phase guarded from inside: it says so, cancels
/// nothing itself, and reports the guard's summary.
#[test]
fn the_release_follower_steps_back_for_a_guard_inside_the_release_dyno() {
    let s = setup();
    let _reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let release = format!("migrate-guard --lock-wait 1s --retries 0 --max-xact-age 10m -- {}", alter(&s.pg));
    s.sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", &release)]);
    let out = s.tool.run(&["release", "-a", "acme", "--lock-wait", "1s", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report: migrate_restart_release::Report = serde_json::from_value(doc.clone()).unwrap();
    assert!(report.phase.enforcements.is_empty(), "the follower cancelled nothing: {doc}");
    let summary = report.phase.inside_guard.and_then(|g| g.summary).unwrap_or_default();
    assert_eq!(summary, "migrate-guard: outcome=lock_timeout attempts=1 cut=1 waited_ms=0 exit=1", "{doc}");
    assert!(out.stderr_text().contains("guarded from inside the release dyno by migrate-guard"), "{}", out.dump());
}

/// The JSON of `migrate-restart release`, as far as this suite reads it.
mod migrate_restart_release {
    #[derive(serde::Deserialize)]
    pub struct Report {
        pub phase: release_phase::ReleasePhaseReport,
    }
}

/// acme on Cedar without the buildpack: what runs in the dyno is only what the test says.
fn setup_without_the_buildpack() -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let dir = test_support::tempfile::tempdir().unwrap();
    let sim = Sim::start(test_support::acme::acme_world(&pg, Generation::Cedar)).unwrap();
    let tool = Tool::new(bin("migrate-restart")).api(&sim.url(), &sim.token());
    Setup { pg, sim, tool, _dir: dir }
}

/// What migrate-guard prints first, from a command that then guards nothing: an inside guard
/// that cannot act (its connection lost, an old version).
const SILENT_GUARD: &str = "echo \"migrate-guard: guarding \\`rake db:migrate\\` on release.7 (lock_timeout 1s via PGOPTIONS, cut from the guard's own connection at 1.5s; sessions named migrate-restart/release.7; up to 0 retries within 10m; deadline 55m)\"";

/// The one rule for "a guard inside the dyno was seen", in the release-phase path: the follower
/// stays a second line (the later of the two budgets, plus 2 s). When the inside guard does not
/// act, the follower still cuts the ALTER at 3.5s — disarming would have left the site waiting.
#[test]
fn the_release_follower_stays_a_second_line_when_the_inside_guard_does_not_act() {
    let s = setup_without_the_buildpack();
    let _reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let release = format!("{SILENT_GUARD}; {}", alter(&s.pg));
    s.sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", &release)]);
    let started = Instant::now();
    let out = s.tool.run(&["release", "-a", "acme", "--lock-wait", "1s", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report: migrate_restart_release::Report = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(report.phase.enforcements.len(), 1, "the second line cut the ALTER: {doc}");
    assert!(report.phase.enforcements[0].verified, "{doc}");
    assert!(
        out.stderr_text().contains(
            "this follower stays a second line, cutting what still waits at 3.5s and what others have queued behind for 3.5s"
        ),
        "{}",
        out.dump()
    );
    assert!(started.elapsed() < Duration::from_secs(60), "bounded");
    assert_eq!(lock_waiters(&s.pg), 0, "nothing left in the lock queue");
}

/// The same rule in the one-off path: the guard's line raises the outside budget to the later
/// of the two plus 2 s, and the outside watch cuts what the silent inside guard did not.
#[test]
fn the_one_off_watch_stays_a_second_line_when_the_inside_guard_does_not_act() {
    let s = setup_without_the_buildpack();
    let _reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let cmd = format!("{SILENT_GUARD}; {}", alter(&s.pg));
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &cmd,
        "--lock-wait",
        "1s",
        "--retries",
        "0",
        "--restart",
        "none",
        "--confirm",
        "acme",
        "--json",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cuts = doc["attempts"][0]["outside_budget"].as_array().unwrap();
    assert!(cuts.iter().any(|e| e["verified"] == true), "the second line cut it: {doc}");
    assert!(
        out.stderr_text().contains("the watch here stays as a second line, cutting what still waits at 3.5s"),
        "{}",
        out.dump()
    );
    assert_eq!(lock_waiters(&s.pg), 0);
}
