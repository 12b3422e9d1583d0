//! A real `git push heroku main` to the simulator, as the platform answers it: the build and
//! the release phase stream as `remote:` lines, the push returns only when the release phase
//! has ended, and it exits 0 whether the release phase succeeded or failed; only a failed
//! build rejects it.

use std::process::Output;
use std::time::{Duration, Instant};

use heroku_sim::{Sim, World};

use test_support::app_repo::AppRepo;

fn repo(sim: &Sim, procfile: Option<&str>) -> AppRepo {
    AppRepo::new(sim, "acme", procfile).unwrap()
}

fn sim() -> Sim {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(3600));
    w.timing.start_delay = Duration::from_millis(50);
    Sim::start(w).unwrap()
}

fn push(r: &AppRepo) -> (Output, String, Duration) {
    let started = Instant::now();
    let out = r.command(&["push", "heroku", "main"]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text, started.elapsed())
}

fn newest(sim: &Sim) -> (u64, String, String) {
    sim.with(|w| {
        let r = w.apps["acme"].releases.last().unwrap();
        (r.version, r.status.clone(), r.description.clone())
    })
}

#[test]
fn a_push_streams_the_release_phase_and_returns_only_when_it_has_ended() {
    let sim = sim();
    let r = repo(&sim, Some("web: puma\nrelease: echo '== migrating'; sleep 1; echo '== migrated'\n"));
    let (out, text, took) = push(&r);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "remote: -----> Discovering process types",
        "remote:        Procfile declares types -> web, release",
        "remote: Verifying deploy... done.",
        "remote: Running release command...",
        "remote: == migrating",
        "remote: == migrated",
        "remote: Waiting for release.... done.",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert!(took >= Duration::from_secs(1), "the push waited for the release phase ({took:?})");
    let (_, status, description) = newest(&sim);
    assert_eq!(status, "succeeded", "the release phase had ended when the push returned");
    let head = r.head().unwrap();
    assert_eq!(description, format!("Deploy {}", &head[..8]));
    let slug_commit = sim.with(|w| w.apps["acme"].slugs.last().unwrap().commit.clone());
    assert_eq!(slug_commit.as_deref(), Some(head.as_str()), "the slug is the pushed commit");
}

#[test]
fn a_failed_release_phase_still_exits_0_as_on_the_platform() {
    let sim = sim();
    let r = repo(&sim, Some("web: puma\nrelease: echo 'PG::LockNotAvailable' >&2; exit 1\n"));
    let (out, text, _) = push(&r);
    assert_eq!(out.status.code(), Some(0), "git push exits 0 though the release phase failed:\n{text}");
    assert!(text.contains("remote: Waiting for release.... failed."), "{text}");
    assert!(text.contains("remote: PG::LockNotAvailable"), "{text}");
    let (version, status, _) = newest(&sim);
    assert_eq!(status, "failed");
    assert_ne!(sim.with(|w| w.apps["acme"].current_version()), version, "the app stays on its release");
}

#[test]
fn a_push_without_a_release_phase_succeeds_at_once() {
    let sim = sim();
    let before = newest(&sim).0;
    let r = repo(&sim, Some("web: puma\n"));
    let (out, text, _) = push(&r);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("Running release command"), "{text}");
    let (version, status, _) = newest(&sim);
    assert_eq!((version, status.as_str()), (before + 1, "succeeded"));
}

#[test]
fn a_build_that_fails_rejects_the_push_and_creates_no_release() {
    let sim = sim();
    let before = newest(&sim).0;
    let r = repo(&sim, None);
    let (out, text, _) = push(&r);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("remote:  !     No default language could be detected for this app."), "{text}");
    assert!(text.contains("pre-receive hook declined"), "{text}");
    assert_eq!(newest(&sim).0, before, "no release");
}

#[test]
fn the_procfile_is_read_as_the_platform_reads_it() {
    let types = heroku_sim::git::parse_procfile(
        "# comment\nweb: bundle exec puma -C config/puma.rb\n\nrelease: rake db:migrate\nbad line\n: nothing\n",
    );
    assert_eq!(
        types,
        vec![
            ("web".to_string(), "bundle exec puma -C config/puma.rb".to_string()),
            ("release".to_string(), "rake db:migrate".to_string())
        ]
    );
}
