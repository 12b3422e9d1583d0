//! Bounded polling with backoff: never a fixed sleep, never an unbounded wait.

use std::time::{Duration, Instant};

/// A polling schedule: first pause `initial`, growing by half each time up to `max`, never
/// sleeping past the deadline.
#[derive(Debug, Clone)]
pub struct Poll {
    started: Instant,
    deadline: Instant,
    pause: Duration,
    max: Duration,
}

impl Poll {
    /// Polls for at most `limit`, starting with 100ms pauses, growing to at most 2s.
    pub fn new(limit: Duration) -> Poll {
        Poll::with_pauses(limit, Duration::from_millis(100), Duration::from_secs(2))
    }

    /// Polls for at most `limit` with custom pauses.
    pub fn with_pauses(limit: Duration, initial: Duration, max: Duration) -> Poll {
        let started = Instant::now();
        Poll { started, deadline: started + limit, pause: initial, max }
    }

    /// Sleeps until the next check; `false` once the deadline has passed (check no more).
    pub fn wait_next(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        std::thread::sleep(self.pause.min(self.deadline - now));
        self.pause = (self.pause * 3 / 2).min(self.max);
        true
    }

    /// Time since polling began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_deadline_and_backs_off() {
        let mut p = Poll::with_pauses(Duration::from_millis(120), Duration::from_millis(20), Duration::from_millis(50));
        let mut checks = 0;
        while p.wait_next() {
            checks += 1;
            assert!(checks < 20, "did not stop");
        }
        assert!(p.elapsed() >= Duration::from_millis(120));
        assert!(p.elapsed() < Duration::from_millis(400));
        assert!((3..=6).contains(&checks), "{checks} checks: pauses should grow (20, 30, 45, 50…)");
    }
}
