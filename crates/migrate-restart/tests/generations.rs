//! migrate-restart against a Cedar app and a Fir app on `cnb`: the same test bodies, two
//! worlds. On Fir the command runs under `launcher` (without it the app's `bundle` is not
//! found), the log session is opened before the dyno exists (Fir sessions carry no history),
//! dynos have pod names that change on restart, and `--attach` is refused (Fir one-offs are
//! reached over SSH).

use std::time::Duration;

use heroku_sim::{Sim, World};
use test_support::generation::{install_runtime, Generation};
use test_support::on_both_generations;
use test_support::tool::{OutputExt, Tool};
use test_support::PgCluster;

struct Setup {
    pg: PgCluster,
    sim: Sim,
    tool: Tool,
    _dir: test_support::tempfile::TempDir,
}

fn setup(g: Generation, tweak: impl FnOnce(&mut World)) -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let dir = test_support::tempfile::tempdir().unwrap();
    let mut w = World::default();
    w.add_app("acme");
    g.apply(&mut w, "acme");
    w.add_formation("acme", "web", 2, "bundle exec puma", Duration::from_secs(18 * 3600));
    w.add_formation("acme", "worker", 1, "bundle exec sidekiq", Duration::from_secs(17 * 3600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    w.timing.start_delay = Duration::from_millis(100);
    w.timing.stop_delay = Duration::from_millis(100);
    install_runtime(&mut w, dir.path()).unwrap();
    tweak(&mut w);
    let sim = Sim::start(w).unwrap();
    let tool = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).api(&sim.url(), &sim.token());
    let ca = tool.home().join("sim-ca.pem");
    sim.write_ca(&ca).unwrap();
    let tool = tool.env("SSL_CERT_FILE", ca.to_str().unwrap());
    Setup { pg, sim, tool, _dir: dir }
}

/// The app's migration as its framework runs it: through the app's `bundle` (the runtime).
fn bundled_migration(pg: &PgCluster, sql: &str) -> String {
    format!("bundle exec {}", test_support::acme::psql_migration(pg, sql))
}

fn formation_names(sim: &Sim) -> Vec<String> {
    let mut names: Vec<String> =
        sim.with(|w| w.apps["acme"].dynos.iter().filter(|d| d.slot.is_some()).map(|d| d.name.clone()).collect());
    names.sort();
    names
}

