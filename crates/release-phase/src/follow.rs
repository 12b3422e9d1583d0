//! Following one release phase to its end: the output as it comes, the dyno that runs it, the
//! locks its DDL waits on (said once per change), the lock-wait budget and the deadline.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cli_kit::{format_duration, interrupt, Output, ResolvedDatabase};
use heroku_api::release_output::{OpenError, OutputEvent};
use heroku_api::timestamp::parse_rfc3339;
use heroku_api::{Client, Dyno, Release};
use migration_policy::lockwatch::{WatchEvent, Watcher, CANCEL_GRACE};
use pg_locks::Ownership;

use crate::render::Following;
use crate::report::{DeadlineAction, DynoBrief, PhaseResult, ReleaseBrief, ReleasePhaseReport, Watched};

/// How closely to follow and what may be done on the user's behalf.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cut a DDL statement of the release that has waited on a lock this long, or that others
    /// have queued behind this long (None on a side: watch only).
    pub budgets: pg_locks::Budgets,
    /// Stop the release dyno, and cancel what its sessions run, once the phase has run this long.
    pub deadline: Option<Duration>,
    /// Longest to follow; the release phase goes on after it.
    pub timeout: Duration,
    /// Sessions with this application_name are the release's too (when the app sets one).
    pub application_name: Option<String>,
    /// The application_name of this tool's own database session.
    pub session_name: String,
}

/// What a release phase is followed with.
pub struct Context<'a> {
    /// The API client.
    pub client: &'a Client,
    /// Where people read.
    pub out: &'a Output,
    /// The app.
    pub app: &'a str,
    /// The database its release command migrates (None: output and status only).
    pub db: Option<&'a ResolvedDatabase>,
}

/// Lines of output kept for the end of a failed phase.
const TAIL: usize = 12;
/// How often the release's status and dyno are read from the API.
const API_EVERY: Duration = Duration::from_millis(500);

/// Follows `release` until it is no longer pending (or interrupt, or `timeout`).
pub fn follow(
    cx: &Context,
    release: &Release,
    previous: Option<u64>,
    opts: &Options,
) -> anyhow::Result<ReleasePhaseReport> {
    let out = cx.out;
    let started = Instant::now();
    let mut report = new_report(release, previous, opts);
    let mut watcher = start_watcher(cx, opts, &mut report);
    let mut output = OutputFollower::new(release.output_stream_url.clone());
    let mut status = release.status.clone();
    let mut next_api = Instant::now();
    let mut dyno: Option<Dyno> = None;
    let phase_started = |dyno: &Option<Dyno>| {
        dyno.as_ref().and_then(|d| d.created_at_time()).or_else(|| parse_rfc3339(&release.created_at))
    };
    let result = loop {
        if interrupt::requested() {
            break PhaseResult::Interrupted;
        }
        output.pump(cx.client, out, status == "pending");
        if let Some(inside) = output.guard_seen.as_deref().filter(|_| report.inside_guard.is_none()) {
            step_back_for_the_inside_guard(out, watcher.as_mut(), opts.budgets, inside, &mut report);
        }
        if Instant::now() >= next_api {
            next_api = Instant::now() + API_EVERY;
            if let Some(ended) = read_status(cx, release, &mut status, &mut report) {
                break ended;
            }
            if dyno.is_none() {
                dyno = find_release_dyno(cx, release, watcher.as_mut(), &mut report);
            }
        }
        let mut pause = Duration::from_millis(100);
        if let Some(w) = watcher.as_mut() {
            match tick(w, cx.app, out, &mut report) {
                Ok(next) => pause = pause.min(next),
                Err(e) => {
                    out.show(&Following::WatchLost { error: e.to_string() });
                    report.database = Watched { watched: false, reason: Some(e.to_string()) };
                    watcher = None;
                }
            }
        }
        if let (Some(limit), None) = (opts.deadline, &report.deadline_action) {
            let ran = phase_started(&dyno).and_then(|t| SystemTime::now().duration_since(t).ok());
            if ran.is_some_and(|r| r >= limit) {
                report.deadline_action = Some(at_deadline(cx, dyno.as_ref(), watcher.as_mut(), limit));
            }
        }
        if started.elapsed() >= opts.timeout {
            break PhaseResult::TimedOut;
        }
        std::thread::sleep(pause);
    };
    output.finish(cx.client, out, result);
    report.release.status = status;
    if let Some(g) = report.inside_guard.as_mut() {
        g.summary = output.guard_summary.clone();
    }
    report.output_tail = output.tail.into_iter().collect();
    report.duration_ms =
        phase_started(&dyno).and_then(|t| SystemTime::now().duration_since(t).ok()).map(|d| d.as_millis() as u64);
    report.result = result;
    Ok(report)
}

