//! The simulator's release phase, through HTTP as a client sees it: pending while the release
//! command runs on `release.N`, then succeeded (current, the formation restarts onto it) or
//! failed (the previous release stays current, nothing restarts); the output stream while it
//! runs and after, resumable with Range; the time limit.

use std::time::{Duration, Instant};

mod common;
use common::{json_of, raw};

use heroku_sim::{Sim, World};
use serde_json::{json, Value};

fn world() -> World {
    let mut w = World::default();
    w.add_app("acme");
    w.add_release("acme", "abc1234", "Deploy abc1234", Duration::from_secs(3600));
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(600));
    w.set_config_var("acme", "GREETING", "from-config");
    w.timing.start_delay = Duration::from_millis(50);
    w
}

/// The path part of an output_stream_url from this simulator.
fn stream_path(release: &Value) -> String {
    let url = release["output_stream_url"].as_str().unwrap_or_else(|| panic!("no output_stream_url: {release}"));
    url.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map(|(_, p)| format!("/{p}")).unwrap()
}

/// Reads a release's output; a 404 means the command has not started yet (the CLI says so and
/// tries again), so it is retried for a while.
fn output(sim: &Sim, release: &Value, range: &str) -> (u16, String, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = raw(sim, "GET", &stream_path(release), range, None);
        if got.0 != 404 || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_status(sim: &Sim, version: u64, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, r) = json_of(sim, "GET", &format!("/apps/acme/releases/{version}"), None);
        if r["status"] == want {
            return r;
        }
        assert!(Instant::now() < deadline, "release v{version} never {want}: {r}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_release_with_a_release_command_is_pending_until_it_succeeds_then_the_formation_restarts_onto_it() {
    let sim = Sim::start(world()).unwrap();
    let slug = sim.with(|w| {
        w.add_slug(
            "acme",
            "feed1234",
            "add nickname",
            &[("web", "puma"), ("release", "echo migrating $GREETING; sleep 0.5; echo done")],
        )
    });
    let (status, release) =
        json_of(&sim, "POST", "/apps/acme/releases", Some(json!({ "slug": slug, "description": "Deploy feed1234" })));
    assert_eq!(status, 201, "{release}");
    assert_eq!(release["status"], "pending", "{release}");
    assert_eq!(release["current"], false, "{release}");
    let version = release["version"].as_u64().unwrap();
    // The release dyno runs the pending release; the web dynos still run the previous one.
    let (_, dynos) = json_of(&sim, "GET", "/apps/acme/dynos", None);
    let release_dyno = dynos.as_array().unwrap().iter().find(|d| d["type"] == "release").expect("a release dyno");
    assert!(release_dyno["name"].as_str().unwrap().starts_with("release."), "{release_dyno}");
    assert_eq!(release_dyno["release"]["version"], version);
    assert!(dynos
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] == "web")
        .all(|d| d["release"]["version"] == version - 1));
    // The output streams while it runs, and the stream ends with the command.
    let (status, head, text) = output(&sim, &release, "");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    assert_eq!(text, "migrating from-config\ndone\n");
    let done = wait_status(&sim, version, "succeeded");
    assert_eq!(done["current"], true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, dynos) = json_of(&sim, "GET", "/apps/acme/dynos", None);
        let dynos = dynos.as_array().unwrap().clone();
        if dynos.iter().all(|d| d["type"] == "web" && d["release"]["version"] == version && d["state"] == "up") {
            break;
        }
        assert!(Instant::now() < deadline, "the formation did not restart onto v{version}: {dynos:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // After the first release phase, the formation has a release type (releases:retry needs it).
    let (_, formation) = json_of(&sim, "GET", "/apps/acme/formation", None);
    assert!(formation.as_array().unwrap().iter().any(|f| f["type"] == "release" && f["quantity"] == 0), "{formation}");
    // The whole output stays, and a Range resumes it.
    let (status, _, rest) = output(&sim, &release, "Range: bytes=10-\r\n");
    assert_eq!((status, rest.as_str()), (206, "from-config\ndone\n"));
    let log = sim.with(|w| w.log_text("acme"));
    let name = release_dyno["name"].as_str().unwrap();
    assert!(log.iter().any(|l| l.ends_with(&format!("app[{name}]: migrating from-config"))), "{log:?}");
    assert!(log.iter().any(|l| l.ends_with(&format!("heroku[{name}]: Process exited with status 0"))), "{log:?}");
}

#[test]
fn a_failed_release_command_leaves_the_previous_release_current_and_restarts_nothing() {
    let sim = Sim::start(world()).unwrap();
    let before: Vec<(String, std::time::SystemTime)> =
        sim.with(|w| w.apps["acme"].dynos.iter().map(|d| (d.id.clone(), d.created_at)).collect());
    let version = sim.push(
        "acme",
        "bad00001",
        "broken migration",
        &[("web", "puma"), ("release", "echo 'PG::LockNotAvailable' >&2; exit 1")],
    );
    let failed = wait_status(&sim, version, "failed");
    assert_eq!(failed["current"], false);
    let (_, current) = json_of(&sim, "GET", &format!("/apps/acme/releases/{}", version - 1), None);
    assert_eq!(current["current"], true, "{current}");
    let (_, _, text) = output(&sim, &failed, "");
    assert_eq!(text, "PG::LockNotAvailable\n");
    sim.with(|w| {
        let a = &w.apps["acme"];
        let after: Vec<(String, std::time::SystemTime)> =
            a.dynos.iter().map(|d| (d.id.clone(), d.created_at)).collect();
        assert_eq!(after, before, "no dyno may restart");
        assert!(a.dynos.iter().all(|d| d.release_version == version - 1));
    });
}

