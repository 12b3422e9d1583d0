//! What a migration's own output says, and the session settings it is started with.

use std::time::Duration;

/// The outside budget acts this long after the session's own lock_timeout would have: when
/// PGOPTIONS is in force, Postgres cancels first and the budget never has to act.
pub const OUTSIDE_SLACK: Duration = Duration::from_millis(500);

/// `-c lock_timeout=5000 [-c statement_timeout=N]` (milliseconds).
pub fn pgoptions(lock_timeout: Duration, statement_timeout: Option<Duration>) -> String {
    let mut o = format!("-c lock_timeout={}", lock_timeout.as_millis());
    if let Some(s) = statement_timeout {
        o.push_str(&format!(" -c statement_timeout={}", s.as_millis()));
    }
    o
}

/// True when Postgres cancelled a statement for its lock timeout (Rails and Django print the
/// server's message; Rails also names the exception).
pub fn is_lock_timeout(line: &str) -> bool {
    line.contains("canceling statement due to lock timeout") || line.contains("PG::LockNotAvailable")
}

/// True when a connection pooler refused the startup options the migration was given
/// (PgBouncer: "unsupported startup parameter: options"), so it never reached the database.
pub fn is_pooler_refusal(line: &str) -> bool {
    line.contains("unsupported startup parameter")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgoptions_carry_milliseconds() {
        assert_eq!(pgoptions(Duration::from_secs(5), None), "-c lock_timeout=5000");
        assert_eq!(
            pgoptions(Duration::from_millis(1500), Some(Duration::from_secs(60))),
            "-c lock_timeout=1500 -c statement_timeout=60000"
        );
    }

    #[test]
    fn the_servers_and_the_frameworks_words_for_a_lock_timeout_are_recognised() {
        assert!(is_lock_timeout("ERROR:  canceling statement due to lock timeout"));
        assert!(is_lock_timeout("PG::LockNotAvailable: ERROR: ..."));
        assert!(!is_lock_timeout("ERROR:  canceling statement due to user request"));
        assert!(is_pooler_refusal("FATAL:  unsupported startup parameter: options"));
    }
}
