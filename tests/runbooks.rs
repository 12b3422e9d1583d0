//! Every command in docs/runbooks/*.md runs against the sandbox in the situation the page is
//! about, in order, and must end with the status the page says (`# exit N`, default 0).

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::sandbox::Sandbox;
use test_support::sessions::{create_big_table, lock_waiters, spawn, wait_until, Backup, Running, StuckAlter};

fn bin_dir() -> PathBuf {
    test_support::bin_dir(&["pg-blockers"])
}

/// (command line, expected exit) for each line of each ```sh block.
fn commands(markdown: &str) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && (t == "```sh" || t == "```bash");
            continue;
        }
        if !in_sh || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (cmd, exit) = match t.split_once("# exit ") {
            Some((c, e)) => (c.trim().to_string(), e.trim().parse().expect("exit N")),
            None => (t.split(" # ").next().unwrap_or(t).trim().to_string(), 0),
        };
        out.push((cmd, exit));
    }
    out
}

fn scene_marker(line: &str) -> Option<String> {
    line.trim().strip_prefix("<!-- sandbox: ")?.strip_suffix(" -->").map(str::to_string)
}

/// The page cut at each `<!-- sandbox: NAME -->` line: (scene, the text up to the next one).
/// A page about two situations runs each part in a sandbox of its own.
fn scenes(markdown: &str) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = Vec::new();
    for line in markdown.lines() {
        match (scene_marker(line), parts.last_mut()) {
            (Some(name), _) => parts.push((name, String::new())),
            (None, Some((_, text))) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(!parts.is_empty(), "a page starts with a <!-- sandbox: NAME --> line");
    parts
}

/// Things that must stay alive while the page's commands run.
#[allow(dead_code)]
enum Held {
    Alter(StuckAlter),
    Backup(Backup, Running),
    Reader(Running, Vec<Running>),
    Connections(test_support::sessions::HeldConnections),
    Nothing,
}

fn set_scene(sb: &Sandbox, name: &str) -> (Held, PathBuf) {
    match name {
        "stuck-release" => (Held::Alter(StuckAlter::start(&sb.pg, 40, "rails release.2343")), sb.dir().to_path_buf()),
        // A release phase under way: its ALTER waits behind a long report, queries queue behind it.
        "release-phase-pending" => {
            sb.sim.with(|w| w.apps.get_mut("acme").unwrap().dynos.retain(|d| d.process_type != "release"));
            let url = sb.pg.superuser_url("postgres");
            let reader = test_support::sessions::long_report(&sb.pg, &url, 3600);
            let release = sb.psql_migration("ALTER TABLE users ADD COLUMN nickname text");
            sb.sim.push("acme", "b7c2e4f1a9d3", "add users.nickname", &[("web", "puma"), ("release", &release)]);
            wait_until("the release's ALTER waits", || lock_waiters(&sb.pg) == 1);
            let queued =
                (0..40).map(|i| spawn(&url, &format!("web.{}", i % 2 + 1), "SELECT count(*) FROM users")).collect();
            wait_until("queries queue behind it", || lock_waiters(&sb.pg) == 41);
            (Held::Reader(reader, queued), sb.dir().to_path_buf())
        }
        // A deploy whose release phase ran under migrate-guard (installed by the buildpack)
        // while a long report held `users`: the guard cut the ALTER, the release failed.
        "guarded-release" => {
            let url = sb.pg.superuser_url("postgres");
            let reader = test_support::sessions::long_report(&sb.pg, &url, 3600);
            sb.sim.with(|w| {
                w.apps.get_mut("acme").unwrap().dynos.retain(|d| d.process_type != "release");
                let guard = bin_dir().join("migrate-guard");
                let g = test_support::generation::Generation::Cedar;
                test_support::buildpack::install_migrate_guard(&guard, w, g, &sb.dir().join("guard")).unwrap();
            });
            let release = format!(
                "migrate-guard --lock-wait 1s --retries 1 --max-xact-age 10m -- {}",
                sb.psql_migration("SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text")
            );
            let v =
                sb.sim.push("acme", "b7c2e4f1a9d3", "add users.nickname", &[("web", "puma"), ("release", &release)]);
            let status =
                || sb.sim.with(|w| w.apps["acme"].releases.iter().find(|r| r.version == v).unwrap().status.clone());
            wait_until("the guarded release phase ends", || status() != "pending");
            assert_eq!(status(), "failed");
            (Held::Reader(reader, Vec::new()), sb.dir().to_path_buf())
        }
        // Every connection slot taken, the superuser's reserved ones included (the tools connect
        // with the app's DATABASE_URL, which in the sandbox is the superuser's).
        "no-free-connection" => {
            (Held::Connections(test_support::sessions::take_every_slot(&sb.pg)), sb.dir().to_path_buf())
        }
        "stale-schema" => {
            sb.sim.with(|w| {
                w.add_release("acme", "d00dfeed", "Deploy d00dfeed: rename users.name", Duration::from_secs(300));
            });
            (Held::Nothing, sb.dir().to_path_buf())
        }
        "backup-blocks-migration" => {
            create_big_table(&sb.pg, "field_history", 20);
            let backup = Backup::start(&sb.pg, "postgres", "field_history", false);
            let drop = spawn(&sb.pg.superuser_url("postgres"), "migrate-restart/run.1001", "DROP TABLE field_history");
            wait_until("the DROP waits", || lock_waiters(&sb.pg) == 1);
            (Held::Backup(backup, drop), sb.dir().to_path_buf())
        }
        "deploy-window" | "interrupted-window" | "window-opened-elsewhere" => {
            let (repo, deployed, _, _) = sb.rails_repo().unwrap();
            sb.sim.with(|w| {
                w.add_release("acme", &deployed, "Deploy deployed", Duration::from_secs(3600));
                w.apps.get_mut("acme").unwrap().dynos.retain(|d| d.process_type != "release");
            });
            if name != "deploy-window" {
                // The deploy step kills the tool that opened the window: nothing is cleaned up.
                // Opened elsewhere: on a CI runner, whose journal is not on the operator's machine.
                let mut open = sb.sh("maintenance-window -a acme --confirm acme -- sh -c 'kill -9 $PPID'");
                if name == "window-opened-elsewhere" {
                    let runner = sb.dir().join("ci-runner");
                    open.env("HOME", &runner).env("XDG_STATE_HOME", runner.join(".local/state"));
                }
                let out = open.current_dir(&repo).output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(137),
                    "the tool was killed (SIGKILL, through sh): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(sb.sim.with(|w| w.apps["acme"].maintenance), "the window was left open");
            }
            (Held::Nothing, repo)
        }
        other => panic!("unknown sandbox scene `{other}`"),
    }
}

fn run_page(page: &Path) {
    let text = std::fs::read_to_string(page).unwrap();
    for (scene, part) in scenes(&text) {
        run_part(page, &scene, &part);
    }
}

fn run_part(page: &Path, scene: &str, text: &str) {
    let sb = Sandbox::start(&bin_dir()).unwrap();
    let (_held, cwd) = set_scene(&sb, scene);
    let mut failures = Vec::new();
    let commands = commands(text);
    assert!(!commands.is_empty(), "{}: the part for {scene} runs no command", page.display());
    for (cmd, expected) in commands {
        let out = sb.sh(&cmd).current_dir(&cwd).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code != expected {
            failures.push(format!(
                "`{cmd}` ended with {code}, the page says {expected}\n--- stdout\n{}--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{} ({scene}):\n{}", page.display(), failures.join("\n"));
}

fn page(name: &str) -> PathBuf {
    test_support::workspace_root().join("docs/runbooks").join(name)
}

#[test]
fn release_phase_stuck() {
    run_page(&page("release-phase-stuck.md"));
}

#[test]
fn timeouts_after_deploy() {
    run_page(&page("timeouts-after-deploy.md"));
}

#[test]
fn migration_waiting_on_lock() {
    run_page(&page("migration-waiting-on-lock.md"));
}

#[test]
fn deploy_migration_minimal_downtime() {
    run_page(&page("deploy-migration-minimal-downtime.md"));
}

#[test]
fn reopen_after_interrupted_window() {
    run_page(&page("reopen-after-interrupted-window.md"));
}

#[test]
fn guard_every_deploy() {
    run_page(&page("guard-every-deploy.md"));
}

#[test]
fn database_refuses_connections() {
    run_page(&page("database-refuses-connections.md"));
}

#[test]
fn every_runbook_page_is_tested() {
    let mut pages: Vec<String> = std::fs::read_dir(test_support::workspace_root().join("docs/runbooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    pages.sort();
    let tested = [
        "database-refuses-connections.md",
        "deploy-migration-minimal-downtime.md",
        "guard-every-deploy.md",
        "migration-waiting-on-lock.md",
        "release-phase-stuck.md",
        "reopen-after-interrupted-window.md",
        "timeouts-after-deploy.md",
    ];
    assert_eq!(pages, tested, "a runbook page without a test");
    for p in &pages {
        assert!(!commands(&std::fs::read_to_string(page(p)).unwrap()).is_empty(), "{p} has no commands");
    }
}