/// The report as the follow begins: nothing seen yet.
fn new_report(release: &Release, previous: Option<u64>, opts: &Options) -> ReleasePhaseReport {
    ReleasePhaseReport {
        release: brief(release),
        previous_version: previous,
        dyno: None,
        lock_wait_ms: None,
        lock_hold_ms: None,
        deadline_ms: opts.deadline.map(|d| d.as_millis() as u64),
        database: Watched { watched: false, reason: None },
        waits: Vec::new(),
        enforcements: Vec::new(),
        deadline_action: None,
        output_tail: Vec::new(),
        duration_ms: None,
        result: PhaseResult::TimedOut,
        inside_guard: None,
        superseded_by: None,
    }
}

/// The lock watch on the release's database, when there is one and it answers.
fn start_watcher(cx: &Context, opts: &Options, report: &mut ReleasePhaseReport) -> Option<Watcher> {
    let Some(db) = cx.db else {
        report.database.reason = Some("no database to watch (the app has no DATABASE_URL)".into());
        return None;
    };
    match pg_locks::connect(&db.connect_options(&opts.session_name)) {
        Ok(c) => {
            report.database.watched = true;
            report.lock_wait_ms = opts.budgets.wait.map(|d| d.as_millis() as u64);
            report.lock_hold_ms = opts.budgets.hold.map(|d| d.as_millis() as u64);
            let ownership = opts.application_name.clone().map(Ownership::AppName).into_iter().collect();
            Some(Watcher::new(c, ownership, opts.budgets, true))
        }
        Err(e) => {
            cx.out.show(&Following::WatchNotStarted { error: e.to_string() });
            report.database.reason = Some(e.to_string());
            None
        }
    }
}

/// The release's status, read again: `Some` once it is no longer pending.
fn read_status(
    cx: &Context,
    release: &Release,
    status: &mut String,
    report: &mut ReleasePhaseReport,
) -> Option<PhaseResult> {
    match cx.client.release_info(cx.app, &release.id) {
        Ok(r) => *status = r.status,
        Err(e) => cx.out.debug(format!("reading v{}: {e}", release.version)),
    }
    match status.as_str() {
        "pending" => None,
        "succeeded" => Some(PhaseResult::Succeeded),
        "expired" => {
            report.superseded_by = cx.client.latest_release(cx.app).ok().flatten().map(|r| r.version);
            Some(PhaseResult::Superseded)
        }
        _ => Some(PhaseResult::Failed),
    }
}

/// The dyno running this release's phase, once it is listed: said, recorded, and told to the
/// watcher (sessions that connected after it started may be its own).
fn find_release_dyno(
    cx: &Context,
    release: &Release,
    watcher: Option<&mut Watcher>,
    report: &mut ReleasePhaseReport,
) -> Option<Dyno> {
    let list = cx.client.dynos(cx.app).ok()?;
    let d = list
        .into_iter()
        .find(|d| d.process_type == "release" && d.release.as_ref().is_some_and(|r| r.version == release.version))?;
    let age = d.age(SystemTime::now()).map(format_duration).unwrap_or_else(|| "?".into());
    cx.out.show(&Following::DynoFound { version: release.version, dyno: &d.name, age, command: &d.command });
    report.dyno = Some(DynoBrief { name: d.name.clone(), id: d.id.clone(), created_at: d.created_at.clone() });
    if let (Some(w), Some(t)) = (watcher, d.created_at_time()) {
        // Sessions that connected after the dyno started, running DDL, may be its own.
        let since_epoch = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        w.claim(Ownership::ConnectedAfter { since_epoch, who: d.name.clone(), client_addr: None });
    }
    Some(d)
}

