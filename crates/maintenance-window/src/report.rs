//! The typed reports: a window run, `plan`, `status` and `restore`. Built while the tool works,
//! printed as one JSON document with `--json`; docs/json/maintenance-window.md is parsed into
//! them by a test.

use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::live::Live;
use crate::plan::Decision;

/// A window run (or the deploy step run without one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// The app's generation and stack (which platform behaviour applied).
    pub platform: heroku_api::Platform,
    /// Whether a window was needed, and why.
    pub decision: Decision,
    /// A window was opened.
    pub window: bool,
    /// How the window ended (`None` without a window).
    pub result: Option<WindowResult>,
    /// COMMAND's status, also the tool's own (`None` when it did not run).
    pub command_status: Option<i32>,
    /// Where the time went (`None` without a window).
    pub timings: Option<Timings>,
    /// What was changed, as journaled.
    pub journal: Option<Journal>,
    /// The command that puts back what the journal holds, from any machine.
    pub restore_command: Option<String>,
    /// The release phase the promotion started (`None` without a promotion, or when the app
    /// has no release phase).
    pub release_phase: Option<release_phase::ReleasePhaseReport>,
}

impl WindowReport {
    /// The report of a run that opened no window (yet).
    pub fn without_window(app: &str, platform: &heroku_api::Platform, decision: Decision) -> WindowReport {
        WindowReport {
            schema_version: cli_kit::SCHEMA_VERSION,
            app: app.to_string(),
            platform: platform.clone(),
            decision,
            window: false,
            result: None,
            command_status: None,
            timings: None,
            journal: None,
            restore_command: None,
            release_phase: None,
        }
    }

    /// Records how the window ended.
    pub fn record(&mut self, result: WindowResult, command_status: Option<i32>, timings: Timings, j: &Journal) {
        self.result = Some(result);
        self.command_status = command_status;
        self.timings = Some(timings);
        self.restore_command = Some(crate::live::restore_command(j));
        self.journal = Some(j.clone());
    }
}

/// How a window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowResult {
    /// COMMAND succeeded; everything was put back.
    Closed,
    /// COMMAND failed and `--on-failure restore` put everything back.
    Restored,
    /// Maintenance stays on and workers stay down (COMMAND failed, a drain or promotion failed).
    Held,
}

/// `plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// Whether a window is needed, and why.
    pub decision: Decision,
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// A window is open: journaled here, or opened elsewhere (exit 7).
    pub open: bool,
    /// In maintenance with no journal on this machine.
    pub opened_elsewhere: bool,
    /// This machine's journal.
    pub journal: Option<Journal>,
    /// The app now (`None` if it could not be read while a journal is here).
    pub live: Option<Live>,
    /// The restore command, when the journal is here.
    pub restore_command: Option<String>,
}

/// `restore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// Something was put back.
    pub restored: bool,
    /// Where the values came from (`None` when nothing was open).
    pub source: Option<RestoreSource>,
    /// What was put back.
    pub journal: Option<Journal>,
}

/// Where restored values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreSource {
    /// This machine's journal.
    Journal,
    /// `--maintenance` and `--scale`.
    Flags,
}

/// Time spent in each phase.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// Maintenance on, scale down, drained.
    pub open_ms: u64,
    /// Release of the prebuilt slug.
    pub promote_ms: u64,
    /// The release phase the promotion started, until it ended.
    pub release_phase_ms: u64,
    /// COMMAND.
    pub command_ms: u64,
    /// Formation back, maintenance off.
    pub close_ms: u64,
    /// Maintenance on → off: how long the site was down.
    pub window_ms: u64,
    /// API requests made while maintenance was on.
    pub api_calls_in_window: u64,
}
