//! The app's log as the platform serves it: every line a dyno writes and every state change
//! the platform records, streamed to a log session's `logplex_url` as server-sent events —
//! what `heroku logs` and `heroku run:detached --tail` read (lib/run/log-displayer.js in the
//! pinned CLI: `POST /apps/{app}/log-sessions` with `dyno`, `lines`, `tail`, `source`, then an
//! EventSource on `logplex_url`; one line per event; without `tail` the stream ends after the
//! history).
//!
//! Faults: lines can arrive late ([`crate::Faults::log_delay`]) and a stream can drop after a
//! number of lines ([`crate::Faults::log_drop_after`]), as a real log stream does.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::model::World;

/// Each app's log and the log sessions made to read it.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    /// Each app's log, in order.
    pub lines: std::collections::BTreeMap<String, Vec<LogLine>>,
    /// Log sessions created and not yet streamed, by id.
    pub sessions: std::collections::HashMap<String, LogSession>,
    pub(crate) next_seq: u64,
}

impl Logs {
    /// An app's log so far (empty for an app that has logged nothing).
    pub fn of(&self, app: &str) -> &[LogLine] {
        self.lines.get(app).map(Vec::as_slice).unwrap_or_default()
    }
}

/// One log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Order of arrival (the SSE event id).
    pub seq: u64,
    /// When it was written.
    pub at: SystemTime,
    /// When a log session may see it (later with the `log_delay` fault).
    pub visible_at: Instant,
    /// `app` (the dyno's own output) or `heroku` (the platform).
    pub source: String,
    /// `run.1234`, `web.1`, `web-848cd4f64d-pvpr2`, `router`…
    pub dyno: String,
    /// The writing dyno's process type (`web`), for sessions that ask for one.
    pub process_type: String,
    /// The line itself.
    pub text: String,
}

impl LogLine {
    /// `2026-11-22T06:00:01.123456+00:00 app[run.1234]: output line`.
    pub fn formatted(&self) -> String {
        format!("{} {}[{}]: {}", crate::clock::log_time(self.at), self.source, self.dyno, self.text)
    }
}

/// What a session asked for.
#[derive(Debug, Clone)]
pub struct LogSession {
    /// The app.
    pub app: String,
    /// Only this dyno (`run.1234`), or on Cedar also a process type (`web`).
    pub dyno: Option<String>,
    /// Only this process type (Fir's `type`; Cedar takes a type in `dyno`).
    pub process_type: Option<String>,
    /// Only `app` or `heroku` lines.
    pub source: Option<String>,
    /// History lines to send first.
    pub lines: usize,
    /// Keep streaming new lines.
    pub tail: bool,
    /// The stream ends after this long (Fir).
    pub ends_after: Option<Duration>,
    /// A Fir session: `dyno` is a dyno name only.
    pub fir: bool,
}

impl LogSession {
    fn wants(&self, l: &LogLine) -> bool {
        let dyno_ok = match self.dyno.as_deref() {
            None => true,
            Some(d) if self.fir || d.contains('.') => l.dyno == d,
            Some(t) => l.process_type == t,
        };
        let type_ok = self.process_type.as_deref().is_none_or(|t| l.process_type == t);
        dyno_ok && type_ok && self.source.as_deref().is_none_or(|s| l.source == s)
    }
}

impl World {
    /// Appends a line to an app's log.
    pub fn log_line(&mut self, app: &str, source: &str, dyno: &str, text: &str) {
        self.logs.next_seq += 1;
        let process_type = self
            .apps
            .get(app)
            .and_then(|a| a.dynos.iter().find(|d| d.name == dyno))
            .map(|d| d.process_type.clone())
            .unwrap_or_else(|| dyno.split(['.', '-']).next().unwrap_or(dyno).to_string());
        let line = LogLine {
            process_type,
            seq: self.logs.next_seq,
            at: SystemTime::now(),
            visible_at: Instant::now() + self.faults.log_delay,
            source: source.to_string(),
            dyno: dyno.to_string(),
            text: text.to_string(),
        };
        self.logs.lines.entry(app.to_string()).or_default().push(line);
    }

    /// Every line of an app's log so far, formatted (for tests).
    pub fn log_text(&self, app: &str) -> Vec<String> {
        self.logs.of(app).iter().map(LogLine::formatted).collect()
    }
}

/// The lines after `after` that `session` may see now, in order.
fn visible(world: &World, session: &LogSession, after: u64) -> Vec<LogLine> {
    let now = Instant::now();
    world
        .logs
        .of(&session.app)
        .iter()
        .filter(|l| l.seq > after && l.visible_at <= now && session.wants(l))
        .cloned()
        .collect()
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes lines as events; false when the stream must end (the client went away, or the
/// one-shot drop fault fired after `log_drop_after` lines).
fn send(world: &Mutex<World>, out: &mut dyn Write, lines: Vec<LogLine>, sent: &mut usize) -> bool {
    for l in lines {
        {
            let mut w = lock(world);
            if w.faults.log_drop_after.is_some_and(|n| *sent >= n) {
                w.faults.log_drop_after = None;
                return false;
            }
        }
        if write!(out, "id: {}\ndata: {}\n\n", l.seq, l.formatted()).and_then(|_| out.flush()).is_err() {
            return false;
        }
        *sent += 1;
    }
    true
}

/// Streams a session as server-sent events until it ends (no tail), the client goes away, or a
/// drop fault fires. The HTTP head has been written.
pub fn stream(world: Arc<Mutex<World>>, session: LogSession, out: &mut dyn Write) {
    let history = {
        let w = lock(&world);
        let all = visible(&w, &session, 0);
        let skip = all.len().saturating_sub(session.lines);
        all.into_iter().skip(skip).collect::<Vec<_>>()
    };
    let mut last = match history.last() {
        Some(l) => l.seq,
        // Nothing to show yet: new lines start after what is visible now (a line still in
        // flight, with the log_delay fault, is new).
        None => {
            let now = Instant::now();
            let w = lock(&world);
            w.logs.of(&session.app).iter().rev().find(|l| l.visible_at <= now).map(|l| l.seq).unwrap_or(0)
        }
    };
    let started = Instant::now();
    let mut sent = 0usize;
    if !send(&world, out, history, &mut sent) || !session.tail {
        return;
    }
    // A tail ends after an hour at most (the platform's sessions are not forever either); a
    // Fir session sooner.
    let limit = session.ends_after.unwrap_or(Duration::from_secs(3600));
    let mut quiet_since = Instant::now();
    while started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(25));
        let new = visible(&lock(&world), &session, last);
        if let Some(l) = new.last() {
            last = l.seq;
            quiet_since = Instant::now();
        }
        if !send(&world, out, new, &mut sent) {
            return;
        }
        // A comment now and then finds a client that went away.
        if quiet_since.elapsed() > Duration::from_secs(1) {
            if write!(out, ": keep-alive\n\n").and_then(|_| out.flush()).is_err() {
                return;
            }
            quiet_since = Instant::now();
        }
    }
}
