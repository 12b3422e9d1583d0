//! safe-ps-kill against a Cedar app and a Fir app on `cnb`: the same test bodies, two worlds.
//! Fir names dynos like pods and starts a replacement under a new name; a type resolves to
//! whatever names the app has, and every stop goes by id.

use std::time::Duration;

use heroku_sim::{scenario, Sim, World};
use serde_json::Value;
use test_support::generation::Generation;
use test_support::on_both_generations;
use test_support::tool::{OutputExt, Tool};

fn world(g: Generation) -> World {
    let mut w = scenario("stuck-release").unwrap();
    g.apply(&mut w, "acme");
    w.timing.stop_delay = Duration::from_millis(200);
    w
}

fn tool(sim: &Sim) -> Tool {
    Tool::new(env!("CARGO_BIN_EXE_safe-ps-kill")).against(sim)
}

fn ids_of_type(sim: &Sim, ptype: &str) -> Vec<String> {
    sim.with(|w| w.apps["acme"].dynos.iter().filter(|d| d.process_type == ptype).map(|d| d.id.clone()).collect())
}

fn stopped_ids(sim: &Sim) -> Vec<String> {
    let mut ids: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/actions/stop"))
        .map(|r| r.path.trim_start_matches("/apps/acme/dynos/").trim_end_matches("/actions/stop").to_string())
        .collect();
    ids.sort();
    ids
}

on_both_generations! {
    /// `web --all`: both web dynos, whatever their names, stopped by id, seen gone, and the
    /// replacement the formation started is named (same name on Cedar, a new pod on Fir).
    fn a_type_resolves_to_its_dynos_each_stopped_by_id_and_its_replacement_named(g) {
        let sim = Sim::start(world(g)).unwrap();
        let mut web = ids_of_type(&sim, "web");
        web.sort();
        let out = tool(&sim).run(&["web", "--all", "-a", "acme", "--confirm", "acme", "--json", "-v"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        let platform = if g == Generation::Fir { "Fir (stack cnb)" } else { "Cedar (stack heroku-24)" };
        assert!(out.stderr_text().contains(&format!("acme runs on {platform}")), "-v says it: {}", out.dump());
        assert_eq!(stopped_ids(&sim), web, "each web dyno stopped by id, once");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let _: safe_ps_kill::report::KillReport = serde_json::from_value(doc.clone()).expect("a KillReport");
        assert_eq!(doc["platform"]["generation"], g.name(), "{doc}");
        assert!(doc["outcomes"].as_array().unwrap().iter().all(|o| o["stopped"] == true), "{doc}");
        let err = out.stderr_text();
        match g {
            Generation::Cedar => assert!(err.contains("its formation started a new web.1"), "{err}"),
            Generation::Fir => {
                let line = err.lines().find(|l| l.contains("stopped (gone after")).unwrap_or_else(|| panic!("{err}"));
                assert!(line.contains("its formation started web-") && line.contains("in its place"), "{line}");
            }
        }
    }
}

on_both_generations! {
    /// `release` finds the release dyno by its type (`release.2343` on Cedar, a pod on Fir),
    /// names the release it runs, stops it by id, and the release fails.
    fn the_release_dyno_is_found_by_type_and_stopping_it_fails_its_release(g) {
        let sim = Sim::start(world(g)).unwrap();
        let id = ids_of_type(&sim, "release").pop().unwrap();
        let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme"]);
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert!(out.stdout_text().contains("stopping it marks v2 failed, and acme stays on v1"), "{}", out.dump());
        assert_eq!(stopped_ids(&sim), vec![id]);
        let status = sim.with(|w| w.apps["acme"].releases.iter().find(|r| r.version == 2).unwrap().status.clone());
        assert_eq!(status, "failed");
    }
}

on_both_generations! {
    /// `web.1` is a dyno on Cedar; on Fir there is no such name, and the refusal says how Fir
    /// names dynos and that the type works on both. Nothing is stopped.
    fn a_cedar_style_name_on_fir_is_refused_with_how_fir_names_dynos(g) {
        let sim = Sim::start(world(g)).unwrap();
        let out = tool(&sim).run(&["web.1", "-a", "acme", "--confirm", "acme"]);
        match g {
            Generation::Cedar => assert_eq!(out.code(), 0, "{}", out.dump()),
            Generation::Fir => {
                assert_eq!(out.code(), 2, "{}", out.dump());
                let err = out.stderr_text();
                assert_eq!(err.trim().lines().count(), 1, "{err}");
                assert!(err.contains("acme is on Fir (stack cnb)") && err.contains("pass the process type, e.g. `web`"), "{err}");
                assert!(stopped_ids(&sim).is_empty());
            }
        }
    }
}
