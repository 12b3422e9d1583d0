//! The guarded run, once: attempts under the retry [`Policy`], and before each retry the check
//! of what the failed attempt left behind. Both runners drive it — `migrate-restart` (a one-off
//! dyno) and `migrate-guard` (the command as a child process inside the release dyno) — through
//! the small [`Runner`] trait; nothing here knows how an attempt is started.
//!
//! The debris rule, one sentence everywhere: **a retry whose check of what the failed attempt
//! left cannot run does not run.** A retry that cannot look for an INVALID index (a cancelled
//! `CREATE INDEX CONCURRENTLY`) or for versions the attempt already recorded would fail on the
//! index, build a second copy of it, or re-apply half a migration.

use std::time::{Duration, Instant};

use pg_locks::ConnectOptions;

use crate::debris::{self, Baseline, LeftBehind};
use crate::policy::{jitter_seed, next_step, Policy, Step, Tried};

/// What starts and watches one attempt: a one-off dyno, a child process.
pub trait Runner {
    /// The runner's own record of an attempt (its dyno, its report line…).
    type Attempt;

    /// Runs one attempt to its end, with `PGOPTIONS` or without. An error ends the run.
    fn attempt(&mut self, pgoptions: bool) -> anyhow::Result<Self::Attempt>;

    /// What the policy needs of an attempt; `since_first`: time since the first one began.
    fn tried(&self, attempt: &Self::Attempt, since_first: Duration) -> Tried;

    /// The attempt was ended by a stop (a signal, a deadline): the run ends with it.
    fn was_stopped(&self, _attempt: &Self::Attempt) -> bool {
        false
    }

    /// Records on the attempt what the check before its retry found.
    fn left_behind(&mut self, attempt: &mut Self::Attempt, found: LeftBehind);

    /// Waits `pause` before a retry; false when a stop arrived during it.
    fn pause(&mut self, pause: Duration) -> bool;

    /// Says what the run is doing, in the runner's own words.
    fn say(&mut self, event: &Event<'_>);
}

/// What the run says as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A pooler refused `PGOPTIONS`; the next attempt goes without them (the budget bounds it).
    RetryWithoutPgoptions,
    /// A pooler refused `PGOPTIONS` and nothing watches the database: not tried again.
    PoolerRefusedUnwatched,
    /// A retry after lock timeout `n` (of `of` attempts at most), after `pause`.
    Retrying {
        /// Lock timeouts so far.
        n: u32,
        /// Attempts the policy allows.
        of: u32,
        /// The pause before it.
        pause: Duration,
        /// The backoff's ceiling.
        ceiling: Duration,
    },
    /// Every retry is used, or the next one would start after `--retry-for`.
    OutOfRetries {
        /// Lock timeouts seen.
        lock_timeouts: u32,
    },
    /// A stop arrived between attempts.
    StoppedInThePause,
    /// The check before a retry.
    Debris(DebrisEvent<'a>),
}

/// What the check before a retry found and did.
#[derive(Debug)]
pub enum DebrisEvent<'a> {
    /// It cannot run: no database to read, or no baseline from before the first attempt.
    Uncheckable {
        /// Why, in a few words.
        why: &'a str,
    },
    /// Reading it failed.
    CheckFailed {
        /// The error.
        error: String,
    },
    /// Versions the failed attempt recorded (the retry skips them).
    AlreadyApplied {
        /// As the framework records them.
        versions: &'a [String],
    },
    /// `--drop-invalid-indexes`: dropping what it left.
    DroppingInvalid {
        /// The indexes.
        names: Vec<&'a str>,
        /// How long the drop may wait for transactions using them.
        wait: Duration,
    },
    /// Dropped and seen gone.
    DroppedInvalid {
        /// The indexes.
        names: &'a [String],
    },
    /// The drop failed: no retry.
    DropFailed {
        /// The error.
        error: String,
    },
    /// INVALID indexes left, not dropped: no retry; the statements to run by hand.
    InvalidLeft {
        /// The indexes.
        names: Vec<&'a str>,
        /// `DROP INDEX CONCURRENTLY …;` for each.
        drop_statements: Vec<&'a str>,
    },
}

/// Where and how the check before a retry reads.
#[derive(Debug, Clone, Default)]
pub struct DebrisCheck {
    /// The migration's database (None: none is known to the runner).
    pub db: Option<ConnectOptions>,
    /// What was there before the first attempt (None: it could not be read).
    pub baseline: Option<Baseline>,
    /// `--drop-invalid-indexes`: drop what the failed attempt left (verified) and retry.
    pub drop_invalid_indexes: bool,
}

impl DebrisCheck {
    /// Reads the baseline before the first attempt; `on_error` says why it could not be read.
    pub fn before_first_attempt(
        db: Option<ConnectOptions>,
        drop_invalid_indexes: bool,
        on_error: impl FnOnce(String),
    ) -> DebrisCheck {
        let baseline = db.as_ref().and_then(|db| match Baseline::read(db) {
            Ok(b) => Some(b),
            Err(e) => {
                on_error(e.to_string());
                None
            }
        });
        DebrisCheck { db, baseline, drop_invalid_indexes }
    }

