//! Whole output of real lock snapshots (tests/fixtures, recorded from the incident scenes by
//! pg-locks' `record_fixtures`) rendered by the pure renderers, compared whole with
//! tests/snapshots — alignment, order and stray lines included, and exactly (the fixtures
//! hold fixed data, so nothing is filtered). After an intended change:
//! `INSTA_UPDATE=always cargo nextest run -p pg-blockers --test golden`, then review the diff.

use std::path::PathBuf;

use cli_kit::{DatabaseSource, ResolvedDatabase};
use pg_blockers::{analyse, render, report};
use pg_locks::Snapshot;

fn here(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(dir)
}

fn database() -> ResolvedDatabase {
    ResolvedDatabase {
        url: "postgres://u:secret@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d8a3k2".into(),
        source: DatabaseSource::App {
            app: "acme".into(),
            config_var: "DATABASE_URL".into(),
            addon: Some("postgresql-teal-12345".into()),
        },
        dbname: "d8a3k2".into(),
        host: "ec2-1-2-3-4.compute-1.amazonaws.com".into(),
    }
}

#[test]
fn every_fixture_renders_as_its_golden_file_for_people_and_for_scripts() {
    console::set_colors_enabled(false);
    let mut names: Vec<String> = std::fs::read_dir(here("fixtures"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "fixtures missing: {names:?}");
    let db = database();
    for name in &names {
        let text = std::fs::read_to_string(here("fixtures").join(format!("{name}.json"))).unwrap();
        let snap: Snapshot = serde_json::from_str(&text).unwrap();
        let (forest, recs) = analyse(&snap, None);
        let human = render::human(&db, &snap, &forest, &recs).join("\n") + "\n";
        let json = serde_json::to_string_pretty(&report::blockers_report(&db, &snap, &forest, &recs)).unwrap() + "\n";
        assert!(!human.contains("secret") && !json.contains("secret"), "{name}: the password leaked");
        test_support::insta::assert_snapshot!(format!("{name}-human"), human);
        test_support::insta::assert_snapshot!(format!("{name}-json"), json);
    }
}

/// `--min-wait` keeps only trees where someone waited that long (logic in the forest).
#[test]
fn min_wait_drops_younger_trees() {
    console::set_colors_enabled(false);
    let text = std::fs::read_to_string(here("fixtures").join("incident-000.json")).unwrap();
    let snap: Snapshot = serde_json::from_str(&text).unwrap();
    let (all, _) = analyse(&snap, None);
    assert_eq!(all.blocked_total, 41);
    let (none, recs) = analyse(&snap, Some(std::time::Duration::from_secs(24 * 3600)));
    assert!(none.is_empty() && recs.0.is_none());
    let human = render::human(&database(), &snap, &none, &recs);
    assert!(human[0].contains("(41 waiting below --min-wait)"), "{human:?}");
}
