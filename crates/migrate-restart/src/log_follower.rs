//! Following a detached one-off dyno through the app's log: its output, and its exit status
//! from two sources — the exit-status marker the command prints (in-band) and the platform's
//! own `Process exited with status N` line. Either is enough; if they disagree the run counts
//! as failed. A dropped stream is re-opened with history and the lines already seen skipped,
//! so nothing is lost or printed twice; a gap that cannot be filled is said.

use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use cli_kit::{interrupt, Output};
use heroku_api::logs::{LogLine, LogSessionCreate, StreamEvent, STREAM_POLL};
use heroku_api::rendezvous::OutputScanner;
use heroku_api::Client;

use crate::ending::{Ending, TAIL_LINES};
use crate::render;
use migration_policy::is_lock_timeout;

/// How long to wait for the second source of the exit status once the first has come.
const SECOND_SOURCE_GRACE: Duration = Duration::from_millis(500);
/// History asked for when a stream is (re)opened: the platform keeps the last 1,500 lines.
const HISTORY_LINES: u32 = 1500;
/// Re-opens in a row that bring nothing new before the run counts as lost.
const MAX_FRUITLESS_REOPENS: u32 = 5;

/// Why a detached run stopped following on SIGTERM: a cancelled CI job must not kill the
/// migration halfway (it goes on, bounded by its own PGOPTIONS lock_timeout; the outside budget
/// ends with this process).
pub const LEFT_RUNNING_ON_SIGTERM: &str =
    "SIGTERM: a cancelled job or a stop request ends this process, not the migration; it goes on under its own lock_timeout";

/// What following a dyno saw.
#[derive(Debug, Clone)]
pub struct Followed {
    /// How it ended.
    pub ending: Ending,
    /// The last lines of output.
    pub tail: VecDeque<String>,
    /// The output shows Postgres cancelling a statement for its lock timeout.
    pub lock_timeout: bool,
    /// The log stream had to be re-opened this many times.
    pub reopened: u32,
    /// When the platform's log says the dyno began and ended (its first line, its exit line):
    /// what a follow that began late can time.
    pub ran: (Option<std::time::SystemTime>, Option<std::time::SystemTime>),
}

/// Called with each line of the command's output.
pub type LineHook = Box<dyn Fn(&str)>;

/// Where the lines come from.
pub struct Source {
    /// A stream already open (a Fir run opens it before the dyno exists).
    pub opened: Option<std::sync::mpsc::Receiver<StreamEvent>>,
    /// Sessions carry history (Cedar). A Fir session starts when it is created, so a re-open
    /// cannot fill what passed while none was open.
    pub history: bool,
    /// Shown each line of the command's output as it arrives (the attempt learns from it that
    /// migrate-guard guards the run from inside the dyno).
    pub on_line: Option<LineHook>,
}

/// Without history (Fir), a standby session is opened this long after the current one, so the
/// current one's end loses nothing; once a session's lifetime has been seen, at half of it.
const STANDBY_AFTER: Duration = Duration::from_secs(60);

/// How long a dyno found gone after a re-open without history gets for its exit to show.
const GONE_WITHOUT_HISTORY_GRACE: Duration = Duration::from_secs(3);

/// Whether the log's history (a session without tail, which ends once the history is sent)
/// holds any line of `dyno`: for a dyno no longer listed, "no" means the platform has never
/// heard of it, said at once instead of after waiting for lines that cannot come.
pub fn history_mentions(client: &Client, app: &str, dyno: &str, deadline: Instant) -> anyhow::Result<bool> {
    let spec = LogSessionCreate {
        dyno: Some(dyno.to_string()),
        lines: Some(HISTORY_LINES),
        tail: false,
        ..Default::default()
    };
    let rx = client.stream_log(&client.create_log_session(app, &spec)?.logplex_url)?;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(StreamEvent::Line(raw)) if LogLine::parse(&raw).is_some_and(|l| l.dyno == dyno) => return Ok(true),
            Ok(StreamEvent::Line(_)) => continue,
            Ok(StreamEvent::Ended(None)) => return Ok(false),
            Ok(StreamEvent::Ended(Some(why))) => anyhow::bail!("reading the log's history failed: {why}"),
            Err(_) => break,
        }
    }
    // The history did not end in time: not knowing is not "never heard of".
    Ok(true)
}

