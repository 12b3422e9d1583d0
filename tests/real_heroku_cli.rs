//! The published Heroku CLI (pinned in tests/heroku-cli) against heroku-sim: proof that the
//! simulator speaks the real protocol, including the platform's behaviour in the stuck-release
//! incident.

use std::time::{Duration, Instant};

use heroku_sim::{scenario, Sim};
use test_support::heroku_cli::{text, HerokuCli};

fn stuck_release() -> (Sim, HerokuCli) {
    let sim = Sim::start(scenario("stuck-release").unwrap()).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    (sim, cli)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ps_lists_what_the_sim_holds() {
    let (sim, cli) = stuck_release();
    let out = cli.run(&["ps", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = stdout(&out);
    for name in sim.dyno_names("acme") {
        assert!(listed.contains(&format!("{name}: up")), "{name} missing from heroku ps:\n{listed}");
    }
    assert!(listed.contains("bundle exec rake db:migrate"), "{listed}");
    assert!(sim.requests().iter().any(|r| r.path == "/apps/acme/dynos" && r.status == 200));
}

#[test]
fn maintenance_reads_and_sets_the_flag() {
    let (sim, cli) = stuck_release();
    let out = cli.run(&["maintenance", "-a", "acme"]);
    assert_eq!(stdout(&out).trim(), "off", "{}", text(&out));
    let out = cli.run(&["maintenance:on", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sim.with(|w| w.apps["acme"].maintenance), "maintenance:on did not reach the sim");
    let out = cli.run(&["maintenance", "-a", "acme"]);
    assert_eq!(stdout(&out).trim(), "on", "{}", text(&out));
}

#[test]
fn releases_lists_newest_first() {
    let (_sim, cli) = stuck_release();
    let out = cli.run(&["releases", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = stdout(&out);
    let v2 = s.find("v2").unwrap_or_else(|| panic!("no v2:\n{s}"));
    let v1 = s.find("v1 ").unwrap_or_else(|| panic!("no v1:\n{s}"));
    assert!(v2 < v1, "newest first:\n{s}");
    assert!(s.contains("Deploy b7c2e4f1: add users.nickname"), "{s}");
    // v2's release phase is the one stuck: the CLI shows it executing, and v1 still current.
    let v2_line = s.lines().find(|l| l.contains("v2")).unwrap();
    assert!(v2_line.contains("release command executing"), "{s}");
    assert!(s.contains("Current: v1"), "{s}");
}

#[test]
fn ps_stop_by_dyno_name_replaces_the_dyno() {
    let (sim, cli) = stuck_release();
    let old_id = sim.with(|w| w.dyno_mut("acme", "web.1").id.clone());
    let out = cli.run(&["ps:stop", "--dyno-name", "web.1", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sim.requests().iter().any(|r| r.method == "POST" && r.path == "/apps/acme/dynos/web.1/actions/stop"));
    // The formation brings web.1 back as a new dyno: the stopped one (by id) is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.with(|w| w.apps["acme"].dynos.iter().any(|d| d.id == old_id)) {
        assert!(Instant::now() < deadline, "stopped dyno never went away");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cli.run(&["ps", "-a", "acme"]);
    assert!(stdout(&out).contains("web.1: starting") || stdout(&out).contains("web.1: up"), "{}", text(&out));
}

/// `ps:restart --process-type` and `ps:stop --process-type` go through the formation routes
/// (with the 3.sdk variant); the simulator answers them as the platform does.
#[test]
fn ps_restart_and_stop_by_process_type_use_the_formation_routes() {
    let (sim, cli) = stuck_release();
    let web_before: Vec<_> =
        sim.with(|w| w.apps["acme"].dynos.iter().filter(|d| d.process_type == "web").map(|d| d.created_at).collect());
    let out = cli.run(&["ps:restart", "--process-type", "web", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let restart = sim.requests().into_iter().find(|r| r.method == "DELETE").expect("a restart request");
    assert_eq!(restart.path, "/apps/acme/formations/web");
    assert_eq!(restart.accept.as_deref(), Some("application/vnd.heroku+json; version=3.sdk"));
    let web_after: Vec<_> =
        sim.with(|w| w.apps["acme"].dynos.iter().filter(|d| d.process_type == "web").map(|d| d.created_at).collect());
    assert!(web_before.iter().zip(&web_after).all(|(b, a)| a > b), "every web dyno restarted");

    // Stopping a type stops each of its dynos; the formation then replaces them with new ones.
    let workers: Vec<String> = sim
        .with(|w| w.apps["acme"].dynos.iter().filter(|d| d.process_type == "worker").map(|d| d.id.clone()).collect());
    assert!(!workers.is_empty());
    let out = cli.run(&["ps:stop", "--process-type", "worker", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sim.requests().iter().any(|r| r.method == "POST" && r.path == "/apps/acme/formations/worker/actions/stop"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.with(|w| w.apps["acme"].dynos.iter().any(|d| workers.contains(&d.id))) {
        assert!(Instant::now() < deadline, "the worker dynos were never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `heroku run:detached` starts a one-off dyno whose output goes to the log, and `heroku logs
/// --dyno run.N` reads it back through a log session, in the platform's format.
#[test]
fn run_detached_output_and_exit_status_reach_heroku_logs() {
    let (sim, cli) = stuck_release();
    let out = cli.run(&["run:detached", "-a", "acme", "--", "echo hello-from-detached; exit 3"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    let dyno = said
        .split("--dyno ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|d| d.trim_matches(|c: char| !c.is_alphanumeric() && c != '.').to_string())
        .unwrap_or_else(|| panic!("no dyno named: {said}"));
    assert!(dyno.starts_with("run."), "{said}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sim.with(|w| w.log_text("acme").iter().any(|l| l.ends_with("Process exited with status 3"))) {
        assert!(Instant::now() < deadline, "the detached dyno never exited: {:?}", sim.with(|w| w.log_text("acme")));
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cli.run(&["logs", "-a", "acme", "--dyno", &dyno]);
    assert!(out.status.success(), "{}", text(&out));
    let logs = stdout(&out);
    for expected in [
        format!("heroku[{dyno}]: Starting process with command `echo hello-from-detached; exit 3`"),
        format!("heroku[{dyno}]: State changed from starting to up"),
        format!("app[{dyno}]: hello-from-detached"),
        format!("heroku[{dyno}]: Process exited with status 3"),
        format!("heroku[{dyno}]: State changed from up to complete"),
    ] {
        assert!(logs.contains(&expected), "missing `{expected}` in:\n{logs}");
    }
    let session = sim.requests().into_iter().find(|r| r.path == "/apps/acme/log-sessions").expect("a log session");
    assert_eq!(session.body.unwrap()["dyno"], dyno.as_str());
}

#[test]
fn incident_ps_stop_release_prints_success_and_stops_nothing() {
    let (sim, cli) = stuck_release();
    let out = cli.run(&["ps:stop", "release", "-a", "acme"]);
    assert!(out.status.success(), "the CLI reports success: {}", text(&out));
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("Stopping dyno release on acme... done"), "{all}");
    let stop_delay = sim.with(|w| w.timing.stop_delay);
    std::thread::sleep(stop_delay * 3);
    assert!(sim.dyno_names("acme").contains(&"release.2343".to_string()), "the sim must not stop release.2343");
    let out = cli.run(&["ps", "-a", "acme"]);
    assert!(stdout(&out).contains("release.2343: up"), "still listed after the 'successful' stop:\n{}", text(&out));
    // ps:kill is an alias of ps:stop and behaves the same.
    let out = cli.run(&["ps:kill", "release", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sim.dyno_names("acme").contains(&"release.2343".to_string()));
}

/// `heroku run` through the simulator's TLS rendezvous (trusted via NODE_EXTRA_CA_CERTS):
/// output and the exit-status marker round-trip, and without `--exit-code` a failed command
/// still "succeeds" — why `heroku run rake db:migrate && heroku restart` restarts after a
/// failed migration.
#[test]
fn heroku_run_attaches_through_the_rendezvous() {
    let (sim, cli) = stuck_release();
    let ca = cli.home().join("sim-ca.pem");
    sim.write_ca(&ca).unwrap();
    let run = |args: &[&str]| {
        cli.command().env("NODE_EXTRA_CA_CERTS", &ca).args(args).stdin(std::process::Stdio::null()).output().unwrap()
    };

    let out = run(&["run", "--exit-code", "-a", "acme", "--", "echo hi from $DYNO"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("hi from run."), "{}", text(&out));

    let out = run(&["run", "--exit-code", "-a", "acme", "--", "false"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let out = run(&["run", "-a", "acme", "--", "false"]);
    assert_eq!(out.status.code(), Some(0), "without --exit-code the failure is lost: {}", text(&out));
}

/// The release phase as the Heroku CLI sees it: `releases` and `releases:info` say "release
/// command executing" while it runs, `releases:output` streams the command's output from
/// `output_stream_url`, and a failure reads "release command failed" with the previous release
/// still current.
#[test]
fn releases_info_and_output_follow_a_release_phase() {
    let mut world = heroku_sim::World::default();
    world.add_app("acme");
    world.add_formation("acme", "web", 1, "puma", Duration::from_secs(600));
    let sim = Sim::start(world).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    // The release command runs until the test has seen it pending (a file it waits for; at
    // most 2 minutes): however long the CLI (a node start-up) takes on a loaded machine.
    let gate = test_support::tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let release = format!(
        "echo '== AddNickname: migrating'; i=0; while [ ! -f '{}' ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done; echo 'boom' >&2; exit 1",
        go.display()
    );
    let version = sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", &release)]);
    let out = cli.run(&["releases:info", &format!("v{version}"), "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("release command executing"), "{}", text(&out));
    std::fs::write(&go, "").unwrap();
    let out = cli.run(&["releases:output", &format!("v{version}"), "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "== AddNickname: migrating\nboom\n", "{}", text(&out));
    let out = cli.run(&["releases", "-a", "acme"]);
    let listed = stdout(&out);
    let line = listed.lines().find(|l| l.contains(&format!("v{version}"))).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("release command failed"), "{listed}");
    assert!(listed.contains(&format!("Current: v{}", version - 1)), "{listed}");
    let out = cli.run(&["releases:retry", "-a", "acme"]);
    assert!(out.status.success(), "releases:retry needs the release formation type: {}", text(&out));
    assert!(stdout(&out).contains("Running release command..."), "{}", text(&out));
    // It streamed the output and exited 0 without reading the outcome: the retry failed too.
    let newest =
        || sim.with(|w| w.apps["acme"].releases.last().map(|r| (r.version, r.status.clone(), r.description.clone())));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while newest().is_some_and(|(_, s, _)| s == "pending") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (v, status, description) = newest().unwrap();
    assert!(v > version && description.starts_with(&format!("Retry of v{version}")), "{description}");
    assert_eq!(status, "failed", "releases:retry exited 0 on a failed release phase");
}

/// `heroku releases:rollback` re-releases an earlier release's slug through `POST
/// /apps/{app}/releases` (a `release` body, the 3.sdk variant), streams the release phase that
/// runs again, and exits 0 whatever it did; `releases` says "release expired" for one a newer
/// release superseded.
#[test]
fn rollback_runs_the_release_phase_again_and_never_reads_its_outcome() {
    let mut world = heroku_sim::World::default();
    world.add_app("acme");
    world.add_formation("acme", "web", 1, "puma", Duration::from_secs(600));
    world.set_config_var("acme", "CODE", "0");
    let sim = Sim::start(world).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let settled = |v: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while sim.with(|w| w.apps["acme"].releases.iter().any(|r| r.version == v && r.status == "pending")) {
            assert!(std::time::Instant::now() < deadline, "v{v} still pending");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let target = sim.push("acme", "aaaa1111", "good", &[("web", "puma"), ("release", "echo rolled back; exit $CODE")]);
    settled(target);
    let newer = sim.push("acme", "bbbb2222", "newer", &[("web", "puma"), ("release", "echo newer")]);
    settled(newer);
    // Since then the config changed (without a release here), so the rollback's release phase fails.
    sim.with(|w| w.set_config_var("acme", "CODE", "1"));
    let out = cli.run(&["releases:rollback", &format!("v{target}"), "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("Running release command..."), "{}", text(&out));
    // The CLI asks for the output at once; a release command not started yet answers 404, which
    // the CLI turns into a warning (as on the platform). Either way it exits 0.
    assert!(stdout(&out).contains("rolled back") || text(&out).contains("Release command starting"), "{}", text(&out));
    let last = sim.with(|w| w.apps["acme"].releases.last().cloned()).unwrap();
    settled(last.version);
    let last = sim.with(|w| w.apps["acme"].releases.last().cloned()).unwrap();
    assert_eq!(last.description, format!("Rollback to v{target}"));
    assert_eq!(last.status, "failed", "the CLI exited 0 on a failed release phase");
    // A release superseded while pending reads "release expired".
    let slow = sim.push("acme", "cccc3333", "slow", &[("web", "puma"), ("release", "sleep 2")]);
    sim.push("acme", "dddd4444", "fast", &[("web", "puma")]);
    let out = cli.run(&["releases", "-a", "acme"]);
    let line = stdout(&out).lines().find(|l| l.contains(&format!("v{slow} "))).map(str::to_string).unwrap_or_default();
    assert!(line.contains("release expired"), "{}", text(&out));
}

/// A Fir app (the newer generation): the Heroku CLI reads its generation from `GET /apps/{app}`
/// under the 3.sdk variant (the published schema has no such field; the simulator follows the
/// CLI's reading), lists its pod-style dynos, and restarts a type through the formation route —
/// the pods come back under new names.
#[test]
fn a_fir_app_lists_pod_style_dynos_and_restarts_a_type_through_the_formation_route() {
    let mut world = heroku_sim::World::default();
    world.add_app("acme");
    world.make_fir("acme", true);
    world.add_formation("acme", "web", 2, "bundle exec puma", Duration::from_secs(600));
    world.timing.start_delay = Duration::from_millis(100);
    let sim = Sim::start(world).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let before = sim.dyno_names("acme");
    let pod = regex_like_pod(&before[0]);
    assert!(pod, "pod-style names: {before:?}");
    let out = cli.run(&["ps", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    for name in &before {
        assert!(stdout(&out).contains(name.as_str()), "{name} missing:\n{}", text(&out));
    }
    let out = cli.run(&["ps:restart", "--process-type", "web", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sim.requests().iter().any(|r| r.method == "DELETE" && r.path == "/apps/acme/formations/web"));
    let after = sim.dyno_names("acme");
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|n| !before.contains(n) && regex_like_pod(n)), "new pods: {before:?} → {after:?}");
}

/// `web-<hex>-<5 alphanumerics>`, as lib/apps/generation.js recognises a Fir dyno.
fn regex_like_pod(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() == 3
        && parts[0] == "web"
        && !parts[1].is_empty()
        && parts[1].chars().all(|c| c.is_ascii_alphanumeric())
        && parts[2].len() == 5
        && parts[2].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The real CLI on a `cnb` app prepends `launcher` to a one-off command (lib/run/helpers.js);
/// with `--no-launcher` the same command cannot find the app's runtime on the simulator, as on
/// the platform. Its Fir log session asks for the dyno by name and no history.
#[test]
fn on_a_cnb_app_the_cli_prepends_launcher_and_without_it_the_runtime_is_missing() {
    let dir = test_support::tempfile::tempdir().unwrap();
    let mut world = heroku_sim::World::default();
    world.add_app("acme");
    world.make_fir("acme", true);
    world.add_formation("acme", "web", 1, "bundle exec puma", Duration::from_secs(600));
    world.timing.start_delay = Duration::from_millis(50);
    test_support::generation::install_runtime(&mut world, dir.path()).unwrap();
    let sim = Sim::start(world).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let exited = |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = sim.with(|w| {
                w.log_text("acme")
                    .into_iter()
                    .find(|l| l.contains(&format!("heroku[{name}]: Process exited with status")))
            });
            if let Some(l) = line {
                return l;
            }
            assert!(Instant::now() < deadline, "{name} never exited: {:?}", sim.with(|w| w.log_text("acme")));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The command the CLI sent, and the dyno it names ("Run heroku logs … --dyno NAME").
    let created = |sim: &Sim, out: &std::process::Output| -> (String, String) {
        let r = sim.requests().into_iter().rev().find(|r| r.method == "POST" && r.path == "/apps/acme/dynos").unwrap();
        let said = stdout(out);
        let name = said
            .split("--dyno ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(|d| d.trim_matches(|c: char| !c.is_alphanumeric() && c != '-').to_string())
            .unwrap_or_else(|| panic!("no dyno named: {said}"));
        (r.body.unwrap()["command"].as_str().unwrap().to_string(), name)
    };

    let out = cli.run(&["run:detached", "-a", "acme", "--", "bundle exec echo launched"]);
    assert!(out.status.success(), "{}", text(&out));
    let (command, name) = created(&sim, &out);
    assert!(name.starts_with("run-"), "a Fir one-off: {name}");
    assert_eq!(command, "launcher bundle exec echo launched");
    assert!(exited(&name).ends_with("status 0"));
    assert!(sim.with(|w| w.log_text("acme")).iter().any(|l| l.ends_with(&format!("app[{name}]: launched"))));

    let out = cli.run(&["run:detached", "-a", "acme", "--no-launcher", "--", "bundle exec echo bare"]);
    assert!(out.status.success(), "{}", text(&out));
    let (command, name) = created(&sim, &out);
    assert_eq!(command, "bundle exec echo bare");
    assert!(exited(&name).ends_with("status 127"), "without launcher the app's bundle is not found");
}

/// `heroku pg:blocking` and `heroku pg:locks` find acme's database as the CLI does on the
/// platform — `POST /actions/addon-attachments/resolve` for `DATABASE_URL`, asking to include
/// the add-on's plan and config vars — and run their SQL through psql on it: a transaction
/// waiting on another's row lock is the blocked pid beside its blocker.
#[test]
fn pg_blocking_and_locks_resolve_the_database_as_on_the_platform() {
    let pg = test_support::acme::users_database().unwrap();
    let sim = Sim::start(test_support::acme::acme_world(&pg, test_support::generation::Generation::Cedar)).unwrap();
    let cli = HerokuCli::new(&sim.url(), &sim.token());
    let url = pg.superuser_url("postgres");
    let holder = test_support::sessions::spawn(
        &url,
        "holder",
        "BEGIN; UPDATE users SET id = id WHERE id = 1; SELECT pg_sleep(60)",
    );
    test_support::sessions::wait_until("the holder has the row", || {
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder' AND wait_event = 'PgSleep'",
        )
        .is_ok_and(|n| n == "1")
    });
    let waiter = test_support::sessions::spawn(&url, "waiter", "UPDATE users SET id = id WHERE id = 1");
    test_support::sessions::wait_until("the waiter waits", || test_support::sessions::lock_waiters(&pg) == 1);
    // The CLI asks psql for TLS on any host but localhost; the test server has none.
    let pg_command =
        |command: &str| cli.command().env("PGSSLMODE", "disable").args([command, "-a", "acme"]).output().unwrap();
    let blocking = pg_command("pg:blocking");
    assert!(blocking.status.success(), "{}", text(&blocking));
    let row =
        stdout(&blocking).lines().find(|l| l.trim_start().starts_with(&waiter.pid.to_string())).map(str::to_string);
    assert!(row.as_deref().is_some_and(|r| r.contains(&holder.pid.to_string())), "{}", text(&blocking));
    let locks = pg_command("pg:locks");
    assert!(locks.status.success(), "{}", text(&locks));
    assert!(stdout(&locks).contains(&holder.pid.to_string()), "{}", text(&locks));
    let resolved = sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path == "/actions/addon-attachments/resolve" && r.status == 200);
    assert!(resolved, "the database was resolved through the platform's action");
}

/// The app features the plan reads (`preboot`), as the CLI itself reads them from the sim.
#[test]
fn features_info_reads_preboot_as_the_cli_does() {
    let (sim, cli) = stuck_release();
    let out = cli.run(&["features:info", "preboot", "-a", "acme", "--json"]);
    assert!(out.status.success(), "{}", test_support::heroku_cli::text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["name"].as_str(), doc["enabled"].as_bool()), (Some("preboot"), Some(false)), "{doc}");
    sim.with(|w| w.set_feature("acme", "preboot", true));
    let out = cli.run(&["features:info", "preboot", "-a", "acme", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["enabled"], true, "{doc}");
    let out = cli.run(&["features", "-a", "acme"]);
    assert!(stdout(&out).contains("preboot"), "{}", test_support::heroku_cli::text(&out));
}