    /// Whether the retry may run, and what was found. Cannot check → no retry.
    pub fn check(&self, say: &mut dyn FnMut(&DebrisEvent<'_>)) -> (bool, Option<LeftBehind>) {
        let (Some(db), Some(baseline)) = (&self.db, &self.baseline) else {
            let why = if self.db.is_none() {
                "no database is known to read it from"
            } else {
                "what was there before the first attempt could not be read"
            };
            say(&DebrisEvent::Uncheckable { why });
            return (false, None);
        };
        let mut left = match baseline.left_behind(db) {
            Ok(l) => l,
            Err(e) => {
                say(&DebrisEvent::CheckFailed { error: cli_kit::one_line(&e) });
                return (false, None);
            }
        };
        if !left.recorded_versions.is_empty() {
            say(&DebrisEvent::AlreadyApplied { versions: &left.recorded_versions });
        }
        if left.invalid_indexes.is_empty() {
            return (true, Some(left));
        }
        let names: Vec<&str> = left.invalid_indexes.iter().map(|i| i.name.as_str()).collect();
        if !self.drop_invalid_indexes {
            let drop_statements = left.invalid_indexes.iter().map(|i| i.drop_statement.as_str()).collect();
            say(&DebrisEvent::InvalidLeft { names, drop_statements });
            return (false, Some(left));
        }
        say(&DebrisEvent::DroppingInvalid { names, wait: debris::DROP_WAIT });
        match debris::drop_invalid(db, &left.invalid_indexes) {
            Ok(dropped) => {
                say(&DebrisEvent::DroppedInvalid { names: &dropped });
                left.dropped = dropped;
                (true, Some(left))
            }
            Err(e) => {
                say(&DebrisEvent::DropFailed { error: cli_kit::one_line(&e) });
                (false, Some(left))
            }
        }
    }
}

/// How the run ended, runner-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The last attempt is the answer (it succeeded, or failed on its own).
    Done,
    /// Every retry is used (or the time for them): the last lock timeout is the answer.
    OutOfRetries {
        /// Lock timeouts seen.
        lock_timeouts: u32,
    },
    /// A pooler refused `PGOPTIONS` and nothing watches the database.
    PoolerRefusedUnwatched,
    /// A retry was due and the check of what the failed attempt left forbade it (or could not run).
    RetryBlocked,
    /// A stop ended the last attempt.
    Stopped,
    /// A stop arrived between attempts.
    StoppedInThePause,
}

/// The attempts made, and how the run ended (an error from [`Runner::attempt`] ends it too,
/// with the attempts before it kept).
pub struct Driven<A> {
    /// Oldest first.
    pub attempts: Vec<A>,
    /// How it ended.
    pub outcome: anyhow::Result<Outcome>,
}

/// Runs attempts until the policy says the last one is the answer.
pub fn drive<R: Runner>(runner: &mut R, policy: &Policy, debris: &DebrisCheck) -> Driven<R::Attempt> {
    let started = Instant::now();
    let mut attempts: Vec<R::Attempt> = Vec::new();
    let mut tries: Vec<Tried> = Vec::new();
    let mut pgoptions = true;
    let outcome = loop {
        let attempt = match runner.attempt(pgoptions) {
            Ok(a) => a,
            Err(e) => break Err(e),
        };
        tries.push(runner.tried(&attempt, started.elapsed()));
        let stopped = runner.was_stopped(&attempt);
        attempts.push(attempt);
        if stopped {
            break Ok(Outcome::Stopped);
        }
        match next_step(&tries, policy, jitter_seed()) {
            Step::Done => break Ok(Outcome::Done),
            Step::OutOfRetries { lock_timeouts } | Step::OutOfTime { lock_timeouts } => {
                runner.say(&Event::OutOfRetries { lock_timeouts });
                break Ok(Outcome::OutOfRetries { lock_timeouts });
            }
            Step::PoolerRefusedUnwatched => {
                runner.say(&Event::PoolerRefusedUnwatched);
                break Ok(Outcome::PoolerRefusedUnwatched);
            }
            Step::RetryWithoutPgoptions => {
                runner.say(&Event::RetryWithoutPgoptions);
                pgoptions = false;
            }
            Step::Retry { n, pause, ceiling } => {
                let (safe, found) = debris.check(&mut |e| runner.say(&Event::Debris(clone_event(e))));
                if let (Some(found), Some(last)) = (found, attempts.last_mut()) {
                    runner.left_behind(last, found);
                }
                if !safe {
                    break Ok(Outcome::RetryBlocked);
                }
                runner.say(&Event::Retrying { n, of: policy.retries + 1, pause, ceiling });
                if !runner.pause(pause) {
                    runner.say(&Event::StoppedInThePause);
                    break Ok(Outcome::StoppedInThePause);
                }
            }
        }
    };
    Driven { attempts, outcome }
}

