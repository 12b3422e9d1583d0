//! Flags are defined once, in clap. This crate turns those definitions into what other places
//! need: the command manifest the Heroku CLI plugin builds its oclif flags from, shell
//! completions and man pages (for `scripts/install`).

use clap::{ArgAction, Command, CommandFactory};
use serde_json::{json, Value};

/// A heroku command and the binary (and subcommand) it runs.
pub struct Mapping {
    /// `ps:safe-kill`.
    pub id: &'static str,
    /// `safe-ps-kill`.
    pub binary: &'static str,
    /// `check`, or `None` for the binary's main command.
    pub subcommand: Option<&'static str>,
}

/// Every heroku command the plugin adds.
pub const MAPPINGS: &[Mapping] = &[
    Mapping { id: "ps:safe-kill", binary: "safe-ps-kill", subcommand: None },
    Mapping { id: "pg:blockers", binary: "pg-blockers", subcommand: None },
    Mapping { id: "migrate:restart", binary: "migrate-restart", subcommand: None },
    Mapping { id: "migrate:check", binary: "migrate-restart", subcommand: Some("check") },
    Mapping { id: "migrate:follow", binary: "migrate-restart", subcommand: Some("follow") },
    Mapping { id: "migrate:release", binary: "migrate-restart", subcommand: Some("release") },
    Mapping { id: "migrate:plan", binary: "migrate-restart", subcommand: Some("plan") },
    Mapping { id: "maintenance:window", binary: "maintenance-window", subcommand: None },
    Mapping { id: "maintenance:window:plan", binary: "maintenance-window", subcommand: Some("plan") },
    Mapping { id: "maintenance:window:status", binary: "maintenance-window", subcommand: Some("status") },
    Mapping { id: "maintenance:window:restore", binary: "maintenance-window", subcommand: Some("restore") },
];

/// The clap command of each binary.
pub fn binaries() -> Vec<Command> {
    vec![
        safe_ps_kill::Args::command(),
        pg_blockers::Args::command(),
        migrate_restart::Args::command(),
        maintenance_window::Args::command(),
    ]
}

fn find(binary: &str) -> Command {
    binaries().into_iter().find(|c| c.get_name() == binary).unwrap_or_else(|| panic!("no binary {binary}"))
}

/// Examples from the `after_help` "Examples:" block, rewritten as heroku commands.
fn examples(cmd: &Command) -> Vec<String> {
    let text = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    // (command, its comment): `--help` puts a comment on its own line above its example and
    // continues a long example with ` \` on indented lines; the Heroku CLI's help shows each
    // on one line, the comment after it.
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut in_examples = false;
    let mut pending: Option<String> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("Examples:") {
            in_examples = true;
            continue;
        }
        if !in_examples {
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((prev, _)) = out.last_mut().filter(|(p, _)| p.ends_with(" \\")) {
            prev.truncate(prev.len() - 2);
            prev.push(' ');
            prev.push_str(line.trim());
            continue;
        }
        match line.trim().strip_prefix("# ") {
            Some(comment) => pending = Some(comment.to_string()),
            None => out.push((line.trim().to_string(), pending.take())),
        }
    }
    out.into_iter()
        .map(|(command, comment)| match comment {
            Some(c) => format!("{command}   # {c}"),
            None => command,
        })
        .filter_map(|e| heroku_form(&e))
        .collect()
}

/// `safe-ps-kill release -a acme   # note` → `heroku ps:safe-kill release -a acme   # note`.
fn heroku_form(example: &str) -> Option<String> {
    let (bin, rest) = example.split_once(' ').unwrap_or((example, ""));
    let (sub, rest2) = rest.split_once(' ').unwrap_or((rest, ""));
    let m = MAPPINGS
        .iter()
        .find(|m| m.binary == bin && m.subcommand == Some(sub))
        .map(|m| (m, rest2))
        .or_else(|| MAPPINGS.iter().find(|m| m.binary == bin && m.subcommand.is_none()).map(|m| (m, rest)))?;
    Some(format!("heroku {} {}", m.0.id, m.1).trim_end().to_string())
}

fn describe(cmd: &Command) -> (Vec<Value>, Vec<Value>, bool) {
    let mut args = Vec::new();
    let mut flags = Vec::new();
    let mut trailing = false;
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        if a.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        if a.is_positional() {
            if a.is_last_set() {
                trailing = true;
                continue;
            }
            args.push(json!({
                "name": a.get_value_names().and_then(|v| v.first()).map(|v| v.to_string()).unwrap_or_else(|| id.to_uppercase()),
                "description": help,
                "required": a.is_required_set(),
            }));
            continue;
        }
        let boolean = matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        let multiple =
            matches!(a.get_action(), ArgAction::Append) || a.get_num_args().is_some_and(|n| n.max_values() > 1);
        let options: Vec<String> =
            a.get_possible_values().iter().filter(|p| !p.is_hide_set()).map(|p| p.get_name().to_string()).collect();
        let default: Vec<String> = a.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        flags.push(json!({
            "name": a.get_long().unwrap_or(id),
            "char": a.get_short().map(|c| c.to_string()),
            "description": help,
            "type": if boolean { "boolean" } else { "option" },
            "multiple": multiple,
            "value_name": a.get_value_names().and_then(|v| v.first()).map(|v| v.to_string()),
            "options": if options.is_empty() || boolean { Value::Null } else { json!(options) },
            "default": if boolean || default.is_empty() { Value::Null } else { json!(default.join(",")) },
            "optional_value": a.get_num_args().is_some_and(|n| n.min_values() == 0) && !boolean,
        }));
    }
    (args, flags, trailing)
}

/// The manifest the plugin builds its commands from (written to plugin-shim/manifest.json).
pub fn manifest() -> Value {
    let commands: Vec<Value> = MAPPINGS
        .iter()
        .map(|m| {
            let top = find(m.binary);
            let cmd = match m.subcommand {
                Some(s) => top.find_subcommand(s).unwrap_or_else(|| panic!("{} has no {s}", m.binary)).clone(),
                None => top.clone(),
            };
            let (args, flags, trailing) = describe(&cmd);
            json!({
                "id": m.id,
                "binary": m.binary,
                "subcommand": m.subcommand,
                "summary": cmd.get_about().map(|s| s.to_string()).unwrap_or_default(),
                "description": cmd.get_long_about().map(|s| s.to_string()).unwrap_or_default(),
                "examples": examples(&top).into_iter().filter(|e| e.starts_with(&format!("heroku {} ", m.id)) || e == &format!("heroku {}", m.id)).collect::<Vec<_>>(),
                "args": args,
                "flags": flags,
                "trailing_command": trailing,
            })
        })
        .collect();
    json!({ "generated_by": "cargo run -p cli-assets -- manifest", "commands": commands })
}

/// The manifest as committed: pretty JSON with a final newline.
pub fn manifest_text() -> String {
    format!("{}\n", serde_json::to_string_pretty(&manifest()).expect("manifest serialises"))
}

/// Writes bash, zsh and fish completions for every binary into `dir`.
pub fn completions(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    for mut cmd in binaries() {
        let name = cmd.get_name().to_string();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut cmd, &name, dir)?;
        }
    }
    Ok(())
}

/// Writes a man page per binary (and per subcommand) into `dir`.
pub fn man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for cmd in binaries() {
        clap_mangen::generate_to(cmd, dir)?;
    }
    Ok(())
}