/// Follows `dyno` of `app` until its exit status is known, `deadline` passes, or an interrupt.
/// For a dyno no longer listed, `gone_grace` bounds the wait for its first line in the log's
/// history (a mistyped name must not wait for the deadline).
pub fn follow(
    client: &Client,
    out: &Output,
    app: &str,
    dyno: &str,
    deadline: Instant,
    gone_grace: Option<Duration>,
    source: Source,
) -> anyhow::Result<Followed> {
    let spec = LogSessionCreate {
        dyno: Some(dyno.to_string()),
        lines: source.history.then_some(HISTORY_LINES),
        tail: true,
        ..Default::default()
    };
    let Source { mut opened, history, on_line } = source;
    let mut f = Follower::new(out, dyno, deadline, gone_grace, history, on_line.as_ref());
    // Without history: the session opened while the current one still streams, and when.
    let mut standby: Option<(Receiver<StreamEvent>, Instant)> = None;
    let mut standby_after = STANDBY_AFTER;
    loop {
        // A standby has streamed since before the current session ended: nothing fell between.
        let (rx, rx_opened_at, covered) = match (opened.take(), standby.take()) {
            (Some(rx), _) => (rx, Instant::now(), false),
            (None, Some((rx, at))) => (rx, at, true),
            (None, None) => {
                let session = client.create_log_session(app, &spec)?;
                let rx = client.stream_log(&session.logplex_url)?;
                if !history && f.reopened > 0 && client.dyno_info(app, dyno).is_err_and(|e| e.is_not_found()) {
                    f.gone_at = Some(Instant::now());
                }
                (rx, Instant::now(), false)
            }
        };
        let mut new_lines = 0usize;
        let mut overlap = f.last_seen_at.is_none() || covered;
        let ended = loop {
            if !history && standby.is_none() && rx_opened_at.elapsed() >= standby_after {
                match client.create_log_session(app, &spec).and_then(|s| client.stream_log(&s.logplex_url)) {
                    Ok(rx) => standby = Some((rx, Instant::now())),
                    Err(e) => out.debug(format!("could not open a standby log session ({e}); will re-open at the end")),
                }
            }
            if let Some(done) = f.finished() {
                return Ok(done);
            }
            let raw = match rx.recv_timeout(STREAM_POLL) {
                Ok(StreamEvent::Line(l)) => l,
                Ok(StreamEvent::Ended(why)) => break why,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break Some("the log reader stopped".to_string()),
            };
            if f.take(&raw, &mut overlap) {
                new_lines += 1;
            }
        };
        // The stream ended before the status came: open a new session, with history (or switch
        // to the standby). A session's lifetime, once seen, sets when the next standby opens.
        if !history {
            standby_after = standby_after.min(rx_opened_at.elapsed() / 2);
        }
        if let Some(done) = f.stream_ended(ended, new_lines == 0 && !covered) {
            return Ok(done);
        }
    }
}

/// What following one dyno has seen so far, across every log session it opened.
struct Follower<'a> {
    out: &'a Output,
    dyno: &'a str,
    deadline: Instant,
    gone_grace: Option<Duration>,
    history: bool,
    on_line: Option<&'a LineHook>,
    began: Instant,
    /// Lines already shown, by timestamp and text: a re-opened session's history repeats them.
    seen: HashSet<(String, String)>,
    last_seen_at: Option<String>,
    ran: (Option<std::time::SystemTime>, Option<std::time::SystemTime>),
    scanner: OutputScanner,
    tail: VecDeque<String>,
    lock_timeout: bool,
    /// The platform's `Process exited with status N`.
    platform: Option<i32>,
    first_status_at: Option<Instant>,
    reopened: u32,
    fruitless: u32,
    /// Set when a re-open without history found the dyno gone: its exit may have passed unseen.
    gone_at: Option<Instant>,
}

