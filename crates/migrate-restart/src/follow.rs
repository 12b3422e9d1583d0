//! Following a detached one-off dyno through the app's log: its output, and its exit status
//! from two sources — the exit-status marker the command prints (in-band) and the platform's
//! own `Process exited with status N` line. Either is enough; if they disagree the run counts
//! as failed. A dropped stream is re-opened with history and the lines already seen skipped,
//! so nothing is lost or printed twice; a gap that cannot be filled is said.

use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use cli_kit::{interrupt, Output};
use heroku_api::logs::{LogLine, LogSessionCreate, StreamEvent, STREAM_POLL};
use heroku_api::rendezvous::OutputScanner;
use heroku_api::Client;

use crate::attempt::{Ending, TAIL_LINES};
use migration_policy::is_lock_timeout;

/// How long to wait for the second source of the exit status once the first has come.
const SECOND_SOURCE_GRACE: Duration = Duration::from_millis(500);
/// History asked for when a stream is (re)opened: the platform keeps the last 1,500 lines.
const HISTORY_LINES: u32 = 1500;
/// Re-opens in a row that bring nothing new before the run counts as lost.
const MAX_FRUITLESS_REOPENS: u32 = 5;

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
    let began = Instant::now();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut last_seen_at: Option<String> = None;
    let mut ran: (Option<std::time::SystemTime>, Option<std::time::SystemTime>) = (None, None);
    let mut scanner = OutputScanner::default();
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut lock_timeout = false;
    let mut platform: Option<i32> = None;
    let mut first_status_at: Option<Instant> = None;
    let mut reopened = 0u32;
    let mut fruitless = 0u32;
    let spec = LogSessionCreate {
        dyno: Some(dyno.to_string()),
        lines: source.history.then_some(HISTORY_LINES),
        tail: true,
        ..Default::default()
    };
    let mut opened = source.opened;
    // Set when a re-open without history found the dyno gone: its exit may have passed unseen.
    let mut gone_at: Option<Instant> = None;
    // Without history: the session opened while the current one still streams, and when.
    let mut standby: Option<(std::sync::mpsc::Receiver<StreamEvent>, Instant)> = None;
    let mut standby_after = STANDBY_AFTER;
    loop {
        let mut rx_opened_at = Instant::now();
        // A standby has streamed since before the current session ended: nothing fell between.
        let mut covered = false;
        let rx = match (opened.take(), standby.take()) {
            (Some(rx), _) => rx,
            (None, Some((rx, at))) => {
                rx_opened_at = at;
                covered = true;
                rx
            }
            (None, None) => {
                let session = client.create_log_session(app, &spec)?;
                let rx = client.stream_log(&session.logplex_url)?;
                if !source.history && reopened > 0 && client.dyno_info(app, dyno).is_err_and(|e| e.is_not_found()) {
                    gone_at = Some(Instant::now());
                }
                rx
            }
        };
        let mut new_lines = 0usize;
        let mut overlap = last_seen_at.is_none() || covered;
        let ended = loop {
            if !source.history && standby.is_none() && rx_opened_at.elapsed() >= standby_after {
                match client.create_log_session(app, &spec).and_then(|s| client.stream_log(&s.logplex_url)) {
                    Ok(rx) => standby = Some((rx, Instant::now())),
                    Err(e) => out.debug(format!("could not open a standby log session ({e}); will re-open at the end")),
                }
            }
            if interrupt::requested() {
                return Ok(done(Ending::Interrupted, tail, lock_timeout, reopened));
            }
            if interrupt::hung_up() {
                let why = "the terminal hung up (SIGHUP); the migration goes on".to_string();
                return Ok(done(Ending::Lost(why), tail, lock_timeout, reopened));
            }
            if Instant::now() > deadline {
                return Ok(done(Ending::TimedOut, tail, lock_timeout, reopened));
            }
            if first_status_at.is_none() && gone_at.is_some_and(|t| t.elapsed() > GONE_WITHOUT_HISTORY_GRACE) {
                let why = format!(
                    "{dyno} ended while the log session was being re-opened, and this app's log sessions carry no history (Fir): its exit status was not seen"
                );
                return Ok(done(Ending::Lost(why), tail, lock_timeout, reopened));
            }
            if gone_grace.is_some_and(|g| seen.is_empty() && began.elapsed() > g) {
                let why = format!("{dyno} is not running and the log holds no line of it");
                return Ok(done(Ending::Lost(why), tail, lock_timeout, reopened));
            }
            if let Some(first) = first_status_at {
                let both = scanner.exit_status.is_some() && platform.is_some();
                if both || first.elapsed() >= SECOND_SOURCE_GRACE {
                    let mut followed = done(decide(scanner.exit_status, platform), tail, lock_timeout, reopened);
                    followed.ran = ran;
                    return Ok(followed);
                }
            }
            let event = match rx.recv_timeout(STREAM_POLL) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break Some("the log reader stopped".to_string()),
            };
            let raw = match event {
                StreamEvent::Line(l) => l,
                StreamEvent::Ended(why) => break why,
            };
            let Some(line) = LogLine::parse(&raw) else { continue };
            if line.dyno != dyno {
                continue;
            }
            if !seen.insert((line.timestamp.clone(), line.text.clone())) {
                overlap = true;
                continue;
            }
            if !overlap {
                let why = if source.history {
                    "the log stream dropped and its history no longer reaches back to"
                } else {
                    "the log session ended and a Fir session has no history to reach back to"
                };
                out.warn(format!(
                    "{why} {}: output between then and {} may be missing",
                    last_seen_at.as_deref().unwrap_or("the start"),
                    line.timestamp
                ));
                overlap = true;
            }
            last_seen_at = Some(line.timestamp.clone());
            ran.0 = ran.0.or_else(|| heroku_api::timestamp::parse_rfc3339(&line.timestamp));
            new_lines += 1;
            if line.source == "app" {
                for text in scanner.feed(format!("{}\n", line.text).as_bytes()) {
                    lock_timeout |= is_lock_timeout(&text);
                    if let Some(f) = &source.on_line {
                        f(&text);
                    }
                    out.say(&text);
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text);
                }
            } else if let Some(code) = line.exit_status() {
                platform = Some(code);
                ran.1 = heroku_api::timestamp::parse_rfc3339(&line.timestamp);
            } else {
                out.debug(format!("{}[{}]: {}", line.source, line.dyno, line.text));
            }
            if first_status_at.is_none() && (scanner.exit_status.is_some() || platform.is_some()) {
                first_status_at = Some(Instant::now());
            }
        };
        // The stream ended before the status came: open a new session, with history (or switch
        // to the standby). A session's lifetime, once seen, sets when the next standby opens.
        if !source.history {
            standby_after = standby_after.min(rx_opened_at.elapsed() / 2);
        }
        fruitless = if new_lines == 0 && !covered { fruitless + 1 } else { 0 };
        if fruitless > MAX_FRUITLESS_REOPENS {
            let why = ended.unwrap_or_else(|| "the log stream kept closing".into());
            return Ok(done(Ending::Lost(format!("the log stream failed: {why}")), tail, lock_timeout, reopened));
        }
        reopened += 1;
        out.debug(format!("log stream ended ({}); re-opening", ended.as_deref().unwrap_or("closed by the server")));
        // A short, growing pause: a stream that closes at once must not become a busy loop.
        std::thread::sleep(Duration::from_millis(50) * (fruitless + 1));
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

fn done(ending: Ending, tail: VecDeque<String>, lock_timeout: bool, reopened: u32) -> Followed {
    Followed { ending, tail, lock_timeout, reopened, ran: (None, None) }
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
