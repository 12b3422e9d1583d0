//! The typed reports: a migration run and `check`. Built while the tool works, printed as one
//! JSON document with `--json`; docs/json/migrate-restart.md is parsed into them by a test.

use serde::{Deserialize, Serialize};

use migration_policy::preflight::Finding;

/// A migration run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// The app's generation and stack (which platform behaviour applied).
    pub platform: heroku_api::Platform,
    /// The migration command as given (or from the Procfile).
    pub command: String,
    /// What the preflight found.
    pub preflight: Preflight,
    /// One per one-off dyno; a retry follows only a lock timeout.
    pub attempts: Vec<AttemptReport>,
    /// How the run ended.
    pub result: Outcome,
    /// The restart and its verification (only after a successful migration).
    pub restart: Option<RestartReport>,
}

impl MigrateReport {
    /// The report as a run (or a follow) begins: no attempt yet, the outcome not known.
    pub fn begin(app: &str, platform: &heroku_api::Platform, command: &str, preflight: Preflight) -> MigrateReport {
        MigrateReport {
            schema_version: cli_kit::SCHEMA_VERSION,
            app: app.to_string(),
            platform: platform.clone(),
            command: command.to_string(),
            preflight,
            attempts: Vec::new(),
            result: Outcome::Unknown,
            restart: None,
        }
    }
}

/// The preflight's part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Preflight {
    /// `--no-preflight`.
    Skipped {
        /// Always true.
        skipped: bool,
    },
    /// The database was checked.
    Checked {
        /// Which database.
        database: String,
        /// Reasons not to start (the run was refused unless `--force`).
        findings: Vec<Finding>,
        /// Sessions this credential cannot see that hold table locks.
        unvouched: Vec<Finding>,
        /// With `--plan`: findings of sessions in no planned lock's way, set aside.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        set_aside: Vec<Finding>,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Migrated (the restart's verdict is in `restart`).
    Succeeded,
    /// The migration exited non-zero: nothing was restarted.
    Failed,
    /// Ctrl-C or SIGTERM: the dyno was stopped and its session ended.
    Interrupted,
    /// `--timeout` passed: the dyno was stopped.
    TimedOut,
    /// The connection was lost without an exit status: the outcome is not known.
    Unknown,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptReport {
    /// 1, 2, …
    pub attempt: usize,
    /// The one-off dyno's name.
    pub dyno: String,
    /// Its id.
    pub dyno_id: String,
    /// The command's real exit status; `None` when none came back.
    pub exit_status: Option<i32>,
    /// `exited`, `interrupted`, `timed_out`, or `lost: …`.
    pub ending: String,
    /// A statement was cancelled for waiting on a lock: by Postgres (its lock_timeout) or by
    /// the outside budget.
    pub lock_timeout: bool,
    /// The migration was given `PGOPTIONS` (false on the retry after a pooler refused it).
    pub pgoptions: bool,
    /// A connection pooler refused the startup options: the migration never reached the database.
    pub pooler_refused: bool,
    /// What the outside lock-wait budget cancelled; empty when it did not have to act (the
    /// session's own lock_timeout was in force, or nothing waited that long).
    pub outside_budget: Vec<pg_locks::Enforcement>,
    /// What this attempt left behind, checked before the retry that followed it (`None`: not
    /// checked — it was the last attempt, or no database is watched).
    pub left_behind: Option<migration_policy::debris::LeftBehind>,
    /// Wall time.
    pub duration_ms: u64,
    /// What the lock watch printed.
    pub lock_waits: Vec<String>,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// How many times the log stream was re-opened (a detached run; 0 when attached).
    pub log_reopens: u32,
    /// The command that picks this run up from any machine (`None` when attached).
    pub follow_command: Option<String>,
}

/// `migrate-restart check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// When the schema last changed (RFC 3339).
    pub schema_changed_at: String,
    /// Where that time came from.
    pub source: String,
    /// Formation dynos that booted before it.
    pub stale: Vec<StaleDyno>,
    /// Formation dynos looked at.
    pub dynos_checked: usize,
}

/// A dyno that may hold a stale schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaleDyno {
    /// Name.
    pub name: String,
    /// Id.
    pub id: String,
    /// Boot time.
    pub created_at: String,
    /// State.
    pub state: String,
}