/// migrate-guard runs inside the release dyno: it enforces the budget where the migration runs,
/// so this follower's budget becomes a second line, acting only after the inside guard would
/// have (the one rule of [`migration_policy::lockwatch::second_line`]): the two never race to
/// cancel one statement, and the site stays bounded if the inside guard cannot act.
fn step_back_for_the_inside_guard(
    out: &Output,
    watcher: Option<&mut Watcher>,
    budgets: pg_locks::Budgets,
    inside_line: &str,
    report: &mut ReleasePhaseReport,
) {
    let second_line = migration_policy::lockwatch::second_lines(budgets, inside_line);
    if let Some(w) = watcher {
        w.set_budgets(second_line);
    }
    out.show(&Following::GuardInside { second_line });
    report.inside_guard = Some(crate::report::InsideGuard { summary: None });
}

fn brief(r: &Release) -> ReleaseBrief {
    ReleaseBrief { version: r.version, id: r.id.clone(), description: r.description.clone(), status: r.status.clone() }
}

/// The release command's output: read as it comes, reopened where it left off.
struct OutputFollower {
    url: Option<String>,
    rx: Option<Receiver<OutputEvent>>,
    offset: u64,
    tail: VecDeque<String>,
    next_open: Instant,
    warned: bool,
    /// migrate-guard announced itself in the output: its first line (its budgets are read from it).
    guard_seen: Option<String>,
    /// Its summary line, once printed.
    guard_summary: Option<String>,
}

impl OutputFollower {
    fn new(url: Option<String>) -> OutputFollower {
        OutputFollower {
            url,
            rx: None,
            offset: 0,
            tail: VecDeque::new(),
            next_open: Instant::now(),
            warned: false,
            guard_seen: None,
            guard_summary: None,
        }
    }

