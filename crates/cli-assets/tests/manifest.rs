//! The plugin's committed manifest is what the binaries' clap definitions say today.

#[test]
fn plugin_manifest_matches_the_binaries() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugin-shim/manifest.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == cli_assets::manifest_text(),
        "plugin-shim/manifest.json has drifted from the binaries' flags: run `cargo run -p cli-assets -- manifest > plugin-shim/manifest.json` and commit it"
    );
}

#[test]
fn every_command_has_flags_examples_and_the_app_flag() {
    let m = cli_assets::manifest();
    for c in m["commands"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let flags: Vec<&str> = c["flags"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert!(flags.contains(&"app") && flags.contains(&"remote"), "{id}: {flags:?}");
        if !id.starts_with("maintenance:window:") && id != "migrate:check" {
            assert!(!c["examples"].as_array().unwrap().is_empty(), "{id} has no examples");
        }
    }
    let kill = m["commands"].as_array().unwrap().iter().find(|c| c["id"] == "ps:safe-kill").unwrap();
    assert_eq!(kill["args"][0]["name"], "DYNO|TYPE");
    let wait = kill["flags"].as_array().unwrap().iter().find(|f| f["name"] == "wait").unwrap();
    assert_eq!((wait["type"].as_str(), wait["default"].as_str()), (Some("option"), Some("30s")));
    let window = m["commands"].as_array().unwrap().iter().find(|c| c["id"] == "maintenance:window").unwrap();
    assert_eq!(window["trailing_command"], true);
}
