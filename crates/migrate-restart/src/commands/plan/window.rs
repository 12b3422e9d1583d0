//! How long old code runs against the migrated schema on this app. The release phase migrates
//! while the current release serves traffic, and it goes on serving after the phase until the
//! formation has restarted: with preboot (an app feature), the boot timeout plus about two
//! minutes; without, until each dyno has restarted (requests fail meanwhile). Dynos that booted
//! before the current release may hold an even older schema in their caches.

use std::time::SystemTime;

use heroku_api::Client;
use serde::{Deserialize, Serialize};

/// Heroku's default boot timeout for web dynos (60 s; it can be raised per app by support).
pub const BOOT_TIMEOUT_SECS: u64 = 60;
/// With preboot, how long the old dynos go on serving after the new ones are up.
pub const PREBOOT_OVERLAP_SECS: u64 = 120;

/// The window in which the running release meets the migrated schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunningRelease {
    /// The release serving traffic now (its version), when known.
    pub current_release: Option<u64>,
    /// Whether preboot is on (null: it could not be read).
    pub preboot: Option<bool>,
    /// After the release phase, about how long the old code goes on serving while the formation
    /// restarts, in seconds (an estimate from the platform's defaults).
    pub restart_secs: u64,
    /// Dynos running now that booted before the current release (processes that may cache an
    /// older schema still).
    pub booted_before_current_release: Vec<String>,
}

/// Reads preboot, the dynos and the current release of `app`, at once.
pub fn read(client: &Client, app: &str) -> RunningRelease {
    let (preboot, dynos, current) = std::thread::scope(|s| {
        let p = s.spawn(|| client.app_feature(app, "preboot"));
        let r = s.spawn(|| release_phase::current_release(client, app));
        (cli_kit::join(p), client.dynos(app), cli_kit::join(r))
    });
    let preboot = preboot.ok().map(|f| f.enabled);
    let current = current.ok().flatten();
    let since = current.as_ref().and_then(|r| heroku_api::timestamp::parse_rfc3339(&r.created_at));
    let booted_before_current_release = match (dynos, since) {
        (Ok(dynos), Some(since)) => dynos
            .iter()
            .filter(|d| !d.is_one_off() && d.created_at_time().is_some_and(|t: SystemTime| t < since))
            .map(|d| d.name.clone())
            .collect(),
        _ => Vec::new(),
    };
    RunningRelease {
        current_release: current.map(|r| r.version),
        preboot,
        restart_secs: if preboot == Some(true) { BOOT_TIMEOUT_SECS + PREBOOT_OVERLAP_SECS } else { BOOT_TIMEOUT_SECS },
        booted_before_current_release,
    }
}
