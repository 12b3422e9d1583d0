//! What the guard did, as one typed report: rendered as the summary line (the last line of the
//! release output, for scripts that grep release logs) and as JSON (`--json-report FILE`).

use migration_policy::debris::LeftBehind;
use migration_policy::preflight::Finding;
use pg_locks::{EndReport, Enforcement};
use serde::{Deserialize, Serialize};

/// How the guarded migration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The command exited 0.
    Succeeded,
    /// The command failed on its own (not a lock timeout): its exit status is the guard's.
    Failed,
    /// Every attempt the policy allowed ended in a lock timeout (its own or the budget's cut).
    LockTimeout,
    /// The hold budget cut a statement others queued behind too long: the release fails, not
    /// retried (the same statement would hold the lock as long again).
    HoldCut,
    /// A retry was due, but what the failed attempt left makes it unsafe (the statement to run
    /// is in the output).
    RetryBlocked,
    /// Nothing was started: the database could not be watched, or blockers did not clear.
    Refused,
    /// SIGTERM or SIGINT (a stopped dyno): the command's statements were ended.
    Stopped,
    /// `--deadline` passed: the command's statements were ended.
    Deadline,
}

impl Outcome {
    /// The word in the summary line.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::LockTimeout => "lock_timeout",
            Outcome::HoldCut => "hold_cut",
            Outcome::RetryBlocked => "retry_blocked",
            Outcome::Refused => "refused",
            Outcome::Stopped => "stopped",
            Outcome::Deadline => "deadline",
        }
    }
}

/// Before the first statement: what would have made DDL wait, and what became of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clearing {
    /// Sessions that would have made the DDL wait when the guard first looked.
    pub blockers: Vec<Finding>,
    /// Milliseconds spent waiting for them to end.
    pub waited_ms: u64,
    /// Backups cancelled with `--cancel-backups` (each seen to stop blocking).
    pub cancelled_backups: Vec<i32>,
    /// Whether nothing that would make DDL wait remained when the command started.
    pub clear: bool,
    /// With `--plan`: sessions that held no lock in a planned lock's way, not waited for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<Finding>,
}

/// One run of the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptReport {
    /// 1-based.
    pub attempt: usize,
    /// Its exit status (None: it was ended by a signal it did not survive).
    pub exit_status: Option<i32>,
    /// A statement was cancelled for waiting on a lock (its own lock_timeout or the budget).
    pub hit_lock_timeout: bool,
    /// What the budget cancelled from the guard's connection.
    pub cut: Vec<Enforcement>,
    /// Each lock wait the watch saw, in one line.
    pub lock_waits: Vec<String>,
    /// What it left behind, when checked before a retry.
    pub left_behind: Option<LeftBehind>,
    /// Wall time.
    pub duration_ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardReport {
    /// Raised when a field changes meaning or goes away.
    pub schema_version: u32,
    /// `release.2343`, from `$DYNO`.
    pub dyno: String,
    /// The command, as argv.
    pub command: Vec<String>,
    /// The application_name the command's sessions carry.
    pub session_name: String,
    /// Which database (the config var; never the URL).
    pub database: String,
    /// Whether the guard watched the database (false only with `--unwatched`, or when refused).
    pub watched: bool,
    /// The lock-wait budget (null with `--lock-wait off`).
    pub lock_wait_ms: Option<u64>,
    /// The hold budget: a statement others queued behind this long is cut (null with
    /// `--lock-hold off`, or `--lock-wait off` and no `--lock-hold`).
    #[serde(default)]
    pub lock_hold_ms: Option<u64>,
    /// Before the first statement.
    pub clearing: Clearing,
    /// Each run of the command.
    pub attempts: Vec<AttemptReport>,
    /// How it ended.
    pub outcome: Outcome,
    /// After SIGTERM or the deadline: the command's sessions found and any left.
    pub ended_sessions: Option<EndReport>,
    /// The guard's exit status.
    pub exit_status: i32,
}

impl GuardReport {
    /// Statements the budget cancelled, over every attempt.
    pub fn cuts(&self) -> usize {
        self.attempts.iter().map(|a| a.cut.iter().filter(|e| e.verified).count()).sum()
    }

    /// The last line of the output, stable for scripts (docs/migrate-guard.md):
    /// `migrate-guard: outcome=lock_timeout attempts=4 cut=4 waited_ms=0 exit=1`.
    pub fn summary_line(&self) -> String {
        format!(
            "migrate-guard: outcome={} attempts={} cut={} waited_ms={} exit={}",
            self.outcome.word(),
            self.attempts.len(),
            self.cuts(),
            self.clearing.waited_ms,
            self.exit_status
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_is_one_stable_line() {
        let r = GuardReport {
            schema_version: 1,
            dyno: "release.3".into(),
            command: vec!["rake".into(), "db:migrate".into()],
            session_name: "migrate-restart/release.3".into(),
            database: "DATABASE_URL".into(),
            watched: true,
            lock_wait_ms: Some(5000),
            lock_hold_ms: Some(5000),
            clearing: Clearing { waited_ms: 62_000, clear: true, ..Clearing::default() },
            attempts: vec![],
            outcome: Outcome::Refused,
            ended_sessions: None,
            exit_status: 5,
        };
        assert_eq!(r.summary_line(), "migrate-guard: outcome=refused attempts=0 cut=0 waited_ms=62000 exit=5");
    }
}