on_both_generations! {
    /// The migration runs through the app's runtime, the app restarts, every dyno is verified
    /// by the names it has now; the report says which platform applied.
    fn a_migration_runs_through_the_apps_runtime_restarts_and_verifies(g) {
        let s = setup(g, |_| {});
        let before = formation_names(&s.sim);
        let cmd = bundled_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
        let out = s.tool.run(&["-a", "acme", "--command", &cmd, "--confirm", "acme", "--json", "-v"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let doc = out.json();
        let _: migrate_restart::report::MigrateReport = serde_json::from_value(doc.clone()).expect("a MigrateReport");
        assert_eq!(doc["platform"]["generation"], g.name(), "{doc}");
        assert_eq!(doc["platform"]["stack"], g.stack(), "{doc}");
        assert!(out.stderr_text().contains(&format!("acme runs on {}", if g == Generation::Fir { "Fir (stack cnb)" } else { "Cedar (stack heroku-24)" })), "{}", out.dump());
        let cols = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'";
        assert_eq!(s.pg.psql("postgres", cols).unwrap(), "1");

        let requests = s.sim.requests();
        let create = requests.iter().position(|r| r.method == "POST" && r.path == "/apps/acme/dynos").unwrap();
        let command = requests[create].body.as_ref().unwrap()["command"].as_str().unwrap().to_string();
        let session = requests.iter().position(|r| r.path == "/apps/acme/log-sessions").expect("followed through the log");
        match g {
            Generation::Cedar => {
                assert!(!command.contains("launcher"), "{command}");
                assert!(session > create, "Cedar: the session is opened for the dyno, with history");
                assert_eq!(requests[session].body.as_ref().unwrap()["lines"], 1500);
            }
            Generation::Fir => {
                // `launcher` is the first word (as the Heroku CLI sends it): the whole line — the
                // session name, the guard's check, the migration, the exit marker — runs under it.
                assert!(command.starts_with("launcher bash -c '(export PGAPPNAME="), "{command}");
                assert!(command.contains("else sh -c '\\''bundle exec "), "the user's text as its own argument: {command}");
                assert!(command.trim_end().ends_with("exit $s'"), "{command}");
                assert!(session < create, "Fir: the session is open before the dyno exists (no history)");
                assert_eq!(requests[session].body.as_ref().unwrap()["type"], "run");
            }
        }
        let restarted: Vec<String> = doc["restart"]["dynos"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect();
        let mut now = formation_names(&s.sim);
        now.sort();
        let mut restarted_sorted = restarted.clone();
        restarted_sorted.sort();
        assert_eq!(restarted_sorted, now, "verified by the names the dynos have now");
        assert_eq!(doc["restart"]["verified"], true);
        if g == Generation::Fir {
            assert!(before.iter().all(|b| !now.contains(b)), "Fir names pods anew on restart: {before:?} → {now:?}");
        } else {
            assert_eq!(before, now);
        }
    }
}

on_both_generations! {
    /// A log session that ends mid-run (a dropped stream on Cedar, a Fir session's end) is
    /// re-opened and the run is followed to its exit. Cedar re-opens with history: every line,
    /// once. A Fir session has none: after the first end (whose gap is said if a line may have
    /// fallen in it) a standby session opened at half the lifetime seen takes over each time,
    /// so nothing more is lost.
    fn a_log_session_that_ends_mid_run_is_reopened(g) {
        let s = setup(g, |w| {
            // Sessions end every 1.5s; the run takes ~4s, so Fir switches sessions twice more.
            w.timing.fir_log_session = Duration::from_millis(1500);
            if g == Generation::Cedar {
                w.faults.log_drop_after = Some(3);
            }
        });
        let cmd = "bundle exec sh -c 'for i in $(seq 1 10); do echo \"step $i\"; sleep 0.4; done'";
        let out = s.tool.run(&["-a", "acme", "--command", cmd, "--confirm", "acme", "--no-preflight", "--restart", "none", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let doc = out.json();
        let reopens = doc["attempts"][0]["log_reopens"].as_u64().unwrap();
        let text = out.stderr_text();
        let gaps = text.matches("may be missing").count();
        match g {
            Generation::Cedar => {
                assert!(reopens >= 1, "{doc}");
                assert_eq!(gaps, 0, "{text}");
            }
            Generation::Fir => {
                assert!(reopens >= 2, "{doc}");
                assert!(gaps <= 1, "only the first end, before a lifetime was seen:\n{text}");
            }
        }
        for i in 1..=10 {
            let seen = text.matches(&format!("step {i}\n")).count();
            // The first session ends at ~1.5s: later lines are all covered by a standby.
            let may_be_lost = g == Generation::Fir && i <= 5 && gaps == 1;
            assert!(seen == 1 || (seen == 0 && may_be_lost), "step {i} seen {seen} times:\n{text}");
        }
        assert!(text.contains("✓ migration finished"), "{text}");
    }
}

on_both_generations! {
    /// `--attach` goes through the rendezvous on Cedar; on Fir a one-off is reached over SSH,
    /// so it is refused in one line, with the generation and what to do, and nothing starts.
    fn attach_works_on_cedar_and_is_refused_on_fir(g) {
        let s = setup(g, |_| {});
        let out = s.tool.run(&["-a", "acme", "--command", "bundle exec true", "--confirm", "acme", "--no-preflight", "--restart", "none", "--attach"]);
        match g {
            Generation::Cedar => assert_eq!(out.code(), 0, "{}", out.dump()),
            Generation::Fir => {
                assert_eq!(out.code(), 5, "{}", out.dump());
                let err = out.stderr_text();
                assert_eq!(err.trim().lines().count(), 1, "{err}");
                assert!(err.contains("acme is on Fir (stack cnb)") && err.contains("over SSH") && err.contains("run without --attach"), "{err}");
                assert!(!s.sim.requests().iter().any(|r| r.method == "POST"), "nothing was started");
            }
        }
    }
}

on_both_generations! {
    /// `check` names the dynos that booted before the schema change by their names (pod names on
    /// Fir), from each dyno's `created_at`.
    fn check_names_dynos_that_predate_the_change(g) {
        let s = setup(g, |_| {});
        let out = s.tool.run(&["check", "-a", "acme", "--since", "10m", "--json"]);
        assert_eq!(out.code(), 3, "{}", out.dump());
        let doc = out.json();
        let mut stale: Vec<String> = doc["stale"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_string()).collect();
        stale.sort();
        assert_eq!(stale, formation_names(&s.sim));
    }
}

on_both_generations! {
    /// `follow` after the run has ended: on Cedar the log's history still holds its output and
    /// exit, so the run is concluded; a Fir session has no history, so it says at once that the
    /// outcome cannot be read back (3), restarts nothing, and points at `check`.
    fn following_a_run_that_already_ended(g) {
        let s = setup(g, |_| {});
        let out = s.tool.run(&["-a", "acme", "--command", "bundle exec echo migrated", "--confirm", "acme", "--no-preflight", "--restart", "none", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let dyno = out.json()["attempts"][0]["dyno"].as_str().unwrap().to_string();
        test_support::sessions::wait_until("the one-off is gone", || !s.sim.dyno_names("acme").contains(&dyno));
        let started = std::time::Instant::now();
        let out = s.tool.run(&["follow", "-a", "acme", &dyno, "--restart", "none", "--confirm", "acme"]);
        match g {
            Generation::Cedar => {
                assert_eq!(out.code(), 0, "{}", out.dump());
                assert!(out.stderr_text().contains("migrated") || out.stdout_text().contains("migrated"), "{}", out.dump());
            }
            Generation::Fir => {
                assert_eq!(out.code(), 3, "{}", out.dump());
                let text = format!("{}{}", out.stdout_text(), out.stderr_text());
                assert!(text.contains("whose log sessions carry no history") && text.contains("migrate-restart check -a acme"), "{text}");
                assert!(started.elapsed() < Duration::from_secs(5), "said at once, not after a wait");
                assert!(!s.sim.requests().iter().any(|r| r.method == "DELETE"), "nothing restarted");
            }
        }
    }
}
