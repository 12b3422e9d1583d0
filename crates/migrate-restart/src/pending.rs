//! The record of a detached migration still being followed: written when its dyno starts,
//! removed when the run concludes. If the tool dies (kill -9, a closed terminal, a lost
//! network), `migrate-restart follow -a APP` on this machine picks the run up from it; on
//! another machine the printed follow command carries what it needs.

use std::path::PathBuf;

use heroku_api::Dyno;
use serde::{Deserialize, Serialize};

/// The format this build reads and writes.
const VERSION: u32 = 1;

/// A migration left running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Format version.
    pub version: u32,
    /// App.
    pub app: String,
    /// The one-off dyno's name.
    pub dyno: String,
    /// Its id.
    pub dyno_id: String,
    /// The migration command.
    pub command: String,
    /// What to restart after success (`all`, `none`, `web,worker`).
    pub restart: String,
    /// The dynos before the migration (to prove each was restarted after it).
    pub before: Vec<Dyno>,
}

impl Pending {
    /// A record for `dyno`.
    pub fn new(app: &str, dyno: &Dyno, command: &str, restart: &str, before: &[Dyno]) -> Pending {
        Pending {
            version: VERSION,
            app: app.to_string(),
            dyno: dyno.name.clone(),
            dyno_id: dyno.id.clone(),
            command: command.to_string(),
            restart: restart.to_string(),
            before: before.to_vec(),
        }
    }
}

fn path(app: &str) -> anyhow::Result<PathBuf> {
    Ok(cli_kit::state::state_dir("migrate-restart")?.join(format!("following-{app}.json")))
}

/// Writes the record atomically.
pub fn save(p: &Pending) -> anyhow::Result<()> {
    cli_kit::state::write_atomic(&path(&p.app)?, &serde_json::to_vec_pretty(p)?)
}

/// The record of `app`'s migration left running, if this machine has one it can read.
pub fn load(app: &str) -> Option<Pending> {
    let text = std::fs::read_to_string(path(app).ok()?).ok()?;
    serde_json::from_str::<Pending>(&text).ok().filter(|p| p.version == VERSION)
}

/// Removes the record: the run concluded.
pub fn remove(app: &str) {
    if let Ok(p) = path(app) {
        let _ = std::fs::remove_file(p);
    }
}

/// The command that picks the run up from any machine.
pub fn follow_command(app: &str, dyno: &str, restart: &str) -> String {
    cli_kit::invocation::as_invoked(&format!("migrate-restart follow -a {app} {dyno} --restart {restart}")).into_owned()
}