#[test]
fn the_release_phase_is_stopped_at_its_time_limit_and_a_stopped_release_dyno_fails_the_release() {
    let mut w = world();
    w.timing.release_phase_limit = Duration::from_millis(300);
    let sim = Sim::start(w).unwrap();
    let started = Instant::now();
    let version = sim.push("acme", "slow0001", "slow", &[("web", "puma"), ("release", "sleep 30")]);
    wait_status(&sim, version, "failed");
    assert!(started.elapsed() < Duration::from_secs(5), "the limit did not stop it: {:?}", started.elapsed());
    assert!(sim.with(|w| w.log_text("acme")).iter().any(|l| l.ends_with("Process exited with status 143")));

    // A stop of the release dyno by name ends its command: the release fails.
    let sim = Sim::start(world()).unwrap();
    let version = sim.push("acme", "slow0002", "slow", &[("web", "puma"), ("release", "sleep 30")]);
    let name = sim.with(|w| w.apps["acme"].dynos.iter().find(|d| d.process_type == "release").unwrap().name.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.with(|w| w.apps["acme"].dynos.iter().any(|d| d.name == name && d.process.is_none())) {
        assert!(Instant::now() < deadline, "the release command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, _) = json_of(&sim, "POST", &format!("/apps/acme/dynos/{name}/actions/stop"), None);
    assert_eq!(status, 202);
    wait_status(&sim, version, "failed");
}

#[test]
fn an_unknown_output_stream_is_404() {
    let sim = Sim::start(world()).unwrap();
    let (status, _, _) = raw(&sim, "GET", "/release-output/nope", "", None);
    assert_eq!(status, 404);
}

/// The stuck-release scenario is a release phase under way: v2 pending on release.2343, the
/// formation on v1; stopping the dyno by id fails v2 and leaves v1 current.
#[test]
fn in_the_stuck_release_scenario_stopping_the_release_dyno_fails_its_release() {
    let mut w = heroku_sim::scenario("stuck-release").unwrap();
    w.timing.stop_delay = Duration::from_millis(50);
    let sim = Sim::start(w).unwrap();
    let (_, v2) = json_of(&sim, "GET", "/apps/acme/releases/2", None);
    assert_eq!((v2["status"].as_str(), v2["current"].as_bool()), (Some("pending"), Some(false)), "{v2}");
    let id = sim.with(|w| w.dyno_mut("acme", "release.2343").id.clone());
    assert_eq!(sim.with(|w| w.dyno_mut("acme", "release.2343").release_version), 2);
    let (status, _) = json_of(&sim, "POST", &format!("/apps/acme/dynos/{id}/actions/stop"), None);
    assert_eq!(status, 202);
    wait_status(&sim, 2, "failed");
    let (_, v1) = json_of(&sim, "GET", "/apps/acme/releases/1", None);
    assert_eq!(v1["current"], true);
}

/// A newer release supersedes a pending one: the pending one becomes `expired` and stays so
/// even when its command then succeeds; the newer one becomes current.
#[test]
fn a_newer_release_supersedes_a_pending_one_which_expires() {
    let sim = Sim::start(world()).unwrap();
    let first = sim.push("acme", "aaaa1111", "first", &[("web", "puma"), ("release", "sleep 1; echo first")]);
    let second = sim.push("acme", "bbbb2222", "second", &[("web", "puma"), ("release", "echo second")]);
    let (_, r) = json_of(&sim, "GET", &format!("/apps/acme/releases/{first}"), None);
    assert_eq!(r["status"], "expired", "{r}");
    wait_status(&sim, second, "succeeded");
    std::thread::sleep(Duration::from_millis(1500));
    let (_, r) = json_of(&sim, "GET", &format!("/apps/acme/releases/{first}"), None);
    assert_eq!(r["status"], "expired", "its command's success does not revive it: {r}");
    assert_eq!(sim.with(|w| w.apps["acme"].current_version()), second);
}

/// A release made by an add-on's config change skips the release phase: succeeded at once,
/// current, no output stream. A user's config change runs the release phase with the new value.
#[test]
fn an_addon_config_change_skips_the_release_phase_and_a_users_runs_it() {
    let sim = Sim::start(world()).unwrap();
    let pushed = sim.push("acme", "cccc3333", "greet", &[("web", "puma"), ("release", "echo hello $GREETING")]);
    wait_status(&sim, pushed, "succeeded");
    let addon = sim.with(|w| {
        w.addon_config_change("acme", "heroku-postgresql", "DATABASE_URL", "postgres://u:p@new-host/db", Instant::now())
    });
    let (_, r) = json_of(&sim, "GET", &format!("/apps/acme/releases/{addon}"), None);
    assert_eq!((r["status"].as_str(), r["current"].as_bool()), (Some("succeeded"), Some(true)), "{r}");
    assert!(r["output_stream_url"].is_null(), "no release phase: {r}");
    assert_eq!(r["description"], "Update DATABASE_URL by heroku-postgresql");
    let (status, _) = json_of(&sim, "PATCH", "/apps/acme/config-vars", Some(json!({ "GREETING": "from-config-set" })));
    assert_eq!(status, 200);
    let newest = sim.with(|w| w.apps["acme"].releases.last().unwrap().version);
    let (_, user) = json_of(&sim, "GET", &format!("/apps/acme/releases/{newest}"), None);
    assert!(user["version"].as_u64().unwrap() > addon, "{user}");
    let (_, _, text) = output(&sim, &user, "");
    assert_eq!(text, "hello from-config-set\n", "the release phase ran with the new value");
}
