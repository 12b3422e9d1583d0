//! The crate doc's table of platform behaviours names, for each, the test that holds it: every
//! test named there exists, so the table cannot point at a test that was renamed or removed.

#[test]
fn every_test_the_behaviour_table_names_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = std::fs::read_to_string(root.join("crates/heroku-sim/src/lib.rs")).unwrap();
    let rows: Vec<&str> = lib.lines().filter(|l| l.starts_with("//! | ") && l.contains("::")).collect();
    assert!(rows.len() >= 20, "the table has {} rows", rows.len());
    for row in rows {
        let cell = row.trim_end_matches(" |").rsplit(" | ").next().unwrap().trim_matches('`');
        let (file, test) = cell.rsplit_once("::").unwrap_or_else(|| panic!("no file::test in {row}"));
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e} (row: {row})"));
        assert!(text.contains(&format!("fn {test}(")), "{file} has no test {test} (row: {row})");
    }
}
