//! The window's pure renderers, whole: the decision, what a held window holds, and the restore
//! command, from a journal fixture, compared exactly with tests/snapshots. After an intended
//! change: `INSTA_UPDATE=always cargo nextest run -p maintenance-window --test golden`.

use std::path::PathBuf;

use maintenance_window::journal::Journal;
use maintenance_window::plan::Decision;

fn here(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(p)
}

#[test]
fn the_window_renders_as_its_golden_file() {
    console::set_colors_enabled(false);
    let j: Journal =
        serde_json::from_str(&std::fs::read_to_string(here("fixtures/held-window.json")).unwrap()).unwrap();
    let decision = |files: &[&str]| Decision {
        base: "4c7d8dfdf2731e0c5b1b2f0e9e1c4d1a2b3c4d5e".into(),
        base_source: "the slug of acme's current release v42".into(),
        target: "HEAD".into(),
        pathspecs: vec!["db/migrate".into(), "db/schema.rb".into(), "db/structure.sql".into()],
        kind: "rails".into(),
        files: files.iter().map(|f| f.to_string()).collect(),
        needed: !files.is_empty(),
        release_version: Some(42),
    };
    let mut lines = maintenance_window::decision_lines("acme", &decision(&["db/migrate/20261122_add_nickname.rb"]));
    lines.extend(maintenance_window::decision_lines("acme", &decision(&[])));
    lines.extend(maintenance_window::window::describe(&j));
    lines.push(maintenance_window::live::restore_command(&j));
    let text = lines.join("\n") + "\n";
    test_support::insta::assert_snapshot!("window", text);
}
