//! Whether a guarded migration is tried again, decided from the attempts so far and nothing
//! else: a pure function, so each rule has a unit test and both runners (`migrate-restart`,
//! `migrate-guard`) decide the same way.
//!
//! Only a lock timeout is worth another try — the blocker may end, and the attempt changed
//! nothing it did not record (the caller checks that with [`crate::debris`] before retrying).
//! Any other failure is the migration's own and is the run's answer.

use std::time::Duration;

/// How many tries, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Retries after a lock timeout (so at most `retries + 1` attempts that hit one).
    pub retries: u32,
    /// No retry starts after this much time since the first attempt began (None: no limit).
    pub retry_for: Option<Duration>,
    /// A database is watched, so a run without `PGOPTIONS` is still bounded by the budget.
    pub watched: bool,
}

/// What one attempt ended with, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tried {
    /// The command's exit status (None: it did not exit on its own — lost, interrupted, timed out).
    pub exit: Option<i32>,
    /// A statement was cancelled for waiting on a lock (its own lock_timeout or the budget).
    pub hit_lock_timeout: bool,
    /// A connection pooler refused the startup options, so the migration never reached the database.
    pub pooler_refused: bool,
    /// It was given `PGOPTIONS`.
    pub pgoptions: bool,
    /// Time since the first attempt began, when this one ended.
    pub elapsed: Duration,
}

/// What to do after the last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The last attempt is the run's answer.
    Done,
    /// A pooler refused `PGOPTIONS`: try once more without them (the budget bounds the wait).
    RetryWithoutPgoptions,
    /// A pooler refused `PGOPTIONS` and no database is watched: without them nothing would
    /// bound the migration's lock waits, so it is not tried again.
    PoolerRefusedUnwatched,
    /// A lock timeout: try again after `pause` (drawn below `ceiling`).
    Retry {
        /// Lock timeouts so far (this retry follows the `n`th).
        n: u32,
        /// The pause before the retry.
        pause: Duration,
        /// The backoff's ceiling for this retry.
        ceiling: Duration,
    },
    /// A lock timeout, and every retry has been used.
    OutOfRetries {
        /// Lock timeouts so far.
        lock_timeouts: u32,
    },
    /// A lock timeout, and a retry would start after `--retry-for`.
    OutOfTime {
        /// Lock timeouts so far.
        lock_timeouts: u32,
    },
}

impl Step {
    /// Whether the command runs again.
    pub fn retries(&self) -> bool {
        matches!(self, Step::RetryWithoutPgoptions | Step::Retry { .. })
    }
}

/// The next step after `tries` (oldest first; empty: `Done`). `seed` draws the jitter.
pub fn next_step(tries: &[Tried], policy: &Policy, seed: u64) -> Step {
    let Some(last) = tries.last() else { return Step::Done };
    let failed = last.exit.is_some_and(|c| c != 0);
    if failed && last.pooler_refused && last.pgoptions {
        return if policy.watched { Step::RetryWithoutPgoptions } else { Step::PoolerRefusedUnwatched };
    }
    if !(failed && last.hit_lock_timeout) {
        return Step::Done;
    }
    let lock_timeouts = tries.iter().filter(|t| t.hit_lock_timeout).count() as u32;
    if lock_timeouts > policy.retries {
        return Step::OutOfRetries { lock_timeouts };
    }
    let (pause, ceiling) = backoff(lock_timeouts, seed);
    if policy.retry_for.is_some_and(|limit| last.elapsed + pause > limit) {
        return Step::OutOfTime { lock_timeouts };
    }
    Step::Retry { n: lock_timeouts, pause, ceiling }
}

/// The pause before retry `n` (1-based): a ceiling doubling from 2s up to 30s, and a pause
/// drawn between half the ceiling and the ceiling, so retries from several deploys do not line
/// up behind the same blocker.
pub fn backoff(n: u32, seed: u64) -> (Duration, Duration) {
    let ceiling = Duration::from_secs(1u64 << n.clamp(1, 5)).min(Duration::from_secs(30));
    // A cheap mix of the seed (splitmix64's finaliser) → a fraction in [0.5, 1.0].
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let fraction = 0.5 + ((z ^ (z >> 31)) % 1000) as f64 / 2000.0;
    (ceiling.mul_f64(fraction), ceiling)
}

