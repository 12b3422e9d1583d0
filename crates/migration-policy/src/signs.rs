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
/// server's message; Rails also names the exception), or when `migrate-guard` inside the dyno
/// ended its run on a lock timeout (its own cut reads "canceling statement due to user
/// request" in the migration's output; its summary line says what it was).
pub fn is_lock_timeout(line: &str) -> bool {
    line.contains("canceling statement due to lock timeout")
        || line.contains("PG::LockNotAvailable")
        || guard_summary(line).is_some_and(|s| s.contains(" outcome=lock_timeout "))
}

/// True for migrate-guard's summary when its hold budget cut the migration (not retried).
pub fn is_hold_cut(line: &str) -> bool {
    guard_summary(line).is_some_and(|s| s.contains(" outcome=hold_cut "))
}

/// How every line migrate-guard prints begins (after the log's own prefix, if any).
pub const GUARD_PREFIX: &str = "migrate-guard: ";

/// True for the line with which migrate-guard announces what it guards: the run (a one-off,
/// a release phase) is guarded from inside the dyno.
pub fn guard_started(line: &str) -> bool {
    line.contains("migrate-guard: guarding `")
}

/// The budget migrate-guard says it enforces, from its first line: where it cuts from its own
/// connection (`… cut from the guard's own connection at 1.5s`, `… cut … at 5.5s`), else its
/// PGOPTIONS lock_timeout alone (`lock_timeout 5s via PGOPTIONS only (unwatched)`).
pub fn guard_budget(line: &str) -> Option<std::time::Duration> {
    if !guard_started(line) {
        return None;
    }
    let after = |marker: &str| spoken_duration(&line[line.find(marker)? + marker.len()..]);
    after("cut from the guard's own connection at ").or_else(|| after("(lock_timeout "))
}

/// What migrate-guard's first line says of holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsideHold {
    /// `holds cut at 5.5s`: it cuts a statement others have queued behind that long.
    At(std::time::Duration),
    /// `holds not cut (--lock-hold off)`.
    Off,
    /// Nothing: a guard from before the hold budget.
    Unsaid,
}

/// What migrate-guard's first line says of holds.
pub fn guard_hold(line: &str) -> InsideHold {
    if !guard_started(line) {
        return InsideHold::Unsaid;
    }
    if line.contains(HOLDS_NOT_CUT) {
        return InsideHold::Off;
    }
    let Some(at) = line.find(HOLDS_CUT_AT).map(|i| i + HOLDS_CUT_AT.len()) else { return InsideHold::Unsaid };
    spoken_duration(&line[at..]).map(InsideHold::At).unwrap_or(InsideHold::Unsaid)
}

/// The duration at the start of `text` as the guard says it (`5.5s`, `1m 30s`, `1h 5m`), up
/// to the end of its clause (`;`, `)`, `,` or ` via`). Every part is read: a budget of 1m 30s
/// must not be taken for 1m.
fn spoken_duration(text: &str) -> Option<std::time::Duration> {
    let clause: String = text.chars().take_while(|c| !matches!(c, ';' | ')' | ',')).collect();
    let clause = clause.split(" via").next().unwrap_or_default();
    let parts: Vec<&str> = clause.split_whitespace().collect();
    if parts.is_empty() {
        return None;
    }
    parts.iter().map(|p| cli_kit::parse_duration(p).ok()).sum()
}

/// How migrate-guard's first line says it cuts holds (followed by the budget)…
pub const HOLDS_CUT_AT: &str = "holds cut at ";
/// …or that it does not.
pub const HOLDS_NOT_CUT: &str = "holds not cut (--lock-hold off)";

/// migrate-guard's summary line (`migrate-guard: outcome=… attempts=… cut=… waited_ms=… exit=…`),
/// from where it starts in `line`.
pub fn guard_summary(line: &str) -> Option<&str> {
    let at = line.find("migrate-guard: outcome=")?;
    Some(line[at..].trim_end())
}

/// True when a connection pooler refused the startup options the migration was given
/// (PgBouncer: "unsupported startup parameter: options"), so it never reached the database.
pub fn is_pooler_refusal(line: &str) -> bool {
    line.contains("unsupported startup parameter")
}

#[cfg(test)]
mod guard_line_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_inside_guards_budget_is_read_from_its_first_line() {
        let watched = "migrate-guard: guarding `sh -c 'rake db:migrate'` on release.7 (lock_timeout 5s via PGOPTIONS, cut from the guard's own connection at 5.5s; sessions named migrate-restart/release.7; up to 3 retries within 10m; deadline 55m)";
        assert_eq!(guard_budget(watched), Some(Duration::from_millis(5500)));
        let unwatched = "migrate-guard: guarding `sh -c 'x'` on release.7 (lock_timeout 30s via PGOPTIONS only (unwatched); sessions named …)";
        assert_eq!(guard_budget(unwatched), Some(Duration::from_secs(30)));
        assert_eq!(guard_budget("== migrating"), None);
        // Every part of a budget said in two: 1m 30s is not 1m.
        let long = "migrate-guard: guarding `x` on release.7 (lock_timeout 1m 30s via PGOPTIONS, cut from the guard's own connection at 1m 30s; holds cut at 1h 5m; sessions named …)";
        assert_eq!(guard_budget(long), Some(Duration::from_secs(90)));
        assert_eq!(guard_hold(long), InsideHold::At(Duration::from_secs(3900)));
    }

    #[test]
    fn what_the_inside_guard_does_with_holds_is_read_from_its_first_line() {
        let at = "migrate-guard: guarding `x` on release.7 (lock_timeout 5s via PGOPTIONS, cut from the guard's own connection at 5.5s; holds cut at 5.5s; sessions named …)";
        assert_eq!(guard_hold(at), InsideHold::At(Duration::from_millis(5500)));
        let off = "migrate-guard: guarding `x` on release.7 (lock_timeout 5s via PGOPTIONS, cut from the guard's own connection at 5.5s; holds not cut (--lock-hold off); sessions named …)";
        assert_eq!(guard_hold(off), InsideHold::Off);
        let old = "migrate-guard: guarding `x` on release.7 (lock_timeout 5s via PGOPTIONS, cut from the guard's own connection at 5.5s; sessions named …)";
        assert_eq!(guard_hold(old), InsideHold::Unsaid);
        let outside = pg_locks::Budgets::both(Some(Duration::from_secs(5)));
        let raised = Some(Duration::from_millis(7500));
        assert_eq!(crate::lockwatch::second_lines(outside, at), pg_locks::Budgets { wait: raised, hold: raised });
        assert_eq!(crate::lockwatch::second_lines(outside, off).hold, None);
        assert_eq!(crate::lockwatch::second_lines(outside, old).hold, raised);
    }
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
        // migrate-guard's summary, as the log shows it (after the platform's prefix).
        let cut = "app[run.4]: migrate-guard: outcome=lock_timeout attempts=1 cut=1 waited_ms=0 exit=1";
        assert!(is_lock_timeout(cut));
        assert!(!is_lock_timeout("migrate-guard: outcome=failed attempts=1 cut=0 waited_ms=0 exit=7"));
        assert_eq!(guard_summary(cut), Some(&cut[cut.find("migrate-guard").unwrap()..]));
        assert!(guard_started("migrate-guard: guarding `rake db:migrate` on release.3 (…)"));
        assert!(!guard_started("guarding `x`"));
    }
}
