//! The plugin inside the real Heroku CLI (pinned in tests/heroku-cli), against heroku-sim and
//! a real PostgreSQL: commands appear in help, arguments and exit codes pass through, prompts
//! work on a terminal, the token never reaches argv, and a missing binary says how to install.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use heroku_sim::{scenario, Sim, World};
use test_support::heroku_cli::{text, HerokuCli};
use test_support::pty::PtySession;
use test_support::sessions::StuckAlter;
use test_support::PgCluster;

/// Where cargo put the tool binaries.
fn bin_dir() -> PathBuf {
    test_support::bin_dir(&["safe-ps-kill", "pg-blockers", "migrate-restart", "maintenance-window"])
}

struct Linked {
    sim: Sim,
    cli: HerokuCli,
    bins: PathBuf,
}

impl Linked {
    fn new(world: World) -> Linked {
        let sim = Sim::start(world).unwrap();
        let cli = HerokuCli::new(&sim.url(), &sim.token());
        let plugin = test_support::workspace_root().join("plugin-shim");
        assert!(plugin.join("node_modules").is_dir(), "run `npm ci --prefix plugin-shim` (scripts/test does)");
        let out = cli.run(&["plugins:link", "--no-install", plugin.to_str().unwrap()]);
        assert!(out.status.success(), "link: {}", text(&out));
        Linked { sim, cli, bins: bin_dir() }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli
            .command()
            .env("HEROKU_DEPLOY_SAFETY_BIN", &self.bins)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

fn stuck() -> World {
    let mut w = scenario("stuck-release").unwrap();
    w.timing.stop_delay = Duration::from_millis(100);
    w
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_lists_the_commands_with_flags_and_examples() {
    let p = Linked::new(stuck());
    let out = p.run(&["help", "ps"]);
    assert!(stdout(&out).contains("ps:safe-kill"), "{}", text(&out));
    let out = p.run(&["help", "pg"]);
    assert!(stdout(&out).contains("pg:blockers"), "{}", text(&out));
    let out = p.run(&["help", "migrate"]);
    assert!(stdout(&out).contains("migrate:restart") && stdout(&out).contains("migrate:check"), "{}", text(&out));
    let out = p.run(&["help", "maintenance"]);
    assert!(stdout(&out).contains("maintenance:window"), "{}", text(&out));
    let out = p.run(&["help", "pg:blockers"]);
    let h = stdout(&out);
    assert!(h.contains("--cancel-roots") && h.contains("--min-wait=DUR") && h.contains("-a, --app="), "{h}");
    assert!(h.contains("heroku pg:blockers -a acme --cancel 4242 --confirm acme"), "examples: {h}");
}

#[test]
fn ps_safe_kill_release_resolves_stops_and_verifies_with_exit_codes_passed_through() {
    let p = Linked::new(stuck());
    let id = p.sim.with(|w| w.dyno_mut("acme", "release.2343").id.clone());
    let out = p.run(&["ps:safe-kill", "release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("release → release.2343") && stdout(&out).contains("✓ release.2343 stopped"),
        "{}",
        text(&out)
    );
    assert!(p
        .sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path == format!("/apps/acme/dynos/{id}/actions/stop")));

    // 5: refused without --confirm and without a terminal.
    let out = p.run(&["ps:safe-kill", "web.1", "-a", "acme"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    // 3: the dyno ignored the stop.
    p.sim.with(|w| w.dyno_mut("acme", "worker.1").ignores_stop = true);
    let out = p.run(&["ps:safe-kill", "worker.1", "-a", "acme", "--confirm", "acme", "--wait", "1s"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stdout(&out).contains("STILL RUNNING"), "{}", text(&out));
    // HEROKU_APP resolves the app as in every heroku command.
    let out = p
        .cli
        .command()
        .env("HEROKU_DEPLOY_SAFETY_BIN", &p.bins)
        .env("HEROKU_APP", "acme")
        .args(["ps:safe-kill", "web.2", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("Dry run"), "{}", text(&out));
}

#[test]
fn pg_blockers_shows_the_stuck_release_chain() {
    let pg = PgCluster::start().unwrap();
    let _stuck = StuckAlter::start(&pg, 40, "rails-release");
    let mut w = stuck();
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    let p = Linked::new(w);
    let out = p.run(&["pg:blockers", "-a", "acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = stdout(&out);
    assert!(t.contains("41 sessions waiting, 1 root blocker"), "{t}");
    assert!(
        t.contains("ALTER TABLE users ADD COLUMN nickname text (AccessExclusiveLock on users) — blocking 40"),
        "{t}"
    );
    // The commands it prints run through the plugin as printed: a plugin user may have no
    // binary on PATH.
    assert!(t.contains("run:  heroku pg:blockers -a acme --cancel "), "{t}");
    assert!(!t.contains("run:  pg-blockers"), "{t}");
    let out = p.run(&["pg:blockers", "-a", "acme", "--json", "--exit-status"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(!text(&out).contains("EEXIT"), "the tool's own code, silently: {}", text(&out));
}

/// A non-zero exit is the tool's own status and nothing more (no `Error: EEXIT: N` after the
/// tool's line); bad input is said the binary's way, one line and exit 2, and under `--json`
/// with its one document.
#[test]
fn exit_codes_pass_silently_and_bad_input_is_the_binarys_one_line() {
    let p = Linked::new(stuck());
    let out = p.run(&["ps:safe-kill", "web.1", "-a", "acme"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("EEXIT"), "{err}");
    assert!(err.contains("re-run with --confirm acme"), "{err}");

    let out = p.run(&["migrate:restart", "-a", "acme", "--json", "--bogus"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
    assert!(doc["error"]["message"].as_str().unwrap().contains("--bogus"), "{doc}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("USAGE"), "{}", text(&out));
}

#[test]
fn a_prompt_is_answered_through_the_plugin_on_a_terminal() {
    let p = Linked::new(stuck());
    let mut cmd = p.cli.command();
    cmd.env("HEROKU_DEPLOY_SAFETY_BIN", &p.bins).args(["ps:safe-kill", "release", "-a", "acme"]);
    let mut term = PtySession::spawn(cmd);
    term.expect("Stop release.2343 on acme?", Duration::from_secs(60));
    term.send("y");
    let status = term.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", term.screen());
    assert!(term.screen().contains("release.2343 stopped"), "{}", term.screen());
}

#[test]
fn the_token_comes_from_the_clis_login_through_the_environment_never_argv() {
    let p = Linked::new(stuck());
    // A stand-in binary that records what it was given.
    let fake = tempfile::tempdir().unwrap();
    let record = fake.path().join("record");
    let script = format!("#!/bin/sh\nprintf 'argv=%s\\n' \"$*\" > {r}\nprintf 'key=%s\\n' \"$HEROKU_API_KEY\" >> {r}\nprintf 'host=%s\\n' \"$HEROKU_HOST\" >> {r}\nexit 0\n", r = record.display());
    let bin = fake.path().join("safe-ps-kill");
    std::fs::write(&bin, script).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Logged in through ~/.netrc only, as `heroku login` leaves it.
    // The machine is the API URL's host with its port, as the Heroku CLI names it.
    let netrc =
        format!("machine 127.0.0.1:{}\n  login oncall@example.com\n  password {}\n", p.sim.port(), p.sim.token());
    std::fs::write(p.cli.home().join(".netrc"), netrc).unwrap();
    let out = p
        .cli
        .command()
        .env_remove("HEROKU_API_KEY")
        .env("HEROKU_DEPLOY_SAFETY_BIN", fake.path())
        .args(["ps:safe-kill", "release", "-a", "acme", "--confirm", "acme"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let seen = std::fs::read_to_string(&record).unwrap();
    assert!(seen.contains("argv=release -a acme --confirm acme\n"), "{seen}");
    assert!(seen.contains(&format!("key={}\n", p.sim.token())), "the token is in the environment: {seen}");
    assert!(!seen.lines().next().unwrap().contains(&p.sim.token()), "the token must not be in argv: {seen}");
    assert!(seen.contains(&format!("host={}", p.sim.url())), "HEROKU_HOST passed through: {seen}");
}

#[test]
fn a_missing_binary_says_how_to_install_it() {
    // A copy of the plugin without a bin/ (scripts/install may have filled the real one).
    let sim = Sim::start(stuck()).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let copy = tempfile::tempdir().unwrap();
    let src = test_support::workspace_root().join("plugin-shim");
    for item in ["package.json", "manifest.json", "lib", "commands"] {
        let status = std::process::Command::new("cp").arg("-r").arg(src.join(item)).arg(copy.path()).status().unwrap();
        assert!(status.success());
    }
    std::os::unix::fs::symlink(src.join("node_modules"), copy.path().join("node_modules")).unwrap();
    let out = cli.run(&["plugins:link", "--no-install", copy.path().to_str().unwrap()]);
    assert!(out.status.success(), "link: {}", text(&out));
    let p = Linked { sim, cli, bins: PathBuf::new() };
    let empty = tempfile::tempdir().unwrap();
    let out = p
        .cli
        .command()
        .env("HEROKU_DEPLOY_SAFETY_BIN", empty.path())
        .env(
            "PATH",
            std::env::join_paths([
                test_support::heroku_cli::heroku_bin().unwrap().parent().unwrap().to_path_buf(),
                PathBuf::from("/usr/bin"),
                PathBuf::from("/bin"),
            ])
            .unwrap(),
        )
        .args(["ps:safe-kill", "release", "-a", "acme"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "error: safe-ps-kill is not installed: reinstall the plugin with its optional dependencies (heroku plugins:install heroku-deploy-safety brings @heroku-deploy-safety/linux-x64), or run scripts/install"
        ),
        "{}",
        text(&out)
    );
}

/// The plugin as a user installs it without a checkout: `npm pack`, then
/// `heroku plugins:install file://…tgz` (the CLI installs its dependencies from the registry).
#[test]
fn installs_from_a_packed_tarball() {
    let sim = Sim::start(stuck()).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let src = test_support::workspace_root().join("plugin-shim");
    let pkg = tempfile::tempdir().unwrap();
    for item in ["package.json", "package-lock.json", "manifest.json", "lib", "commands"] {
        assert!(std::process::Command::new("cp")
            .arg("-r")
            .arg(src.join(item))
            .arg(pkg.path())
            .status()
            .unwrap()
            .success());
    }
    let out = std::process::Command::new("npm").args(["pack", "--silent"]).current_dir(pkg.path()).output().unwrap();
    assert!(out.status.success(), "npm pack: {}", text(&out));
    let tarball = pkg.path().join(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap());
    let out = cli.run(&["plugins:install", &format!("file://{}", tarball.display())]);
    assert!(out.status.success(), "plugins:install: {}", text(&out));
    let out = cli
        .command()
        .env("HEROKU_DEPLOY_SAFETY_BIN", bin_dir())
        .args(["ps:safe-kill", "release", "-a", "acme", "--confirm", "acme"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("✓ release.2343 stopped"), "{}", text(&out));
}

/// `-r REMOTE` resolves the app from a git remote, as in every heroku command.
#[test]
fn the_remote_flag_resolves_the_app_from_git() {
    let p = Linked::new(stuck());
    let repo = tempfile::tempdir().unwrap();
    for args in [&["init", "-q"][..], &["remote", "add", "production", "https://git.heroku.com/acme.git"]] {
        assert!(std::process::Command::new("git").args(args).current_dir(repo.path()).status().unwrap().success());
    }
    let out = p
        .cli
        .command()
        .env("HEROKU_DEPLOY_SAFETY_BIN", &p.bins)
        .env("HEROKU_GIT_HOST", "git.heroku.com")
        .current_dir(repo.path())
        .args(["ps:safe-kill", "web.1", "-r", "production", "--dry-run"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("To stop: heroku ps:safe-kill web.1 -a acme --confirm acme"), "{}", text(&out));
}

/// SIGTERM to the Heroku CLI reaches the tool, and the status comes back (128 + 15).
#[test]
fn sigterm_is_forwarded_to_the_binary() {
    let mut w = stuck();
    w.dyno_mut("acme", "worker.1").ignores_stop = true;
    let p = Linked::new(w);
    let mut child = p
        .cli
        .command()
        .env("HEROKU_DEPLOY_SAFETY_BIN", &p.bins)
        .args(["ps:safe-kill", "worker.1", "-a", "acme", "--confirm", "acme", "--wait", "60s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    test_support::sessions::wait_until("the tool is polling", || {
        p.sim.requests().iter().any(|r| r.method == "POST" && r.path.ends_with("/actions/stop"))
    });
    // SAFETY: signalling our own child (the CLI's node process).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    // safe-ps-kill handles the signal: it says the stop was sent and not yet confirmed, and
    // exits 130 (interrupted), which the plugin passes through.
    assert_eq!(status.code(), Some(130), "the binary's status is returned: {status:?}");
    let polls_after = |since: usize| p.sim.requests().len() > since;
    let seen = p.sim.requests().len();
    std::thread::sleep(Duration::from_millis(2500)); // longer than the tool's longest poll pause
    assert!(!polls_after(seen), "the tool kept polling after the CLI was told to stop: it was not forwarded");
}

/// `heroku migrate:release -a acme -- git push heroku main`: everything after `--` is COMMAND
/// (never the VERSION), the real push runs, and the failed release phase it created exits 1
/// though the push itself said 0.
#[test]
fn migrate_release_wraps_a_real_git_push_and_exits_1_on_its_failed_release_phase() {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(600));
    let p = Linked::new(w);
    let repo = test_support::app_repo::AppRepo::new(
        &p.sim,
        "acme",
        Some("web: puma\nrelease: echo 'migration failed' >&2; exit 1\n"),
    )
    .unwrap();
    let out = p
        .cli
        .command()
        .env("HEROKU_DEPLOY_SAFETY_BIN", &p.bins)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["migrate:release", "-a", "acme", "--lock-wait", "off", "--", "git", "push", "heroku", "main"])
        .current_dir(repo.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("remote: Waiting for release.... failed."), "{}", text(&out));
    assert!(text(&out).contains("`git push heroku main` exited 0, but the release phase of v"), "{}", text(&out));
}

/// `heroku migrate:release VERSION`: the positional and flags reach the binary and its exit code
/// comes back (a failed release phase is 1, so a CI step after the deploy fails with it).
#[test]
fn migrate_release_passes_the_version_and_the_failed_release_phase_exits_1() {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(600));
    let p = Linked::new(w);
    let v = p.sim.push(
        "acme",
        "bad00001",
        "broken",
        &[("web", "puma"), ("release", "echo 'migration failed' >&2; exit 1")],
    );
    test_support::sessions::wait_until("the release phase fails", || {
        p.sim.with(|w| w.apps["acme"].releases.iter().any(|r| r.version == v && r.status == "failed"))
    });
    let out = p.run(&["migrate:release", &format!("v{v}"), "-a", "acme", "--lock-wait", "off"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout(&out).contains(&format!("The release phase of v{v} failed")), "{}", text(&out));
    assert!(stdout(&out).contains("migration failed"), "{}", text(&out));
    let out = p.run(&["help", "migrate:release"]);
    assert!(stdout(&out).contains("--lock-wait=DUR|off"), "{}", text(&out));
}

/// `heroku migrate:plan -a acme --scratch-url URL -- COMMAND`: the flag and everything after
/// `--` reach the binary, the migration runs on the scratch database only, and the exit code
/// (6: a long report on `users` would make it wait) comes back through the CLI.
#[test]
fn migrate_plan_passes_the_scratch_database_and_command_and_its_exit_code() {
    let pg = test_support::acme::users_database().unwrap();
    pg.psql("postgres", "CREATE DATABASE scratch").unwrap();
    pg.psql("scratch", "CREATE TABLE users (id int)").unwrap();
    let reader = test_support::sessions::long_report(&pg, &pg.superuser_url("postgres"), 120);
    let p = Linked::new(test_support::acme::acme_world(&pg, test_support::generation::Generation::Cedar));
    let migration = test_support::acme::psql_migration(&pg, "ALTER TABLE users ADD COLUMN nickname text");
    let scratch = pg.superuser_url("scratch");
    let out = p.run(&["migrate:plan", "-a", "acme", "--scratch-url", &scratch, "--", "sh", "-c", &migration]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!("pid {} (reporting) holds AccessShareLock on public.users", reader.pid)),
        "{}",
        text(&out)
    );
    let column = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'nickname'";
    assert_eq!((pg.psql("scratch", column).unwrap(), pg.psql("postgres", column).unwrap()), ("1".into(), "0".into()));
    assert!(!text(&out).contains("test-superuser-pw"), "{}", text(&out));
}

/// On a Fir app the plugin passes `--app` and the flags unchanged; the tools read the
/// generation themselves: a type resolves to pods, a Cedar-style name is refused with how Fir
/// names dynos, and `migrate:check` names the pods that predate the change.
#[test]
fn on_a_fir_app_the_flags_pass_unchanged_and_the_tools_say_the_generation() {
    let mut w = stuck();
    w.make_fir("acme", true);
    let p = Linked::new(w);
    let out = p.run(&["ps:safe-kill", "release", "--app", "acme", "--confirm", "acme", "--json", "--wait", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = stdout(&out);
    assert!(doc.contains(r#""generation": "fir""#), "{doc}");
    assert!(doc.contains(r#""name": "release-"#), "the release dyno's pod name: {doc}");
    assert!(doc.contains(r#""wait_limit_ms": 10000"#), "--wait passed through: {doc}");

    let out = p.run(&["ps:safe-kill", "web.1", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("acme is on Fir (stack cnb)"), "{}", text(&out));

    let out = p.run(&["migrate:check", "-a", "acme", "--since", "10m", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let doc = stdout(&out);
    assert!(doc.contains(r#""name": "web-"#) && doc.contains(r#""name": "worker-"#), "pods named: {doc}");
    assert!(!doc.contains(r#""name": "web."#), "{doc}");
}
