//! The typed report of one run: built while the tool works, printed as one JSON document with
//! `--json` (docs/json/safe-ps-kill.md, parsed into these types by a test).

use heroku_api::Dyno;
use pg_locks::LockWait;
use serde::{Deserialize, Serialize};

/// The whole `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// The app's generation and stack (how its dynos are named and replaced).
    pub platform: heroku_api::Platform,
    /// What was typed (`None` when a dyno was picked on a terminal).
    pub argument: Option<String>,
    /// How the dynos were chosen.
    pub resolution: Resolution,
    /// The dynos acted on, as listed before acting.
    pub resolved: Vec<ResolvedDyno>,
    /// Stop, or a dry run.
    pub action: Action,
    /// `--wait` in milliseconds.
    pub wait_limit_ms: u64,
    /// One per dyno stopped (empty on a dry run).
    pub outcomes: Vec<StopOutcome>,
    /// For each release dyno acted on: the release it runs and what stopping it does to it.
    pub release_phase: Vec<ReleasePhaseNote>,
    /// What the stopped dynos' statements left waiting in Postgres.
    pub database_check: DatabaseCheck,
}

/// What stopping a release dyno does to its release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePhaseNote {
    /// `release.2343`.
    pub dyno: String,
    /// The release it runs the release phase of.
    pub version: u64,
    /// That release's status when read (`pending` while its release phase runs).
    pub status: String,
    /// The release the app stays on when this one fails (its current release).
    pub stays_on: Option<u64>,
}

impl ReleasePhaseNote {
    /// The notes for the release dynos among `dynos`, from the app's newest releases.
    pub fn for_dynos(dynos: &[Dyno], releases: &[heroku_api::Release]) -> Vec<ReleasePhaseNote> {
        dynos
            .iter()
            .filter(|d| d.process_type == "release")
            .filter_map(|d| {
                let version = d.release.as_ref()?.version;
                let status = releases
                    .iter()
                    .find(|r| r.version == version)
                    .map(|r| r.status.clone())
                    .unwrap_or_else(|| "unknown".into());
                let stays_on = releases.iter().filter(|r| r.current).map(|r| r.version).next();
                Some(ReleasePhaseNote { dyno: d.name.clone(), version, status, stays_on })
            })
            .collect()
    }
}

/// How the dynos to stop were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// A dyno name.
    Exact,
    /// A process type with one dyno.
    Type,
    /// `--all`, or "all" picked.
    All,
    /// Chosen on a terminal.
    Picked,
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Stopped by id.
    Stop,
    /// Shown only; nothing was stopped.
    DryRun,
}

/// A dyno as listed before acting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedDyno {
    /// The id the stop was addressed to.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// State.
    pub state: String,
    /// When it (re)started.
    pub created_at: String,
    /// Command.
    pub command: String,
    /// Size.
    pub size: Option<String>,
    /// The release it runs.
    pub release_version: Option<u64>,
}

impl From<&Dyno> for ResolvedDyno {
    fn from(d: &Dyno) -> Self {
        ResolvedDyno {
            id: d.id.clone(),
            name: d.name.clone(),
            process_type: d.process_type.clone(),
            state: d.state.clone(),
            created_at: d.created_at.clone(),
            command: d.command.clone(),
            size: d.size.clone(),
            release_version: d.release.as_ref().map(|r| r.version),
        }
    }
}

/// What was observed of one stopped dyno.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopOutcome {
    /// Name.
    pub name: String,
    /// Id.
    pub id: String,
    /// Its id was seen gone from the dyno list.
    pub stopped: bool,
    /// From the first check after the stop until it was seen gone.
    pub gone_after_ms: Option<u64>,
    /// Still listed at the deadline (exit 3).
    pub still_running: bool,
    /// Its state in the last listing while it was still there.
    pub last_state: Option<String>,
}

/// The database check after stopping a release or one-off dyno.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatabaseCheck {
    /// Checked.
    Checked {
        /// Which database.
        database: String,
        /// Sessions waiting on another's lock.
        blocked_total: usize,
        /// DDL and migration statements waiting for a lock.
        waiting_ddl: Vec<WaitingStatement>,
    },
    /// Could not be checked.
    Skipped {
        /// Why, in one line.
        reason: String,
    },
    /// No release or one-off dyno was stopped.
    NotApplicable {
        /// Why.
        reason: String,
    },
}

/// A DDL statement left waiting, and the command that clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingStatement {
    /// Backend pid.
    pub pid: i32,
    /// The statement (`None` when hidden from this credential).
    pub query: Option<String>,
    /// Its application_name.
    pub application_name: String,
    /// The lock it waits for.
    pub waiting_for: Option<LockWait>,
    /// Seconds waited.
    pub wait_secs: Option<f64>,
    /// Sessions queued behind it.
    pub blocking_total: usize,
    /// Pids it waits for.
    pub waits_for: Vec<i32>,
    /// The session at the head of the chain.
    pub root_blocker: Option<i32>,
    /// The pg-blockers command that cancels it.
    pub command: String,
}