/// A seed for the jitter that differs between processes and moments.
pub fn jitter_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ (std::process::id() as u64).rotate_left(17))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy { retries: 2, retry_for: None, watched: true };

    fn lock_timeout(elapsed_secs: u64) -> Tried {
        Tried {
            exit: Some(1),
            hit_lock_timeout: true,
            pgoptions: true,
            elapsed: Duration::from_secs(elapsed_secs),
            ..Tried::default()
        }
    }

    #[test]
    fn success_and_other_failures_are_the_answer() {
        assert_eq!(next_step(&[], &POLICY, 1), Step::Done);
        assert_eq!(next_step(&[Tried { exit: Some(0), ..Tried::default() }], &POLICY, 1), Step::Done);
        assert_eq!(next_step(&[Tried { exit: Some(3), ..Tried::default() }], &POLICY, 1), Step::Done);
        // A lock timeout seen in an attempt that still exited 0 (the framework retried itself).
        let ok = Tried { exit: Some(0), hit_lock_timeout: true, ..Tried::default() };
        assert_eq!(next_step(&[ok], &POLICY, 1), Step::Done);
        // Interrupted or lost: not a lock timeout to retry, whatever was seen.
        let lost = Tried { exit: None, hit_lock_timeout: true, ..Tried::default() };
        assert_eq!(next_step(&[lost], &POLICY, 1), Step::Done);
    }

    #[test]
    fn lock_timeouts_are_retried_until_the_retries_are_used() {
        let one = [lock_timeout(1)];
        assert!(matches!(next_step(&one, &POLICY, 7), Step::Retry { n: 1, .. }));
        let two = [lock_timeout(1), lock_timeout(5)];
        assert!(matches!(next_step(&two, &POLICY, 7), Step::Retry { n: 2, .. }));
        let three = [lock_timeout(1), lock_timeout(5), lock_timeout(9)];
        assert_eq!(next_step(&three, &POLICY, 7), Step::OutOfRetries { lock_timeouts: 3 });
        let none = Policy { retries: 0, ..POLICY };
        assert_eq!(next_step(&one, &none, 7), Step::OutOfRetries { lock_timeouts: 1 });
    }

    #[test]
    fn no_retry_starts_after_retry_for() {
        let limited = Policy { retry_for: Some(Duration::from_secs(10)), ..POLICY };
        // The first pause is between 1s and 2s: 9s + that passes 10s.
        assert_eq!(next_step(&[lock_timeout(9)], &limited, 7), Step::OutOfTime { lock_timeouts: 1 });
        assert!(next_step(&[lock_timeout(3)], &limited, 7).retries());
    }

    #[test]
    fn a_pooler_refusal_is_retried_once_without_pgoptions_only_when_watched() {
        let refused = Tried { exit: Some(2), pooler_refused: true, pgoptions: true, ..Tried::default() };
        assert_eq!(next_step(&[refused], &POLICY, 1), Step::RetryWithoutPgoptions);
        let unwatched = Policy { watched: false, ..POLICY };
        assert_eq!(next_step(&[refused], &unwatched, 1), Step::PoolerRefusedUnwatched);
        // Refused again without PGOPTIONS: something else is wrong; that is the answer.
        let again = Tried { pgoptions: false, ..refused };
        assert_eq!(next_step(&[refused, again], &POLICY, 1), Step::Done);
        // A refused attempt does not count as a lock timeout.
        let after = [refused, lock_timeout(2), lock_timeout(4)];
        assert!(matches!(next_step(&after, &POLICY, 1), Step::Retry { n: 2, .. }));
    }

    #[test]
    fn the_pause_is_jittered_below_a_doubling_bounded_ceiling() {
        for n in 1..=8 {
            for seed in [0, 1, 42, u64::MAX] {
                let (pause, ceiling) = backoff(n, seed);
                assert_eq!(ceiling, Duration::from_secs((1u64 << n.min(5)).min(30)), "attempt {n}");
                assert!(pause >= ceiling / 2 && pause <= ceiling, "attempt {n}: {pause:?} of {ceiling:?}");
            }
        }
        let pauses: std::collections::BTreeSet<Duration> = (0..20).map(|s| backoff(3, s).0).collect();
        assert!(pauses.len() > 1, "jitter varies the pause: {pauses:?}");
    }
}
