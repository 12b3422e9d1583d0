//! The plan table, whole: a dyno list as heroku-sim's stuck-release scene serves it
//! (tests/fixtures), rendered at a fixed time and compared exactly with tests/snapshots.
//! After an intended change: `INSTA_UPDATE=always cargo nextest run -p safe-ps-kill --test golden`.

use std::path::PathBuf;

use heroku_api::Dyno;

fn here(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(p)
}

#[test]
fn the_plan_table_renders_as_its_golden_file() {
    console::set_colors_enabled(false);
    let dynos: Vec<Dyno> =
        serde_json::from_str(&std::fs::read_to_string(here("fixtures/stuck-release-dynos.json")).unwrap()).unwrap();
    let now = heroku_api::timestamp::parse_rfc3339("2026-11-22T11:48:47Z").unwrap();
    let release: Vec<Dyno> = dynos.iter().filter(|d| d.process_type == "release").cloned().collect();
    let mut sorted = dynos.clone();
    sorted.sort_by_key(|d| safe_ps_kill::resolve::natural_key(&d.name));
    let mut text = safe_ps_kill::plan_lines(&release, now).join("\n") + "\n\n";
    text += &(safe_ps_kill::plan_lines(&sorted, now).join("\n") + "\n");
    test_support::insta::assert_snapshot!("plan", text);
}
