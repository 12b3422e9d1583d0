//! How the guard speaks in the release output (what `git push` streams and `heroku
//! releases:output` shows): every line on stderr, prefixed `migrate-guard: ` so a reader can
//! tell the guard from the migration, outside text made printable, the summary line last.
//! The wording of the watch's events lives here too; orchestration only reports them.

use std::io::Write;
use std::time::Duration;

use cli_kit::{format_duration, printable};
use migration_policy::lockwatch::WatchEvent;
use migration_policy::text;

/// The guard's voice.
#[derive(Debug, Clone, Copy)]
pub struct Voice {
    verbose: bool,
}

impl Voice {
    /// `verbose`: also the guard's own looks and statements.
    pub fn new(verbose: bool) -> Voice {
        Voice { verbose }
    }

    /// One line, as the guard's (passwords redacted, control characters shown escaped).
    pub fn say(&self, line: impl AsRef<str>) {
        let line = cli_kit::redact(&printable(line.as_ref()));
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "migrate-guard: {line}");
    }

    /// Several lines.
    pub fn say_all(&self, lines: impl IntoIterator<Item = String>) {
        for l in lines {
            self.say(l);
        }
    }

    /// Only with `-v`.
    pub fn debug(&self, line: impl AsRef<str>) {
        if self.verbose {
            self.say(line);
        }
    }

    /// The summary line: exactly as built, nothing else on it.
    pub fn summary(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    /// A watch event.
    pub fn watch_event(&self, event: &WatchEvent) {
        match event {
            WatchEvent::Waits(w) => self.say_all(text::wait_lines(w, "migration").into_iter().map(plain)),
            WatchEvent::GotLock => self.say("the migration got its lock"),
            WatchEvent::Cut(e) => {
                self.say_all(text::enforcement_lines(e, "migration").into_iter().map(plain));
                if e.verified {
                    self.say("   its own lock_timeout was not in force (PGOPTIONS ignored or overridden); treated as a lock timeout");
                }
            }
            WatchEvent::Unreachable(e) => self.say(format!(
                "✗ lost the watch connection ({e}): the lock-wait budget is no longer enforced from outside; PGOPTIONS lock_timeout still applies"
            )),
        }
    }
}

/// A line without the terminal styling the shared wording may carry (release logs are not
/// terminals).
fn plain(line: String) -> String {
    console::strip_ansi_codes(&line).into_owned()
}

/// `5s`, `1m 30s`.
pub fn dur(d: Duration) -> String {
    format_duration(d)
}
