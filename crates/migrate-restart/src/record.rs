//! The local record of when migrate-restart last finished a migration for an app (one of the
//! sources `check` uses for the schema-change time).

use std::time::SystemTime;

use heroku_api::timestamp::{format_rfc3339, parse_rfc3339};

fn path(app: &str) -> anyhow::Result<std::path::PathBuf> {
    Ok(cli_kit::state::state_dir("migrate-restart")?.join(format!("{app}.json")))
}

/// Records a finished migration.
pub fn save(app: &str, finished: SystemTime, command: &str) -> anyhow::Result<()> {
    let doc = serde_json::json!({ "app": app, "finished_at": format_rfc3339(finished), "command": command });
    cli_kit::state::write_atomic(&path(app)?, doc.to_string().as_bytes())
}

/// The last recorded migration time, if any.
pub fn last_migration(app: &str) -> Option<SystemTime> {
    let text = std::fs::read_to_string(path(app).ok()?).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    parse_rfc3339(doc.get("finished_at")?.as_str()?)
}