/// `migrate-restart release`: a followed release phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// The app's generation and stack.
    pub platform: heroku_api::Platform,
    /// What following the release phase saw and did.
    pub phase: release_phase::ReleasePhaseReport,
    /// After success: whether every formation dyno runs the release.
    pub formation: Option<release_phase::FormationCheck>,
    /// After a failure the lock-wait budget caused: the command to run once the blocker is gone.
    pub retry_command: Option<String>,
    /// `-- COMMAND` / `--next`: the deploy step run or waited for, and what it created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployStep>,
    /// `--plan`: sessions that held or waited for a lock conflicting with a planned one when
    /// the follow began.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan_obstacles: Vec<pg_locks::lockplan::Obstacle>,
}

/// `migrate-restart release -- COMMAND` / `--next` when no release came to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoReleaseReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The app.
    pub app: String,
    /// The app's generation and stack.
    pub platform: heroku_api::Platform,
    /// The deploy step.
    pub deploy: DeployStep,
    /// `no_release` (COMMAND ended without creating one), `timed_out` (`--next`), `interrupted`.
    pub result: String,
}

/// The deploy step `migrate-restart release -- COMMAND` ran (or `--next` waited for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployStep {
    /// COMMAND as argv (empty with `--next`).
    pub command: Vec<String>,
    /// Its exit status, once it ended (None: still running when the tool ended, or `--next`).
    pub exit_status: Option<i32>,
    /// The release the app ran when the step began.
    pub before_version: Option<u64>,
    /// The release it created (None: none appeared).
    pub release_version: Option<u64>,
    /// Milliseconds from the step's start until the tool saw that release.
    pub seen_after_ms: Option<u64>,
}

/// `migrate-restart plan`: what the migration locks, and what on the app's database would make
/// it wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReport {
    /// [`cli_kit::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The database the plan was checked against, as the tool names it.
    pub database: String,
    /// The same database as its server identifies it: `--plan FILE` refuses a plan made for
    /// another.
    pub made_for: pg_locks::DatabaseIdentity,
    /// The scratch database the migration ran on (`database NAME on HOST`, or the local copy).
    pub scratch: String,
    /// The copy of the app's schema the tool made (absent with `--scratch-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_copy: Option<SchemaCopy>,
    /// The migration command as it ran.
    pub command: Vec<String>,
    /// Each DDL statement and the locks held once it had run.
    pub statements: Vec<pg_locks::lockplan::PlannedStatement>,
    /// Sessions on the app's database holding (or waiting for) a conflicting lock on a planned
    /// relation, read once.
    pub obstacles: Vec<pg_locks::lockplan::Obstacle>,
    /// Open transactions a `CONCURRENTLY` statement would wait for (their pids).
    pub older_transactions: Vec<i32>,
    /// How busy each planned table is: what would queue behind the migration's lock.
    pub activity: Vec<pg_locks::lockplan::TableActivity>,
    /// Production's statements (pg_stat_statements) the migration breaks: each prepared on the
    /// copy before the migration and failing after it, with the server's error.
    pub breaks: Vec<migration_plan::Break>,
    /// How long the running release meets the migrated schema on this app (absent without an
    /// app: a database URL alone names no formation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_release: Option<crate::commands::plan::RunningRelease>,
    /// How many of production's statements were prepared before and after.
    pub statements_checked: usize,
    /// Why production's statements were not checked (pg_stat_statements missing or unreadable);
    /// absent when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaks_unchecked: Option<String>,
    /// When `pg_stat_statements` could not be read and the migration changes what the running
    /// release may rely on: how many seconds production's sessions were sampled instead
    /// (`pg_stat_activity`), the weaker check `statements_checked` then counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaks_sampled_secs: Option<u64>,
    /// Why the plan cannot vouch (empty unless the verdict is `cannot_vouch`).
    pub cannot_vouch: Vec<String>,
    /// `clear` (nothing would wait or break), `would_break`, `would_wait` (obstacles found) or
    /// `cannot_vouch`.
    pub verdict: PlanVerdict,
}

pub use migration_plan::{NotCopied, PlanVerdict, SchemaCopy};

/// One dyno's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Name.
    pub name: String,
    /// Id.
    pub id: String,
    /// Boot time as the platform reports it.
    pub created_at: String,
    /// State.
    pub state: String,
    /// Booted after the migration finished.
    pub fresh: bool,
    /// `up`.
    pub up: bool,
}

/// The restart after a migration, and its verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartReport {
    /// Process types restarted.
    pub types: Vec<String>,
    /// Per dyno, from the last listing.
    pub dynos: Vec<Verdict>,
    /// Every dyno fresh and up, and as many as the formation asks for.
    pub verified: bool,
    /// Milliseconds from the restart request until verified (or the deadline).
    pub elapsed_ms: u64,
}
