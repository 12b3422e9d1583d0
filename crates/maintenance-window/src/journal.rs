//! The journal: the app's state before the window changed it, written atomically before each
//! change, so a window that dies halfway can be seen and undone exactly.

use std::path::PathBuf;

use anyhow::Context;
use cli_kit::{fail, Exit};
use serde::{Deserialize, Serialize};

/// The journal format version this build reads and writes.
pub const VERSION: u32 = 1;

/// One scaled-down process type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaled {
    /// Process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// Quantity before the window.
    pub quantity_before: u32,
}

/// A release made inside the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// The source app.
    pub from: String,
    /// The slug released (Cedar), or the OCI image a pipeline promotion carried (Fir).
    pub slug_id: String,
    /// Fir: the promotion goes through this pipeline (`POST /pipeline-promotions`), since a
    /// release of a slug cannot carry an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineRoute>,
    /// The app's release version before.
    pub previous_version: Option<u64>,
    /// The new release's version, once made.
    pub new_version: Option<u64>,
}

/// The pipeline a Fir promotion goes through, with the ids its create call names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRoute {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The source app's id.
    pub source_app_id: String,
    /// The target app's (this app's) id.
    pub target_app_id: String,
}

/// An open window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// Format version.
    pub version: u32,
    /// App.
    pub app: String,
    /// When the window was opened (RFC 3339).
    pub opened_at: String,
    /// The tool's pid (to tell a live window from a dead one).
    pub pid: u32,
    /// Maintenance flag before the window.
    pub maintenance_before: bool,
    /// Process types scaled down, with their quantities before.
    pub scaled: Vec<Scaled>,
    /// What has been done so far, in order.
    pub steps: Vec<String>,
    /// A promotion made inside the window.
    pub promotion: Option<Promotion>,
    /// The command run inside the window.
    pub command: Vec<String>,
}

/// The journal file of an app.
pub fn path(app: &str) -> anyhow::Result<PathBuf> {
    Ok(cli_kit::state::state_dir("maintenance-window")?.join(format!("{app}.json")))
}

/// Reads an app's journal: `None` when no window is open. A corrupt journal or one from an
/// incompatible version is refused with the file named.
pub fn load(app: &str) -> anyhow::Result<Option<Journal>> {
    let p = path(app)?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        fail(Exit::Usage, format!("the journal {} is corrupt ({e}); nothing was changed. Restore by hand (heroku maintenance:off, heroku ps:scale) and delete the file", p.display()))
    })?;
    let version = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if version != u64::from(VERSION) {
        return Err(fail(Exit::Usage, format!(
            "the journal {} was written by an incompatible version (format {version}, this build reads {VERSION}); nothing was changed. Use the maintenance-window that wrote it, or restore by hand and delete the file",
            p.display()
        )));
    }
    let j: Journal = serde_json::from_value(value)
        .map_err(|e| fail(Exit::Usage, format!("the journal {} is corrupt ({e}); nothing was changed", p.display())))?;
    Ok(Some(j))
}

/// Writes the journal atomically.
pub fn save(j: &Journal) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(j)?;
    cli_kit::state::write_atomic(&path(&j.app)?, &bytes)
}

/// Removes the journal (the window is closed).
pub fn remove(app: &str) -> anyhow::Result<()> {
    match std::fs::remove_file(path(app)?) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