impl<'a> Follower<'a> {
    fn new(
        out: &'a Output,
        dyno: &'a str,
        deadline: Instant,
        gone_grace: Option<Duration>,
        history: bool,
        on_line: Option<&'a LineHook>,
    ) -> Follower<'a> {
        Follower {
            out,
            dyno,
            deadline,
            gone_grace,
            history,
            on_line,
            began: Instant::now(),
            seen: HashSet::new(),
            last_seen_at: None,
            ran: (None, None),
            scanner: OutputScanner::default(),
            tail: VecDeque::with_capacity(TAIL_LINES),
            lock_timeout: false,
            platform: None,
            first_status_at: None,
            reopened: 0,
            fruitless: 0,
            gone_at: None,
        }
    }

    /// The follow is over: interrupted, hung up, past the deadline, the dyno gone with nothing
    /// seen, or the exit status in (from both sources, or from one after a grace).
    fn finished(&mut self) -> Option<Followed> {
        let dyno = self.dyno;
        // SIGTERM (what a CI system sends a cancelled job) and SIGHUP (a closed terminal) are
        // not a person asking to stop the migration: a detached one goes on, and the follow
        // command picks it up. Only Ctrl-C (SIGINT) stops it.
        if interrupt::terms() > 0 {
            return Some(self.done(Ending::Lost(LEFT_RUNNING_ON_SIGTERM.to_string())));
        }
        if interrupt::requested() {
            return Some(self.done(Ending::Interrupted));
        }
        if interrupt::hung_up() {
            return Some(self.done(Ending::Lost("the terminal hung up (SIGHUP); the migration goes on".to_string())));
        }
        if Instant::now() > self.deadline {
            return Some(self.done(Ending::TimedOut));
        }
        if self.first_status_at.is_none() && self.gone_at.is_some_and(|t| t.elapsed() > GONE_WITHOUT_HISTORY_GRACE) {
            let why = format!(
                "{dyno} ended while the log session was being re-opened, and this app's log sessions carry no history (Fir): its exit status was not seen"
            );
            return Some(self.done(Ending::Lost(why)));
        }
        if self.gone_grace.is_some_and(|g| self.seen.is_empty() && self.began.elapsed() > g) {
            return Some(self.done(Ending::Lost(format!("{dyno} is not running and the log holds no line of it"))));
        }
        let first = self.first_status_at?;
        let both = self.scanner.exit_status.is_some() && self.platform.is_some();
        (both || first.elapsed() >= SECOND_SOURCE_GRACE).then(|| {
            let mut followed = self.done(decide(self.scanner.exit_status, self.platform));
            followed.ran = self.ran;
            followed
        })
    }

    /// One raw log line: shown when it is the dyno's and new. True when it was.
    fn take(&mut self, raw: &str, overlap: &mut bool) -> bool {
        let Some(line) = LogLine::parse(raw) else { return false };
        if line.dyno != self.dyno {
            return false;
        }
        if !self.seen.insert((line.timestamp.clone(), line.text.clone())) {
            *overlap = true;
            return false;
        }
        if !*overlap {
            self.out.show(&render::Attempting::LogGap {
                history: self.history,
                since: self.last_seen_at.as_deref().unwrap_or("the start"),
                until: &line.timestamp,
            });
            *overlap = true;
        }
        self.last_seen_at = Some(line.timestamp.clone());
        self.ran.0 = self.ran.0.or_else(|| heroku_api::timestamp::parse_rfc3339(&line.timestamp));
        if line.source == "app" {
            for text in self.scanner.feed(format!("{}\n", line.text).as_bytes()) {
                self.show(text);
            }
        } else if let Some(code) = line.exit_status() {
            self.platform = Some(code);
            self.ran.1 = heroku_api::timestamp::parse_rfc3339(&line.timestamp);
        } else {
            self.out.debug(format!("{}[{}]: {}", line.source, line.dyno, line.text));
        }
        if self.first_status_at.is_none() && (self.scanner.exit_status.is_some() || self.platform.is_some()) {
            self.first_status_at = Some(Instant::now());
        }
        true
    }

    /// A line of the command's output.
    fn show(&mut self, text: String) {
        self.lock_timeout |= is_lock_timeout(&text);
        if let Some(f) = self.on_line {
            f(&text);
        }
        self.out.show(&render::Attempting::Output(&text));
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text);
    }

    /// A session ended before the status came: `Some` when re-opening is pointless (it kept
    /// ending with nothing new), else a short, growing pause before the re-open.
    fn stream_ended(&mut self, why: Option<String>, fruitless: bool) -> Option<Followed> {
        self.fruitless = if fruitless { self.fruitless + 1 } else { 0 };
        if self.fruitless > MAX_FRUITLESS_REOPENS {
            let why = why.unwrap_or_else(|| "the log stream kept closing".into());
            return Some(self.done(Ending::Lost(format!("the log stream failed: {why}"))));
        }
        self.reopened += 1;
        self.out.debug(format!("log stream ended ({}); re-opening", why.as_deref().unwrap_or("closed by the server")));
        // A stream that closes at once must not become a busy loop.
        std::thread::sleep(Duration::from_millis(50) * (self.fruitless + 1));
        None
    }

    fn done(&mut self, ending: Ending) -> Followed {
        Followed {
            ending,
            tail: std::mem::take(&mut self.tail),
            lock_timeout: self.lock_timeout,
            reopened: self.reopened,
            ran: (None, None),
        }
    }
}

/// The exit status from its two sources.
fn decide(marker: Option<i32>, platform: Option<i32>) -> Ending {
    match (marker, platform) {
        (Some(m), Some(p)) if m != p => Ending::Disagreed { marker: m, platform: p },
        (Some(c), _) | (None, Some(c)) => Ending::Exited(c),
        (None, None) => Ending::Lost("no exit status came back".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_source_is_enough_and_a_disagreement_is_said() {
        assert_eq!(decide(Some(0), Some(0)), Ending::Exited(0));
        assert_eq!(decide(Some(3), None), Ending::Exited(3));
        assert_eq!(decide(None, Some(143)), Ending::Exited(143));
        assert_eq!(decide(Some(0), Some(1)), Ending::Disagreed { marker: 0, platform: 1 });
        assert!(matches!(decide(None, None), Ending::Lost(_)));
    }
}
