//! The simulator plays a Fir app on the `cnb` stack as the pinned Heroku CLI reads one. Where
//! the published schema has no field (`generation`, `oci_image`, the `oci-images` route, the log
//! session's `type`), the simulator follows the CLI's reading of it (lib/apps/generation.js,
//! commands/pipelines/diff.js, lib/buildpacks/buildpacks.js, lib/run/log-displayer.js) — the
//! schema-fidelity suite checks everything else against the schema.

use std::time::{Duration, Instant};

use heroku_sim::{Sim, World};
use serde_json::{json, Value};

mod common;
use common::{json_of, raw, sdk_json_of};

/// acme on Fir and `cnb`, with the app's runtime (a `bundle`) under `dir`.
fn fir_world(dir: &std::path::Path) -> World {
    let mut w = World::default();
    w.add_app("acme");
    w.make_fir("acme", true);
    w.add_release("acme", "f1e2d3c4b5a6", "Deploy f1e2d3c4", Duration::from_secs(3600));
    w.add_formation("acme", "web", 2, "bundle exec puma", Duration::from_secs(600));
    w.timing.start_delay = Duration::from_millis(50);
    test_support::generation::install_runtime(&mut w, dir).unwrap();
    w
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Fir release names an OCI image and no slug; the image carries the commit (the CLI reads
/// `[0].commit`); the slug route knows nothing of it, and a slug cannot be released there.
#[test]
fn a_fir_release_runs_an_oci_image_that_carries_the_commit() {
    let dir = test_support::tempfile::tempdir().unwrap();
    let sim = Sim::start(fir_world(dir.path())).unwrap();
    // `oci_image` only under the 3.sdk variant, as the CLI asks (the schema has no such field).
    let (_, plain) = json_of(&sim, "GET", "/apps/acme/releases/2", None);
    assert!(plain.get("oci_image").is_none(), "{plain}");
    let (status, release) = sdk_json_of(&sim, "GET", "/apps/acme/releases/2", None);
    assert_eq!(status, 200, "{release}");
    assert_eq!(release["slug"], Value::Null, "{release}");
    let image = release["oci_image"]["id"].as_str().expect("an oci_image id").to_string();
    let (status, images) = sdk_json_of(&sim, "GET", &format!("/apps/acme/oci-images/{image}"), None);
    assert_eq!(status, 200, "{images}");
    assert_eq!(images[0]["commit"], "f1e2d3c4b5a6", "{images}");
    assert_eq!(json_of(&sim, "GET", &format!("/apps/acme/slugs/{image}"), None).0, 404);
    let (status, err) = json_of(&sim, "POST", "/apps/acme/releases", Some(json!({ "slug": image })));
    assert_eq!(status, 422, "{err}");
    assert!(err["message"].as_str().unwrap().contains("OCI images"), "{err}");

    // A Cedar app keeps its slug and has no image.
    sim.with(|w| w.apps.get_mut("acme").unwrap().generation = "cedar".into());
    let (_, release) = sdk_json_of(&sim, "GET", "/apps/acme/releases/2", None);
    assert_eq!(release["oci_image"], Value::Null, "{release}");
    assert!(release["slug"]["id"].is_string(), "{release}");
}

/// On `cnb` a one-off command finds the app's runtime only through `launcher`, which the CLI
/// prepends (lib/run/helpers.js): without it the app's tools are not found, with it the same
/// command runs. A process type (the release phase, the formation) is started by the launcher.
#[test]
fn a_cnb_one_off_without_launcher_fails_and_with_it_runs() {
    let dir = test_support::tempfile::tempdir().unwrap();
    let sim = Sim::start(fir_world(dir.path())).unwrap();
    let run = |command: &str| -> Value {
        let (status, dyno) = json_of(&sim, "POST", "/apps/acme/dynos", Some(json!({ "command": command })));
        assert_eq!(status, 201, "{dyno}");
        dyno
    };
    let exit_line = |name: &str| {
        let name = name.to_string();
        move |w: &World| {
            w.log_text("acme")
                .iter()
                .find(|l| l.contains(&format!("heroku[{name}]: Process exited with status")))
                .cloned()
        }
    };

    let bare = run("bundle exec echo migrated");
    let bare_name = bare["name"].as_str().unwrap().to_string();
    assert!(bare_name.starts_with("run-"), "a Fir one-off has a pod-style name: {bare_name}");
    let launched = run("launcher bundle exec echo migrated");
    let launched_name = launched["name"].as_str().unwrap().to_string();
    for name in [&bare_name, &launched_name] {
        let read = exit_line(name);
        wait_for("the one-off's exit", || sim.with(|w| read(w)).is_some());
    }
    let log = sim.with(|w| w.log_text("acme"));
    assert!(
        log.iter().any(|l| l.contains(&format!("app[{bare_name}]")) && l.contains("bundle: not found")),
        "{log:#?}"
    );
    assert!(sim.with(|w| exit_line(&bare_name)(w)).unwrap().ends_with("status 127"));
    assert!(log.iter().any(|l| l.ends_with(&format!("app[{launched_name}]: migrated"))), "{log:#?}");
    assert!(sim.with(|w| exit_line(&launched_name)(w)).unwrap().ends_with("status 0"));

    // On Cedar (heroku-24) the runtime is on PATH and there is no launcher.
    sim.with(|w| {
        let a = w.apps.get_mut("acme").unwrap();
        a.generation = "cedar".into();
        a.stack = "heroku-24".into();
    });
    let cedar = run("bundle exec echo on-cedar; launcher true");
    let name = cedar["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("run."), "{name}");
    let read = exit_line(&name);
    wait_for("the Cedar one-off's exit", || sim.with(|w| read(w)).is_some());
    let log = sim.with(|w| w.log_text("acme"));
    assert!(log.iter().any(|l| l.ends_with(&format!("app[{name}]: on-cedar"))), "{log:#?}");
    assert!(log.iter().any(|l| l.contains(&format!("app[{name}]")) && l.contains("launcher: not found")), "{log:#?}");
}

/// A Fir log session has no history (`lines` is ignored), filters by `dyno` name or `type`,
/// always tails, and ends after the configured time (the CLI re-creates it).
#[test]
fn a_fir_log_session_has_no_history_and_ends_after_its_time() {
    let dir = test_support::tempfile::tempdir().unwrap();
    let mut w = fir_world(dir.path());
    w.timing.fir_log_session = Duration::from_millis(1500);
    let sim = Sim::start(w).unwrap();
    let web = sim.dyno_names("acme").into_iter().find(|n| n.starts_with("web-")).unwrap();
    sim.with(|w| w.log_line("acme", "app", &web, "before the session"));
    let (status, session) =
        json_of(&sim, "POST", "/apps/acme/log-sessions", Some(json!({ "type": "web", "lines": 1500, "tail": false })));
    assert_eq!(status, 201, "{session}");
    let url = session["logplex_url"].as_str().unwrap();
    let path = url.split_once("://").and_then(|(_, r)| r.split_once('/')).map(|(_, p)| format!("/{p}")).unwrap();
    let (status, body, took) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let began = Instant::now();
            let (status, _, body) = raw(&sim, "GET", &path, "", None);
            (status, body, began.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        sim.with(|w| {
            w.log_line("acme", "app", &web, "after the session");
            w.log_line("acme", "app", "run-0000000000-abcde", "another dyno's line");
        });
        reader.join().unwrap()
    });
    assert_eq!(status, 200);
    assert!(!body.contains("before the session"), "no history on Fir:\n{body}");
    assert!(body.contains("after the session"), "tails although tail was false:\n{body}");
    assert!(!body.contains("another dyno's line"), "only the type asked for:\n{body}");
    assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(10), "ended after {took:?}");
}
