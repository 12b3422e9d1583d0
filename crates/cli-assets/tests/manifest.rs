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

/// In every tool's `--help`, rendered on an 80-column terminal, an example's comment stands
/// on its own line above it: nothing under "Examples:" reads like a command unless it is one.
#[test]
fn help_examples_keep_each_comment_on_its_own_line() {
    for mut cmd in cli_assets::binaries() {
        let name = cmd.get_name().to_string();
        let help = cmd.clone().term_width(80).render_long_help().to_string();
        let _ = &mut cmd;
        let examples = help.split("Examples:").nth(1).unwrap_or_default();
        let block = examples.split("\n\n").next().unwrap_or_default();
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let t = line.trim_start();
            assert!(
                t.starts_with('#') || t.starts_with(&name) || line.starts_with("      "),
                "{name}: an example line that is neither a comment nor a command: {line:?}\n{block}"
            );
            assert!(!t.contains("  # "), "{name}: a comment after a command: {line:?}");
        }
    }
}

/// The commands the tools reword for a plugin user (`cli_kit::invocation`) are the plugin's:
/// each binary and subcommand maps to the id manifest.json gives it, and none is missing.
#[test]
fn the_plugin_forms_the_tools_print_are_the_manifests_commands() {
    let m = cli_assets::manifest();
    let mut from_manifest: Vec<(String, String, String)> = m["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["binary"].as_str().unwrap().to_string(),
                c["subcommand"].as_str().unwrap_or_default().to_string(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut printed: Vec<(String, String, String)> = cli_kit::invocation::PLUGIN_COMMANDS
        .iter()
        .map(|(b, s, id)| (b.to_string(), s.to_string(), id.to_string()))
        .collect();
    from_manifest.sort();
    printed.sort();
    assert_eq!(printed, from_manifest);
}