/// A debris event re-borrowed for the runner's `say` (the check borrows the runner only
/// through this closure).
fn clone_event<'a>(e: &DebrisEvent<'a>) -> DebrisEvent<'a> {
    match e {
        DebrisEvent::Uncheckable { why } => DebrisEvent::Uncheckable { why },
        DebrisEvent::CheckFailed { error } => DebrisEvent::CheckFailed { error: error.clone() },
        DebrisEvent::AlreadyApplied { versions } => DebrisEvent::AlreadyApplied { versions },
        DebrisEvent::DroppingInvalid { names, wait } => {
            DebrisEvent::DroppingInvalid { names: names.clone(), wait: *wait }
        }
        DebrisEvent::DroppedInvalid { names } => DebrisEvent::DroppedInvalid { names },
        DebrisEvent::DropFailed { error } => DebrisEvent::DropFailed { error: error.clone() },
        DebrisEvent::InvalidLeft { names, drop_statements } => {
            DebrisEvent::InvalidLeft { names: names.clone(), drop_statements: drop_statements.clone() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runner whose attempts end as scripted.
    struct Scripted {
        endings: Vec<Tried>,
        said: Vec<String>,
        paused: u32,
    }

    impl Runner for Scripted {
        type Attempt = Tried;
        fn attempt(&mut self, pgoptions: bool) -> anyhow::Result<Tried> {
            let mut t = self.endings.remove(0);
            t.pgoptions = pgoptions;
            Ok(t)
        }
        fn tried(&self, attempt: &Tried, _: Duration) -> Tried {
            *attempt
        }
        fn left_behind(&mut self, _: &mut Tried, _: LeftBehind) {}
        fn pause(&mut self, _: Duration) -> bool {
            self.paused += 1;
            true
        }
        fn say(&mut self, event: &Event<'_>) {
            self.said.push(format!("{event:?}"));
        }
    }

    fn lock_timeout() -> Tried {
        Tried { exit: Some(1), hit_lock_timeout: true, ..Tried::default() }
    }

    const POLICY: Policy = Policy { retries: 3, retry_for: None, watched: true };

    /// The rule: a retry whose check cannot run does not run — no database, or no baseline.
    #[test]
    fn a_retry_whose_debris_check_cannot_run_does_not_run() {
        let mut r = Scripted {
            endings: vec![lock_timeout(), Tried { exit: Some(0), ..Tried::default() }],
            said: vec![],
            paused: 0,
        };
        let driven = drive(&mut r, &POLICY, &DebrisCheck::default());
        assert_eq!(driven.outcome.unwrap(), Outcome::RetryBlocked);
        assert_eq!(driven.attempts.len(), 1, "not retried");
        assert_eq!(r.paused, 0);
        assert!(r.said.iter().any(|s| s.contains("Uncheckable")), "{:?}", r.said);

        let no_baseline =
            DebrisCheck { db: Some(ConnectOptions::new("postgres://x@127.0.0.1:1/x", "t")), ..DebrisCheck::default() };
        let mut r = Scripted {
            endings: vec![lock_timeout(), Tried { exit: Some(0), ..Tried::default() }],
            said: vec![],
            paused: 0,
        };
        assert_eq!(drive(&mut r, &POLICY, &no_baseline).outcome.unwrap(), Outcome::RetryBlocked);
        assert!(r.said.iter().any(|s| s.contains("could not be read")), "{:?}", r.said);
    }

    /// A check that runs but cannot reach the database: no retry either.
    #[test]
    fn a_debris_check_that_fails_blocks_the_retry() {
        let unreachable = DebrisCheck {
            db: Some(ConnectOptions::new("postgres://x@127.0.0.1:1/x?sslmode=disable", "t")),
            baseline: Some(Baseline::default()),
            drop_invalid_indexes: false,
        };
        let mut r = Scripted {
            endings: vec![lock_timeout(), Tried { exit: Some(0), ..Tried::default() }],
            said: vec![],
            paused: 0,
        };
        let driven = drive(&mut r, &POLICY, &unreachable);
        assert_eq!(driven.outcome.unwrap(), Outcome::RetryBlocked);
        assert_eq!(driven.attempts.len(), 1);
        assert!(r.said.iter().any(|s| s.contains("CheckFailed")), "{:?}", r.said);
    }

    /// Success, a failure of its own and a pooler refusal are decided without a check.
    #[test]
    fn what_needs_no_retry_needs_no_check() {
        let mut r = Scripted { endings: vec![Tried { exit: Some(0), ..Tried::default() }], said: vec![], paused: 0 };
        assert_eq!(drive(&mut r, &POLICY, &DebrisCheck::default()).outcome.unwrap(), Outcome::Done);
        let refused = Tried { exit: Some(2), pooler_refused: true, ..Tried::default() };
        let mut r =
            Scripted { endings: vec![refused, Tried { exit: Some(0), ..Tried::default() }], said: vec![], paused: 0 };
        let driven = drive(&mut r, &POLICY, &DebrisCheck::default());
        assert_eq!(driven.outcome.unwrap(), Outcome::Done);
        assert_eq!(driven.attempts.iter().map(|t| t.pgoptions).collect::<Vec<_>>(), vec![true, false]);
    }
}