    /// Prints what has arrived; (re)opens the stream while the release runs.
    fn pump(&mut self, client: &Client, out: &Output, running: bool) {
        if self.rx.is_none() && running && Instant::now() >= self.next_open {
            self.open(client, out);
        }
        loop {
            let Some(rx) = &self.rx else { return };
            match rx.try_recv() {
                Ok(OutputEvent::Line { text, offset }) => self.line(out, text, offset),
                Ok(OutputEvent::Ended(_)) | Err(TryRecvError::Disconnected) => {
                    // Ended: the command ended or the connection dropped; the status says which,
                    // and the next pump reopens from the offset while it still runs.
                    self.rx = None;
                    self.next_open = Instant::now() + Duration::from_millis(200);
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    fn open(&mut self, client: &Client, out: &Output) {
        let Some(url) = &self.url else { return };
        match client.stream_release_output(url, self.offset) {
            Ok(rx) => self.rx = Some(rx),
            // Not started yet: the platform answers 404 until the release command runs.
            Err(OpenError::NotStarted) => self.next_open = Instant::now() + Duration::from_millis(250),
            Err(OpenError::Failed(e)) => {
                if !self.warned {
                    out.show(&Following::OutputUnavailable { error: e.to_string() });
                    self.warned = true;
                }
                self.next_open = Instant::now() + Duration::from_secs(2);
            }
        }
    }

    fn line(&mut self, out: &Output, text: String, offset: u64) {
        self.offset = offset;
        if self.guard_seen.is_none() && migration_policy::signs::guard_started(&text) {
            self.guard_seen = Some(text.to_string());
        }
        if let Some(s) = migration_policy::signs::guard_summary(&text) {
            self.guard_summary = Some(s.to_string());
        }
        out.show(&Following::Output(&text));
        self.tail.push_back(text);
        if self.tail.len() > TAIL {
            self.tail.pop_front();
        }
    }

    /// After the phase ended: read what is left (the stream ends with the command).
    fn finish(&mut self, client: &Client, out: &Output, result: PhaseResult) {
        if !matches!(result, PhaseResult::Succeeded | PhaseResult::Failed) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        if self.rx.is_none() {
            if let Some(url) = self.url.clone() {
                self.rx = client.stream_release_output(&url, self.offset).ok();
            }
        }
        while let Some(rx) = &self.rx {
            let next = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            match next {
                Ok(OutputEvent::Line { text, offset }) => self.line(out, text, offset),
                _ => self.rx = None,
            }
        }
    }
}

/// One look of the watcher: new waits said and recorded, the budget enforced. Returns how soon
/// to look again.
fn tick(w: &mut Watcher, app: &str, out: &Output, report: &mut ReleasePhaseReport) -> anyhow::Result<Duration> {
    let (events, next) = w.look()?;
    for e in events {
        match e {
            WatchEvent::Waits(wait) => {
                out.show(&Following::Waits(&wait));
                report.waits.push(wait);
            }
            WatchEvent::GotLock => out.show(&Following::GotLock),
            WatchEvent::Cut(enforcement) => {
                out.show(&Following::Cut { app, enforcement: &enforcement });
                report.enforcements.push(enforcement);
            }
            WatchEvent::Unreachable(_) => {}
        }
    }
    Ok(next)
}

/// The deadline passed: stop the release dyno by id and cancel what its sessions still run,
/// then verify both.
fn at_deadline(cx: &Context, dyno: Option<&Dyno>, watcher: Option<&mut Watcher>, limit: Duration) -> DeadlineAction {
    let out = cx.out;
    let mut action =
        DeadlineAction { stop_sent: false, dyno_gone: false, cancelled: Vec::new(), still_running: Vec::new() };
    out.show(&Following::Deadline { limit });
    if let Some(d) = dyno {
        match cx.client.stop_dyno_if_present(cx.app, &d.id) {
            Ok(_) => action.stop_sent = true,
            Err(e) => out.show(&Following::StopFailed { dyno: &d.name, id: &d.id, error: e.to_string() }),
        }
    } else {
        out.show(&Following::NoDynoToStop);
    }
    if let Some(w) = watcher {
        if let Ok((snap, claims)) = w.claims() {
            let running: Vec<i32> = claims
                .iter()
                .map(|c| c.pid)
                .filter(|p| snap.get(*p).is_some_and(|s| s.state.as_deref() == Some("active")))
                .collect();
            if !running.is_empty() {
                let opts = pg_locks::ActOptions { grace: CANCEL_GRACE, escalate: false };
                match pg_locks::act(w.client(), &snap, &running, pg_locks::Signal::Cancel, opts) {
                    Ok(r) => {
                        action.cancelled = running.clone();
                        action.still_running = r.outcomes.iter().filter(|o| !o.took).map(|o| o.pid).collect();
                    }
                    Err(e) => out.show(&Following::CancelFailed { error: e.to_string() }),
                }
            }
        }
    }
    if let Some(d) = dyno {
        let mut poll =
            cli_kit::Poll::with_pauses(Duration::from_secs(30), Duration::from_millis(100), Duration::from_secs(1));
        action.dyno_gone = loop {
            if cx.client.dynos(cx.app).is_ok_and(|l| !l.iter().any(|x| x.id == d.id)) {
                break true;
            }
            if !poll.wait_next() {
                break false;
            }
        };
        if action.dyno_gone {
            out.show(&Following::Stopped { dyno: &d.name });
        } else {
            out.show(&Following::StillListed { dyno: &d.name, app: cx.app });
        }
    }
    if !action.cancelled.is_empty() {
        if action.still_running.is_empty() {
            out.show(&Following::Cancelled { pids: &action.cancelled });
        } else {
            out.show(&Following::StillRunning { pids: &action.still_running });
        }
    }
    action
}
