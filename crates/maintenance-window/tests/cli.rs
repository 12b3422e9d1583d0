//! maintenance-window against heroku-sim, with a real git repository deciding, and the real
//! Heroku CLI as the COMMAND that looks at the app from inside the window.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use heroku_sim::{FaultKind, Sim, World};
use serde_json::Value;
use test_support::generation::Generation;
use test_support::on_both_generations;
use test_support::sessions::wait_until;
use test_support::tool::{OutputExt, Tool};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Rails-shaped repository: `deployed` (the running slug), `code_only` (no schema change),
/// `migration` (adds db/migrate/…).
struct Repo {
    dir: PathBuf,
    deployed: String,
    code_only: String,
    migration: String,
}

fn repo(home: &Path) -> Repo {
    let dir = home.join("repo");
    std::fs::create_dir_all(dir.join("db/migrate")).unwrap();
    std::fs::create_dir_all(dir.join("app/models")).unwrap();
    git(&dir, &["init", "-q"]);
    std::fs::write(dir.join("Gemfile"), "source 'https://rubygems.org'\n").unwrap();
    std::fs::write(dir.join("db/migrate/20260101_create_users.rb"), "class CreateUsers; end\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "deployed"]);
    let deployed = git(&dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("app/models/user.rb"), "class User; end\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "code only"]);
    let code_only = git(&dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("db/migrate/20261122_add_nickname.rb"), "class AddNickname; end\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "migration"]);
    let migration = git(&dir, &["rev-parse", "HEAD"]);
    Repo { dir, deployed, code_only, migration }
}

struct Setup {
    sim: Sim,
    tool: Tool,
    repo: Repo,
}

fn setup() -> Setup {
    setup_on(Generation::Cedar)
}

/// acme (web×2, worker×3, clock×1) running `deployed` on generation `g`; acme-staging (same
/// generation) running `migration`.
fn setup_on(g: Generation) -> Setup {
    setup_with(g, |_| {})
}

/// [`setup_on`], with a change to the world before it starts.
fn setup_with(g: Generation, tweak: impl FnOnce(&mut World)) -> Setup {
    let tool = Tool::new(env!("CARGO_BIN_EXE_maintenance-window"));
    let repo = repo(tool.home());
    let mut w = World::default();
    w.add_app("acme");
    g.apply(&mut w, "acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
    w.add_formation("acme", "worker", 3, "sidekiq", Duration::from_secs(3600));
    w.add_formation("acme", "clock", 1, "clockwork", Duration::from_secs(3600));
    w.add_release("acme", &repo.deployed, "Deploy deployed", Duration::from_secs(3600));
    w.add_app("acme-staging");
    g.apply(&mut w, "acme-staging");
    w.add_release("acme-staging", &repo.migration, "Deploy migration", Duration::from_secs(600));
    w.timing.stop_delay = Duration::from_millis(100);
    w.timing.start_delay = Duration::from_millis(100);
    tweak(&mut w);
    let sim = Sim::start(w).unwrap();
    let tool = tool.api(&sim.url(), &sim.token());
    Setup { sim, tool, repo }
}

fn quantities(sim: &Sim) -> Vec<(String, u32)> {
    sim.with(|w| w.apps["acme"].formation.iter().map(|f| (f.process_type.clone(), f.quantity)).collect())
}

fn maintenance(sim: &Sim) -> bool {
    sim.with(|w| w.apps["acme"].maintenance)
}

fn heroku() -> String {
    test_support::heroku_cli::heroku_bin().unwrap().display().to_string()
}

/// COMMAND: the real Heroku CLI asks the sim what it sees from inside the window.
fn look_inside() -> String {
    format!("{h} maintenance -a acme && {h} ps -a acme", h = heroku())
}

#[test]
fn no_schema_change_runs_the_command_without_maintenance() {
    let s = setup();
    let out = s.tool.run_in(
        &s.repo.dir,
        &["-a", "acme", "--target", &s.repo.code_only, "--confirm", "acme", "--", "sh", "-c", &look_inside()],
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    assert!(
        text.contains("No window needed for acme: nothing changed under db/migrate db/schema.rb db/structure.sql"),
        "{text}"
    );
    assert!(text.contains("without maintenance"), "{text}");
    assert!(text.lines().any(|l| l.trim() == "off"), "the CLI saw maintenance off: {text}");
    assert!(!s.sim.requests().iter().any(|r| r.method == "PATCH"), "nothing changed");
}

#[test]
fn a_migration_opens_the_window_drains_workers_and_restores_exactly() {
    let s = setup();
    let out =
        s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--json", "--", "sh", "-c", &look_inside()]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    // Under --json, stdout is the one document; COMMAND's output is relayed to stderr.
    let inside = out.stderr_text();
    assert!(inside.lines().any(|l| l.trim() == "on"), "COMMAND saw maintenance on: {inside}");
    assert!(!inside.contains("worker.") && !inside.contains("clock."), "workers were drained before COMMAND: {inside}");
    assert!(inside.contains("web.1"), "{inside}");
    let doc = out.json();
    let _: maintenance_window::report::WindowReport = serde_json::from_value(doc.clone()).expect("a WindowReport");
    assert_eq!(doc["result"], "closed");
    assert_eq!(doc["decision"]["files"], serde_json::json!(["db/migrate/20261122_add_nickname.rb"]));
    assert!(doc["timings"]["window_ms"].as_u64().unwrap() >= doc["timings"]["command_ms"].as_u64().unwrap());
    assert!(doc["timings"]["api_calls_in_window"].as_u64().unwrap() >= 3);
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
    let patches: Vec<_> =
        s.sim.requests().into_iter().filter(|r| r.method == "PATCH" && r.path == "/apps/acme/formation").collect();
    assert_eq!(patches.len(), 2, "one batch update down, one back");
    assert!(out.stderr_text().contains("✓ window closed: the site was in maintenance for"), "{}", out.dump());
    let out = s.tool.run_in(&s.repo.dir, &["status", "-a", "acme"]);
    assert!(out.stdout_text().contains("No open maintenance window"), "journal removed: {}", out.dump());
}

#[test]
fn without_a_schema_change_the_promotion_happens_with_the_site_up() {
    let s = setup();
    let staging_slug = s.sim.with(|w| w.apps["acme-staging"].slugs.last().unwrap().id.clone());
    let out = s.tool.run_in(
        &s.repo.dir,
        &[
            "-a",
            "acme",
            "--target",
            &s.repo.code_only,
            "--promote-from",
            "acme-staging",
            "--confirm",
            "acme",
            "--",
            "true",
        ],
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("without maintenance"), "{}", out.dump());
    assert!(!s.sim.requests().iter().any(|r| r.method == "PATCH"), "no maintenance, no scaling");
    assert_eq!(s.sim.with(|w| w.apps["acme"].current_release().unwrap().slug_id.clone().unwrap()), staging_slug);
}

#[test]
fn promote_from_releases_the_source_slug_inside_the_window() {
    let s = setup();
    let staging_slug = s.sim.with(|w| w.apps["acme-staging"].slugs.last().unwrap().id.clone());
    let out = s
        .tool
        .run_in(&s.repo.dir, &["-a", "acme", "--promote-from", "acme-staging", "--confirm", "acme", "--", "true"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let log = s.sim.requests();
    let pos = |pred: &dyn Fn(&heroku_sim::LoggedRequest) -> bool| log.iter().position(pred).unwrap();
    let on = pos(&|r| {
        r.method == "PATCH" && r.path == "/apps/acme" && r.body.as_ref().is_some_and(|b| b["maintenance"] == true)
    });
    let release = pos(&|r| r.method == "POST" && r.path == "/apps/acme/releases");
    let off = pos(&|r| {
        r.method == "PATCH" && r.path == "/apps/acme" && r.body.as_ref().is_some_and(|b| b["maintenance"] == false)
    });
    assert!(on < release && release < off, "the release is made inside the window");
    let release_lists = log.iter().filter(|r| r.method == "GET" && r.path == "/apps/acme/releases").count();
    assert_eq!(release_lists, 1, "the app's current release is read once");
    assert_eq!(log[release].body.as_ref().unwrap()["slug"], staging_slug);
    let current_slug = s.sim.with(|w| w.apps["acme"].current_release().unwrap().slug_id.clone().unwrap());
    assert_eq!(current_slug, staging_slug);
}

/// A window that closes, in its whole human output: the decision, the plan, each step, the
/// time the site was down.
#[test]
fn a_closed_window_reads_whole() {
    let s = setup();
    let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--", "true"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(!maintenance(&s.sim));
    let home = s.tool.home().display().to_string();
    test_support::assert_whole!("window-closed.stdout", out.stdout_text().replace(&home, "[home]"));
    test_support::assert_whole!("window-closed.stderr", out.stderr_text().replace(&home, "[home]"));
}

#[test]
fn a_failing_command_holds_the_window_until_restore_which_is_safe_twice() {
    let s = setup();
    let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code(), 7, "COMMAND's status: {}", out.dump());
    let text = out.stdout_text();
    // The echoed COMMAND is quoted for the shell: pasted, it runs the same argv.
    assert!(text.contains("run `sh -c 'exit 7'`") && text.contains("`sh -c 'exit 7'` exited with status 7"), "{text}");
    assert!(text.contains("worker scaled 3→0") && text.contains("clock scaled 1→0"), "{text}");
    assert!(text.contains("Reopen with: maintenance-window restore -a acme"), "{text}");
    assert!(maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 0), ("clock".into(), 0)]);
    test_support::assert_whole!("window-held.stdout", text.replace(&s.tool.home().display().to_string(), "[home]"));

    let out = s.tool.run_in(&s.repo.dir, &["status", "-a", "acme"]);
    assert_eq!(out.code(), 7, "{}", out.dump());
    test_support::assert_whole!(
        "status-journaled.stdout",
        out.stdout_text().replace(&s.tool.home().display().to_string(), "[home]")
    );
    let out = s.tool.run_in(&s.repo.dir, &["restore", "-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    test_support::assert_whole!("window-restored.stdout", out.stdout_text());
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
    let out = s.tool.run_in(&s.repo.dir, &["restore", "-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    test_support::assert_whole!("window-nothing-to-restore.stdout", out.stdout_text());

    // --on-failure restore reopens at once and still returns COMMAND's status.
    let out = s.tool.run_in(
        &s.repo.dir,
        &["-a", "acme", "--confirm", "acme", "--on-failure", "restore", "--", "sh", "-c", "exit 3"],
    );
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim)[1], ("worker".into(), 3));
    test_support::assert_whole!("window-restored-after-failure.stdout", out.stdout_text());
    // A command that cannot start is found before the window opens: 2, nothing changed.
    let patches = s.sim.requests().iter().filter(|r| r.method != "GET").count();
    let out = s
        .tool
        .run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--on-failure", "restore", "--", "/no/such/command"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert_eq!(s.sim.requests().iter().filter(|r| r.method != "GET").count(), patches, "nothing changed");
    assert!(!maintenance(&s.sim));
}

/// A COMMAND that exists and has its execute bit but that exec would refuse — a `#!` line
/// naming a missing interpreter, `env` of a program not on PATH, a program for another
/// machine, text with no `#!` — is found before the site goes down: 2, nothing changed. One
/// that can only fail once started (here: gone between the check and the start) closes the
/// window at once, everything put back, also 2.
#[test]
fn a_command_exec_would_refuse_is_found_before_the_site_goes_down() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup_with(Generation::Cedar, |w| w.timing.stop_delay = Duration::from_millis(1500));
    let script = |name: &str, bytes: &[u8]| {
        let p = s.repo.dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!("./{name}")
    };
    let mut foreign = b"\x7fELF\x02\x01\x01".to_vec();
    foreign.resize(64, 0);
    foreign[18] = 0x16; // s390
    let cases = [
        (script("deploy.sh", b"#!/nonexistent/interp\necho deploying\n"), "/nonexistent/interp"),
        (script("deploy-env.sh", b"#!/usr/bin/env no-such-interp-here\n"), "`env no-such-interp-here`"),
        (script("deploy-bin", &foreign), "a program for another machine"),
        (script("deploy-text", b"echo deploying\n"), "no #! line"),
    ];
    for (command, why) in &cases {
        let out =
            s.tool.run_in(&s.repo.dir, &["-a", "acme", "--base", &s.repo.deployed, "--confirm", "acme", "--", command]);
        assert_eq!(out.code(), 2, "{}", out.dump());
        assert!(out.stderr_text().contains(why), "{}", out.dump());
        assert!(out.stderr_text().contains("nothing was changed"), "{}", out.dump());
        assert!(!s.sim.requests().iter().any(|r| r.method != "GET"), "nothing changed: {}", out.dump());
    }

    let command = script("deploy-gone.sh", b"#!/bin/sh\necho deploying\n");
    let mut child = s
        .tool
        .command(&[
            "-a",
            "acme",
            "--base",
            &s.repo.deployed,
            "--confirm",
            "acme",
            "--on-failure",
            "hold",
            "--",
            &command,
        ])
        .current_dir(&s.repo.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the window opens", || maintenance(&s.sim));
    std::fs::remove_file(s.repo.dir.join("deploy-gone.sh")).unwrap();
    let status = child.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("could not start, so nothing was deployed: window closed at once"), "{text}");
    assert!(!maintenance(&s.sim), "maintenance is off again");
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
}

/// `maintenance-window … | head -1`: the reader goes away while COMMAND still prints. COMMAND
/// is not killed by the closed pipe (its output is relayed), the window closes, and the exit
/// code is COMMAND's own status (here 3), not the 0 of a process that ended at the pipe.
#[test]
fn a_closed_stdout_does_not_end_the_window_early_or_hide_the_commands_status() {
    let s = setup();
    let script = "for i in 1 2 3 4; do echo step$i; sleep 0.3; done; exit 3";
    let mut command =
        s.tool.command(&["-a", "acme", "--confirm", "acme", "--on-failure", "restore", "--", "sh", "-c", script]);
    command.current_dir(&s.repo.dir);
    let run = test_support::tool::run_closing_stdout_after_first_line(command);
    assert_eq!(run.code(), 3, "COMMAND's status; first line {:?}; stderr:\n{}", run.first_line, run.stderr);
    assert!(run.stderr.contains("step4"), "COMMAND ran to its end:\n{}", run.stderr);
    assert!(run.stderr.contains("window restored after failure"), "{}", run.stderr);
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
}

/// Under --json stdout holds exactly one document, even when COMMAND prints.
#[test]
fn under_json_the_commands_output_stays_off_stdout() {
    let s = setup();
    let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--json", "--", "echo", "hello"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.json()["result"], "closed");
    assert!(out.stderr_text().lines().any(|l| l == "hello"), "{}", out.dump());
}

#[test]
fn killed_mid_window_the_journal_shows_and_restores_it() {
    let s = setup();
    use std::os::unix::process::CommandExt;
    let mut child = s
        .tool
        .command(&["-a", "acme", "--confirm", "acme", "--", "sleep", "30"])
        .current_dir(&s.repo.dir)
        .process_group(0)
        .spawn()
        .unwrap();
    wait_until("the window is open and drained", || {
        maintenance(&s.sim) && !s.sim.dyno_names("acme").iter().any(|n| n.starts_with("worker."))
    });
    child.kill().unwrap(); // SIGKILL to the tool alone: no clean-up of any kind
    child.wait().unwrap();
    // The orphaned COMMAND is not what this test is about; end it.
    // SAFETY: signalling the process group we created.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let out = s.tool.run_in(&s.repo.dir, &["status", "-a", "acme", "--json"]);
    assert_eq!(out.code(), 7, "an open window: {}", out.dump());
    let doc = out.json();
    assert_eq!(doc["open"], true);
    assert_eq!(doc["opened_elsewhere"], false);
    assert_eq!(doc["live"]["maintenance"], true);
    assert_eq!(doc["journal"]["maintenance_before"], false);
    assert_eq!(
        doc["journal"]["scaled"],
        serde_json::json!([{ "type": "clock", "quantity_before": 1 }, { "type": "worker", "quantity_before": 3 }])
    );
    assert!(out.stderr_text().contains("is gone"), "{}", out.dump());
    let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--", "true"]);
    assert_eq!(out.code(), 5, "a second window is refused while one is open: {}", out.dump());
    let out = s.tool.run_in(&s.repo.dir, &["restore", "-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
    let out = s.tool.run_in(&s.repo.dir, &["restore", "-a", "acme"]);
    assert!(out.stdout_text().contains("nothing to restore"), "{}", out.dump());
}

/// A window opened on one machine (a CI runner that died) is seen, refused over and restored
/// from another, where its journal is not: `status` reads the live state, a new window refuses
/// to journal "0 workers" as the state to go back to, and the restore command the window
/// printed carries the values.
#[test]
fn a_window_opened_elsewhere_is_seen_refused_over_and_restored_from_its_printed_command() {
    let s = setup();
    let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--json", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code(), 7, "held: {}", out.dump());
    let printed = "maintenance-window restore -a acme --maintenance off --scale clock=1,worker=3 --confirm acme";
    assert_eq!(out.json()["restore_command"], printed);
    assert!(
        out.stderr_text().contains(&format!("put everything back from any machine with:\n  {printed}")),
        "{}",
        out.dump()
    );

    let other = Tool::new(env!("CARGO_BIN_EXE_maintenance-window")).api(&s.sim.url(), &s.sim.token());
    let out = other.run(&["status", "-a", "acme"]);
    assert_eq!(out.code(), 7, "{}", out.dump());
    test_support::assert_whole!("status-opened-elsewhere.stdout", out.stdout_text());
    let out = other.run(&["status", "-a", "acme", "--json"]);
    assert_eq!(
        (out.json()["open"].clone(), out.json()["opened_elsewhere"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );

    let patches = |sim: &Sim| sim.requests().iter().filter(|r| r.method == "PATCH").count();
    let before = patches(&s.sim);
    let out = other.run(&["restore", "-a", "acme"]);
    assert_eq!(out.code(), 5, "no journal and no values: refused: {}", out.dump());
    assert!(out.stderr_text().contains("--maintenance off --scale TYPE=N"), "{}", out.dump());
    let out = other.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--", "true"]);
    assert_eq!(out.code(), 5, "a new window over it is refused: {}", out.dump());
    assert!(out.stderr_text().contains("Restore it first"), "{}", out.dump());
    let out = other.run(&["restore", "-a", "acme", "--maintenance", "off", "--scale", "clock=1,worker=3"]);
    assert_eq!(out.code(), 5, "values from elsewhere need --confirm without a terminal: {}", out.dump());
    let out = other.run(&["restore", "-a", "acme", "--maintenance", "off", "--scale", "nope=1", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    // More than the platform runs is no quantity from before a window: refused, nothing changed.
    let out =
        other.run(&["restore", "-a", "acme", "--maintenance", "off", "--scale", "worker=99999", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("--scale worker=99999: more than the platform runs"), "{}", out.dump());
    let out = other.run(&[
        "restore",
        "-a",
        "acme",
        "--maintenance",
        "off",
        "--scale",
        "clock=60,worker=60",
        "--confirm",
        "acme",
    ]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("dynos in all, more than the platform runs for one app"), "{}", out.dump());
    assert_eq!(patches(&s.sim), before, "nothing changed");
    assert!(maintenance(&s.sim));

    let args: Vec<&str> = printed.split(' ').skip(1).collect();
    let out = other.run(&args);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("✓ restored acme: maintenance off, clock=1, worker=3"), "{}", out.dump());
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
    let out = other.run(&["status", "-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    test_support::assert_whole!("status-closed.stdout", out.stdout_text());
}

#[test]
fn restoring_values_from_elsewhere_asks_on_a_terminal() {
    let s = setup();
    s.sim.with(|w| w.apps.get_mut("acme").unwrap().maintenance = true);
    let mut no = s.tool.pty(&["restore", "-a", "acme", "--maintenance", "off"]);
    no.expect("Put back maintenance off on acme?", Duration::from_secs(20));
    no.send("\r");
    assert_eq!(no.wait(Duration::from_secs(20)).code(), Some(5), "{}", no.screen());
    assert!(maintenance(&s.sim), "No changes nothing");
    let mut yes = s.tool.pty(&["restore", "-a", "acme", "--maintenance", "off"]);
    yes.expect("Put back maintenance off on acme?", Duration::from_secs(20));
    yes.send("y");
    assert_eq!(yes.wait(Duration::from_secs(20)).code(), Some(0), "{}", yes.screen());
    assert!(!maintenance(&s.sim));
}

#[test]
fn errors_while_closing_are_retried_and_nothing_is_lost() {
    let s = setup();
    let mut child = s
        .tool
        .command(&["-a", "acme", "--confirm", "acme", "--", "sleep", "1"])
        .current_dir(&s.repo.dir)
        .spawn()
        .unwrap();
    // Open means maintenance on *and* the workers scaled down: faults added earlier would hit
    // the opening's own formation update (a loaded machine showed it).
    wait_until("the window is open", || {
        maintenance(&s.sim) && quantities(&s.sim).iter().all(|(t, q)| t == "web" || *q == 0)
    });
    s.sim.add_fault(FaultKind::ServiceUnavailable, Some("PATCH"), Some("/formation"), 2);
    s.sim.add_fault(FaultKind::RateLimited(0), Some("PATCH"), Some("/apps/acme"), 1);
    s.sim.add_fault(FaultKind::Reset, Some("PATCH"), Some("/apps/acme"), 1);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!maintenance(&s.sim));
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
    let statuses: Vec<u16> = s.sim.requests().iter().filter(|r| r.method == "PATCH").map(|r| r.status).collect();
    assert!(statuses.contains(&503) && statuses.contains(&429), "{statuses:?}");
}

#[test]
fn plan_says_why_and_bad_input_changes_nothing() {
    let s = setup();
    let out = s.tool.run_in(&s.repo.dir, &["plan", "-a", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["schema_version"], 1);
    let doc = &doc["decision"];
    assert_eq!(doc["needed"], true);
    assert_eq!(doc["kind"], "rails");
    assert_eq!(doc["base"], s.repo.deployed.as_str());
    assert!(doc["base_source"].as_str().unwrap().starts_with("the slug of acme's current release v2"));
    let out = s
        .tool
        .run_in(&s.repo.dir, &["plan", "-a", "acme", "--target", &s.repo.code_only, "--if-changed", "app/models"]);
    assert!(
        out.stdout_text().contains("A window is needed for acme: 1 file changed under app/models"),
        "{}",
        out.dump()
    );
    // Globs, `**` and `:(glob)` magic are matched as `git diff` matches them (the help's own
    // example and the tool's own default included), not refused as "matches no file".
    for spec in ["*.rb", "**/migrate/**", ":(glob)**/migrate/**", "db/migrate/*.rb"] {
        let out = s.tool.run_in(&s.repo.dir, &["plan", "-a", "acme", "--if-changed", spec]);
        assert_eq!(out.code(), 0, "{spec}: {}", out.dump());
        assert!(out.stdout_text().contains("A window is needed for acme:"), "{spec}: {}", out.dump());
    }

    let journal_dir = s.tool.home().join(".local/state/heroku-deploy-safety/maintenance-window");
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["-a", "acme", "--confirm", "acme", "--scale-down", "worker,sidekiq", "--", "true"],
            2,
            "--scale-down: unknown process type `sidekiq`".into(),
        ),
        (
            vec!["-a", "acme", "--confirm", "acme", "--promote-from", "nope-app", "--", "true"],
            2,
            "--promote-from nope-app: no such app".into(),
        ),
        (
            vec!["-a", "acme", "--confirm", "acme", "--base", "0123456789abcdef0123456789abcdef01234567", "--", "true"],
            2,
            "is not in this repository: run `git fetch`".into(),
        ),
        (vec!["-a", "acme", "--confirm", "acme"], 2, "give the deploy step to run after --".into()),
        // A pathspec that names nothing is a typo, not "no window needed".
        (
            vec!["-a", "acme", "--confirm", "acme", "--if-changed", "db/migrat", "--", "true"],
            2,
            "--if-changed db/migrat: matches no file in".into(),
        ),
        (
            vec!["-a", "acme", "--confirm", "acme", "--if-changed", ":(glob)[", "--", "true"],
            2,
            "--if-changed :(glob)[: ".into(),
        ),
        (
            vec!["-a", "acme", "--confirm", "acme", "--base", "HEAD:Gemfile", "--", "true"],
            2,
            "is a blob, not a commit".into(),
        ),
        (vec!["-a", "acme", "--", "true"], 5, "--confirm acme".into()),
        (
            vec!["restore", "-a", "acme", "--maintenance", "off", "--scale", "worker=99999", "--confirm", "acme"],
            2,
            "more than the platform runs".into(),
        ),
    ];
    // Every refusal whole, in one document (tests/snapshots/refusals.snap).
    let mut refusals = test_support::snapshot::Transcript::new();
    for (args, code, needle) in &cases {
        let out = s.tool.run_in(&s.repo.dir, args);
        assert_eq!(out.code(), *code, "{args:?}: {}", out.dump());
        assert!(out.stderr_text().contains(needle.as_str()), "{args:?}: {}", out.dump());
        refusals.record("maintenance-window", args, &out);
    }
    // Not a git repository.
    let args = ["-a", "acme", "--confirm", "acme", "--", "true"];
    let out = s.tool.run_in(s.tool.home(), &args);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("is not a git repository"), "{}", out.dump());
    refusals.record("maintenance-window (outside a repository)", &args, &out);
    assert!(!s.sim.requests().iter().any(|r| r.method == "PATCH" || r.method == "POST"), "nothing changed on the app");

    // A corrupt journal and one from another version are refused, naming the file.
    std::fs::create_dir_all(&journal_dir).unwrap();
    std::fs::write(journal_dir.join("acme.json"), "{ not json").unwrap();
    let out = s.tool.run_in(&s.repo.dir, &["restore", "-a", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("acme.json is corrupt"), "{}", out.dump());
    std::fs::write(journal_dir.join("acme.json"), "{\"version\": 9, \"app\": \"acme\"}").unwrap();
    let out = s.tool.run_in(&s.repo.dir, &["status", "-a", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("incompatible version (format 9"), "{}", out.dump());
    refusals.record("maintenance-window (a journal of another version)", &["status", "-a", "acme"], &out);
    assert!(!s.sim.requests().iter().any(|r| r.method == "PATCH"));
    let home = s.tool.home().display().to_string();
    let repo = s.repo.dir.display().to_string();
    test_support::assert_whole!("refusals", refusals.text().replace(&repo, "[repo]").replace(&home, "[home]"));
}

#[test]
fn django_and_unknown_repositories() {
    let s = setup();
    let dir = s.tool.home().join("dj");
    std::fs::create_dir_all(dir.join("billing/migrations")).unwrap();
    git(&dir, &["init", "-q"]);
    std::fs::write(dir.join("manage.py"), "").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "base"]);
    let base = git(&dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("billing/migrations/0007_drop.py"), "").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "migration"]);
    let out = s.tool.run_in(&dir, &["plan", "-a", "acme", "--base", &base]);
    assert!(out.stdout_text().contains("1 file changed under ':(glob)**/migrations/**'"), "{}", out.dump());
    std::fs::remove_file(dir.join("manage.py")).unwrap();
    let out = s.tool.run_in(&dir, &["plan", "-a", "acme", "--base", &base]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("pass --if-changed PATHSPEC"), "{}", out.dump());
}

#[test]
fn sigterm_is_forwarded_to_the_command_and_its_failure_holds_the_window() {
    let s = setup();
    let ready = s.tool.home().join("trap-ready");
    let script =
        format!("trap 'echo got-term; kill $! 2>/dev/null; exit 9' TERM; touch {}; sleep 30 & wait", ready.display());
    let mut child = s
        .tool
        .command(&["-a", "acme", "--confirm", "acme", "--", "sh", "-c", &script])
        .current_dir(&s.repo.dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the window is open and drained", || {
        maintenance(&s.sim) && !s.sim.dyno_names("acme").iter().any(|n| n.starts_with("worker."))
    });
    wait_until("the shell's trap is installed", || ready.exists());
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert_eq!(status.code(), Some(9), "{text}");
    assert!(text.contains("got-term"), "the command received the SIGTERM: {text}");
    assert!(text.contains("Reopen with: maintenance-window restore -a acme"), "{text}");
    assert!(maintenance(&s.sim), "held");
    let out = s.tool.run_in(&s.repo.dir, &["restore", "-a", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
}

#[test]
fn a_second_interrupt_stops_waiting_for_the_command_and_holds_the_window() {
    use std::os::unix::process::CommandExt;
    let s = setup();
    let ready = s.tool.home().join("stubborn-ready");
    // A COMMAND that ignores SIGTERM: the first interrupt is forwarded and does nothing.
    let script = format!("trap '' TERM; touch {}; sleep 30", ready.display());
    let mut child = s
        .tool
        .command(&["-a", "acme", "--confirm", "acme", "--", "sh", "-c", &script])
        .current_dir(&s.repo.dir)
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_until("the command runs", || ready.exists());
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(500)); // a separate interrupt, not the same keypress
                                                    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().unwrap();
    // SAFETY: end the stubborn COMMAND left in the group (it holds the output pipe open).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        text.contains("Reopen with: maintenance-window restore -a acme"),
        "the window is held, not silently closed: {text}"
    );
    assert!(maintenance(&s.sim));
}

#[test]
fn a_sigint_sent_to_the_tool_alone_is_forwarded_to_the_command() {
    let s = setup();
    let ready = s.tool.home().join("int-ready");
    let script =
        format!("trap 'echo got-int; kill $! 2>/dev/null; exit 8' INT; touch {}; sleep 30 & wait", ready.display());
    let mut child = s
        .tool
        .command(&["-a", "acme", "--confirm", "acme", "--on-failure", "restore", "--", "sh", "-c", &script])
        .current_dir(&s.repo.dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the command's trap is installed", || ready.exists());
    // SAFETY: signalling our own child (kill(2): only the tool receives it).
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert!(text.contains("got-int"), "the command received the SIGINT: {text}");
    assert_eq!(status.code(), Some(8), "{text}");
    assert!(!maintenance(&s.sim), "--on-failure restore reopened");
}

/// Gives acme-staging's slug a release phase: promoting it runs `command` as acme's release phase.
fn staging_release_phase(s: &Setup, command: &str) {
    s.sim.with(|w| {
        let slug = w.apps.get_mut("acme-staging").unwrap().slugs.last_mut().unwrap();
        slug.process_types.insert("release".into(), command.into());
    });
}

/// The promotion starts acme's release phase: the window waits for it and runs COMMAND only
/// after it succeeded; the report carries the release phase and its time.
#[test]
fn the_window_waits_for_the_promotions_release_phase_before_the_command() {
    let s = setup();
    let marker = s.tool.home().join("release-phase-ran");
    s.sim.with(|w| w.set_config_var("acme", "MARKER", marker.to_str().unwrap()));
    staging_release_phase(&s, "echo '== migrating'; sleep 0.5; touch \"$MARKER\"; echo '== migrated'");
    let check = format!("test -f {}", marker.display());
    let out = s.tool.run_in(
        &s.repo.dir,
        &["-a", "acme", "--promote-from", "acme-staging", "--confirm", "acme", "--json", "--", "sh", "-c", &check],
    );
    assert_eq!(out.code(), 0, "COMMAND ran after the release phase: {}", out.dump());
    let doc = out.json();
    let report: maintenance_window::report::WindowReport = serde_json::from_value(doc.clone()).unwrap();
    let phase = report.release_phase.expect("the release phase is reported");
    assert_eq!(phase.result, release_phase::PhaseResult::Succeeded);
    assert_eq!(phase.output_tail, ["== migrating", "== migrated"]);
    let t = report.timings.unwrap();
    assert!(t.release_phase_ms >= 500, "{t:?}");
    assert!(report
        .journal
        .unwrap()
        .steps
        .iter()
        .any(|s| s.starts_with("release phase of v") && s.ends_with("succeeded")));
    assert!(
        out.stderr_text().contains("The release starts acme's release phase: COMMAND runs only after it succeeded"),
        "{}",
        out.dump()
    );
    assert!(!maintenance(&s.sim));
}

/// A failed release phase holds the window: COMMAND does not run, nothing is scaled back up
/// behind the failed release, and the app stays on its previous release.
#[test]
fn a_failed_release_phase_holds_the_window_and_the_command_never_runs() {
    let s = setup();
    staging_release_phase(&s, "echo 'PG::UndefinedTable: relation \"users\" does not exist' >&2; exit 1");
    let ran = s.tool.home().join("command-ran");
    let touch = format!("touch {}", ran.display());
    let before = s.sim.with(|w| w.apps["acme"].current_version());
    let out = s.tool.run_in(
        &s.repo.dir,
        &["-a", "acme", "--promote-from", "acme-staging", "--confirm", "acme", "--json", "--", "sh", "-c", &touch],
    );
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(!ran.exists(), "COMMAND must not run after a failed release phase");
    let doc = out.json();
    assert_eq!(doc["result"], "held");
    assert_eq!(doc["release_phase"]["result"], "failed");
    assert!(out.stderr_text().contains("nothing is scaled back up behind it"), "{}", out.dump());
    assert!(out.stderr_text().contains("PG::UndefinedTable"), "its last lines are shown: {}", out.dump());
    assert!(maintenance(&s.sim));
    assert_eq!(
        quantities(&s.sim),
        vec![("web".into(), 2), ("worker".into(), 0), ("clock".into(), 0), ("release".into(), 0)]
    );
    assert_eq!(s.sim.with(|w| w.apps["acme"].current_version()), before, "acme stays on its release");
}

/// The promotion's release phase is guarded like `migrate-restart release`: its ALTER waiting
/// behind a long report is cancelled at the budget, and the window holds.
#[test]
fn the_promotions_release_phase_is_under_the_lock_wait_budget() {
    let s = setup();
    let pg = test_support::PgCluster::start().unwrap();
    pg.psql("postgres", "CREATE TABLE users AS SELECT g AS id FROM generate_series(1, 100) g").unwrap();
    s.sim.with(|w| w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres")));
    let reader = test_support::sessions::long_report(&pg, &pg.superuser_url("postgres"), 60);
    let alter = test_support::acme::psql_migration(&pg, "ALTER TABLE users ADD COLUMN nickname text");
    staging_release_phase(&s, &alter);
    let out = s.tool.run_in(
        &s.repo.dir,
        &[
            "-a",
            "acme",
            "--promote-from",
            "acme-staging",
            "--lock-wait",
            "1s",
            "--confirm",
            "acme",
            "--json",
            "--",
            "true",
        ],
    );
    assert_eq!(out.code(), 1, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["result"], "held");
    let e = &doc["release_phase"]["enforcements"][0];
    assert_eq!(e["verified"], true, "{doc}");
    assert_eq!(e["wait"]["blocker"]["pid"], reader.pid);
    assert!(!reader.is_finished(), "the report is not the release's");
}

on_both_generations! {
    /// The base commit is what the current release runs (its slug on Cedar, its OCI image on
    /// Fir); the window scales through the formation and puts back exactly what it found; the
    /// report says which platform applied.
    fn the_window_decides_from_the_running_release_and_restores_exactly(g) {
        let s = setup_on(g);
        let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--confirm", "acme", "--json", "-v", "--", "true"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let doc = out.json();
        let _: maintenance_window::report::WindowReport = serde_json::from_value(doc.clone()).expect("a WindowReport");
        assert_eq!(doc["platform"]["generation"], g.name(), "{doc}");
        let platform = if g == Generation::Fir { "Fir (stack cnb)" } else { "Cedar (stack heroku-24)" };
        assert!(out.stderr_text().contains(&format!("acme runs on {platform}")), "-v says it: {}", out.dump());
        assert_eq!(doc["decision"]["base"], s.repo.deployed.as_str(), "{doc}");
        let source = doc["decision"]["base_source"].as_str().unwrap();
        match g {
            Generation::Cedar => assert_eq!(source, "the slug of acme's current release v2"),
            Generation::Fir => {
                assert_eq!(source, "the OCI image of acme's current release v2");
                assert!(s.sim.requests().iter().any(|r| r.path.starts_with("/apps/acme/oci-images/")), "read the image");
            }
        }
        assert_eq!(doc["result"], "closed");
        assert!(!maintenance(&s.sim));
        assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
    }
}

on_both_generations! {
    /// `--promote-from` carries the source's current release into the window: a release of its
    /// slug on Cedar; on Fir (an OCI image) a promotion through the pipeline both apps are in,
    /// as `heroku pipelines:promote` makes it. Either way acme then runs staging's build.
    fn promote_from_carries_the_source_release_inside_the_window(g) {
        let s = setup_with(g, |w| {
            w.add_pipeline(&[("acme-staging", "staging"), ("acme", "production")]);
        });
        let staging = s.sim.with(|w| w.apps["acme-staging"].current_release().unwrap().slug_id.clone().unwrap());
        let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--promote-from", "acme-staging", "--confirm", "acme", "--json", "--", "true"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let log = s.sim.requests();
        let pos = |pred: &dyn Fn(&heroku_sim::LoggedRequest) -> bool| log.iter().position(pred);
        let on = pos(&|r| r.method == "PATCH" && r.path == "/apps/acme" && r.body.as_ref().is_some_and(|b| b["maintenance"] == true)).unwrap();
        let off = pos(&|r| r.method == "PATCH" && r.path == "/apps/acme" && r.body.as_ref().is_some_and(|b| b["maintenance"] == false)).unwrap();
        let slug_release = pos(&|r| r.method == "POST" && r.path == "/apps/acme/releases");
        let promotion = pos(&|r| r.method == "POST" && r.path == "/pipeline-promotions");
        let made = match g {
            Generation::Cedar => {
                assert!(promotion.is_none());
                slug_release.expect("a release of the slug")
            }
            Generation::Fir => {
                assert!(slug_release.is_none(), "a slug release cannot carry an image");
                promotion.expect("a pipeline promotion")
            }
        };
        assert!(on < made && made < off, "the release is made inside the window");
        let current = s.sim.with(|w| w.apps["acme"].current_release().unwrap().slug_id.clone().unwrap());
        assert_eq!(current, staging, "acme runs staging's build");
        let doc = out.json();
        assert_eq!(doc["result"], "closed", "{doc}");
        assert_eq!(doc["journal"]["promotion"]["pipeline"].is_object(), g == Generation::Fir, "{doc}");
    }
}

on_both_generations! {
    /// On Fir an image is promoted only through a pipeline both apps are in: outside one,
    /// `--promote-from` is refused with exit 5 before anything changes, in one line saying where
    /// each app is and how to couple them. Cedar needs no pipeline.
    fn promote_from_outside_a_pipeline_is_refused_on_fir_only(g) {
        let s = setup_on(g);
        let out = s.tool.run_in(&s.repo.dir, &["-a", "acme", "--promote-from", "acme-staging", "--confirm", "acme", "--", "true"]);
        match g {
            Generation::Cedar => assert_eq!(out.code(), 0, "{}", out.dump()),
            Generation::Fir => {
                assert_eq!(out.code(), 5, "{}", out.dump());
                let err = out.stderr_text();
                assert_eq!(err.trim().lines().count(), 1, "{err}");
                assert!(err.contains("acme is on Fir (stack cnb)") && err.contains("acme is in no pipeline while acme-staging is in no pipeline"), "{err}");
                assert!(err.contains("heroku pipelines:add"), "{err}");
                assert!(!s.sim.requests().iter().any(|r| r.method != "GET"), "nothing was changed");
            }
        }
    }
}

/// A COMMAND that cannot start, or a promotion from the app itself, is found before the site
/// goes into maintenance: one line, exit 2, not one request that changes anything.
#[test]
fn a_command_that_cannot_start_or_a_promotion_from_itself_is_refused_before_anything_changes() {
    let s = setup();
    for (args, says) in [
        (vec!["-a", "acme", "--confirm", "acme", "--", "/nonexistent/cmd"], "cannot start `/nonexistent/cmd`"),
        (
            vec!["-a", "acme", "--confirm", "acme", "--promote-from", "acme", "--", "true"],
            "--promote-from acme is the app itself",
        ),
    ] {
        let out = s.tool.run_in(&s.repo.dir, &args);
        assert_eq!(out.code(), 2, "{args:?}: {}", out.dump());
        assert!(out.stderr_text().contains(says), "{}", out.dump());
        assert_eq!(out.stderr_text().trim().lines().count(), 1, "{}", out.dump());
    }
    assert!(!maintenance(&s.sim));
    assert!(!s.sim.requests().iter().any(|r| r.method != "GET"), "nothing changed");
    assert_eq!(quantities(&s.sim), vec![("web".into(), 2), ("worker".into(), 3), ("clock".into(), 1)]);
}
