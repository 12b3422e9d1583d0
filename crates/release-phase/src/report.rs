//! What following a release phase saw and did, typed: rendered for people as it happens and as
//! one JSON document with `--json`.

use serde::{Deserialize, Serialize};

/// A followed release phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePhaseReport {
    /// The release.
    pub release: ReleaseBrief,
    /// The release the app stays on if this one fails (the current one when following began).
    pub previous_version: Option<u64>,
    /// The dyno that ran the release command, once seen.
    pub dyno: Option<DynoBrief>,
    /// The lock-wait budget in milliseconds (None: `--lock-wait off`, or no database to watch).
    pub lock_wait_ms: Option<u64>,
    /// The hold budget in milliseconds: a statement others queued behind this long is cut
    /// (None: `--lock-hold off`, or no database to watch).
    #[serde(default)]
    pub lock_hold_ms: Option<u64>,
    /// The deadline in milliseconds, if one was set.
    pub deadline_ms: Option<u64>,
    /// Whether the database was watched (and why not, when it was not).
    pub database: Watched,
    /// Each distinct lock wait of the release's sessions, as first seen.
    pub waits: Vec<pg_locks::Wait>,
    /// What the lock-wait budget cancelled.
    pub enforcements: Vec<pg_locks::Enforcement>,
    /// What the deadline did, if it passed.
    pub deadline_action: Option<DeadlineAction>,
    /// The last lines of the release command's output.
    pub output_tail: Vec<String>,
    /// Milliseconds from the release's creation (or from following, when later) to its end.
    pub duration_ms: Option<u64>,
    /// How it ended.
    pub result: PhaseResult,
    /// migrate-guard ran inside the release dyno (its output showed it): it made the
    /// decisions, and this follower only watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside_guard: Option<InsideGuard>,
    /// When it was superseded: the newer release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<u64>,
}

/// migrate-guard inside the release dyno, as its output showed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsideGuard {
    /// Its summary line (`migrate-guard: outcome=… attempts=… cut=… waited_ms=… exit=…`), once printed.
    pub summary: Option<String>,
}

/// A release, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBrief {
    /// v-number.
    pub version: u64,
    /// UUID.
    pub id: String,
    /// `Deploy feed1234`.
    pub description: String,
    /// `pending`, `succeeded`, `failed` as last read.
    pub status: String,
}

/// A dyno, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynoBrief {
    /// `release.4821`.
    pub name: String,
    /// UUID.
    pub id: String,
    /// When it started, as the platform reports it.
    pub created_at: String,
}

/// Whether the database was watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watched {
    /// Watched for the release's lock waits.
    pub watched: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// What the deadline did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineAction {
    /// The stop request for the release dyno was accepted.
    pub stop_sent: bool,
    /// The release dyno was seen gone.
    pub dyno_gone: bool,
    /// The release's sessions whose statements were cancelled.
    pub cancelled: Vec<i32>,
    /// Those of them still running a statement afterwards.
    pub still_running: Vec<i32>,
}

/// How following ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseResult {
    /// The release phase succeeded: the release is current.
    Succeeded,
    /// The release phase failed: the previous release stays current.
    Failed,
    /// Ctrl-C: the release phase goes on.
    Interrupted,
    /// Still pending at the end of `--timeout`: it goes on.
    TimedOut,
    /// A newer release superseded it before its release phase ended (status `expired`): it will
    /// never become current.
    Superseded,
}

/// One formation dyno as last listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormationDyno {
    /// `web.1`.
    pub name: String,
    /// The release it runs.
    pub release_version: Option<u64>,
    /// `up`, `starting`…
    pub state: String,
}

/// After success: whether every formation dyno runs the release and is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormationCheck {
    /// The release every dyno must run.
    pub version: u64,
    /// The formation dynos, from the last listing.
    pub dynos: Vec<FormationDyno>,
    /// Every dyno the formation asks for runs the release and is up.
    pub verified: bool,
    /// Milliseconds until verified (or the limit).
    pub elapsed_ms: u64,
}
