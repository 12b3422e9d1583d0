//! The guard's operation, as its steps.

use std::time::{Duration, Instant};

use cli_kit::{interrupt, Exit};
use migration_policy::debris::LeftBehind;
use migration_policy::drive::{drive, DebrisCheck, Event, Outcome as Driven};
use migration_policy::lockwatch::{Reads, Watch, WatchLog};
use migration_policy::{Policy, Tried, OUTSIDE_SLACK};
use pg_locks::{Conn, Ownership};

use crate::child::{self, Launch};
use crate::clear::{self, ClearOptions};
use crate::cli::Args;
use crate::report::{AttemptReport, GuardReport, Outcome};
use crate::setup::Setup;
use crate::voice::{dur, Attempts, Said, Stopped, Voice};

/// How long ended sessions have to be seen gone.
const END_GRACE: Duration = Duration::from_secs(5);
/// How long the command has to exit after SIGTERM before SIGKILL.
const CHILD_GRACE: Duration = Duration::from_secs(5);

struct Guard<'a> {
    args: &'a Args,
    setup: Setup,
    voice: Voice,
    deadline: Instant,
    /// The URL the watch reads (the direct one when the command's goes through a pooler).
    watch_url: Option<String>,
    /// The command's URL goes through a pooler that refuses startup options.
    pooled: bool,
    report: GuardReport,
}

pub fn guard(args: Args) -> anyhow::Result<Exit> {
    interrupt::install();
    let voice = Voice::new(args.verbose);
    // Bad input is one line in the release output, marked as the guard's, and nothing starts.
    let setup = match Setup::prepare(&args) {
        Ok(s) => s,
        Err(e) => {
            voice.show(&Said::Error(cli_kit::one_line(&e)));
            return Ok(cli_kit::exit_for(&e));
        }
    };
    let report = GuardReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        dyno: setup.dyno.clone(),
        command: setup.argv.clone(),
        session_name: setup.session_name.clone(),
        database: setup.database_var.clone(),
        watched: false,
        lock_wait_ms: args.lock_wait.0.map(|d| d.as_millis() as u64),
        lock_hold_ms: args.lock_wait.budgets(args.lock_hold).hold.map(|d| d.as_millis() as u64),
        clearing: Default::default(),
        attempts: Vec::new(),
        outcome: Outcome::Refused,
        ended_sessions: None,
        exit_status: 0,
    };
    let deadline = Instant::now() + args.deadline;
    let mut g = Guard { args: &args, setup, voice, deadline, watch_url: None, pooled: false, report };
    let exit = g.operate();
    g.report.exit_status = exit.code() as i32;
    g.finish();
    Ok(exit)
}

impl Guard<'_> {
    fn operate(&mut self) -> Exit {
        let mut conn = match self.connect_watch() {
            Ok(c) => c,
            Err(exit) => return exit,
        };
        if let Some(c) = conn.as_mut().filter(|_| !self.args.no_preflight) {
            if let Err(exit) = self.clear(c) {
                return exit;
            }
        }
        if let Err(exit) = self.wait_for_the_old_code(conn.as_mut()) {
            return exit;
        }
        self.voice.show(&self.guarding());
        drop(conn);
        let debris_db = self.watch_url.as_ref().map(|url| self.setup.connect_options(url));
        let voice = self.voice;
        let debris = DebrisCheck::before_first_attempt(debris_db, self.args.drop_invalid_indexes, |error| {
            voice.show(&Said::NoBaseline { error })
        });
        self.attempts(&debris)
    }

    /// `--plan` names queries the migration breaks: while the running release still sends one,
    /// the contract step does not run (5); `--allow-breaking` runs it anyway, said.
    fn wait_for_the_old_code(&mut self, conn: Option<&mut Conn>) -> Result<(), Exit> {
        let Some(file) = self.setup.plan.as_ref().filter(|f| !f.breaks.is_empty()) else { return Ok(()) };
        let breaks = file.breaks.clone();
        let checked = match conn {
            Some(c) => migration_policy::contract::still_arriving(
                pg_locks::Connection::client(c),
                &breaks,
                migration_policy::contract::WINDOW,
            ),
            None => Err(anyhow::anyhow!("the database is not watched (--unwatched)")),
        };
        let refuse = match &checked {
            Ok(arriving) if arriving.is_empty() => {
                self.voice.show(&Said::OldCodeGone { breaks: breaks.len() });
                return Ok(());
            }
            Ok(arriving) => Said::BreaksStillArriving { arriving, allowed: self.args.allow_breaking },
            Err(e) => Said::BreaksUnchecked { error: cli_kit::one_line(e), allowed: self.args.allow_breaking },
        };
        self.voice.show(&refuse);
        if self.args.allow_breaking {
            return Ok(());
        }
        self.report.outcome = Outcome::Refused;
        Err(Exit::Refused)
    }

    fn stop_requested(&self) -> Option<Stopped> {
        if interrupt::requested() {
            Some(Stopped::Signal)
        } else if Instant::now() >= self.deadline {
            Some(Stopped::Deadline)
        } else {
            None
        }
    }

    /// The watch's connection. A database it cannot reach (down, no free slot, refused) means
    /// no budget from outside: refuse, unless `--unwatched` says PGOPTIONS alone will do.
    fn connect_watch(&mut self) -> Result<Option<Conn>, Exit> {
        let opts = self.setup.connect_options(&self.setup.url);
        let first = pg_locks::connect(&opts);
        self.pooled = first.as_ref().is_ok_and(|c| c.through_pooler());
        let direct = self.setup.direct_var().map(str::to_string);
        let conn = match (first, direct) {
            (Ok(c), Some(var)) if c.through_pooler() => {
                self.voice.show(&Said::WatchReadsDirect { var: &self.setup.database_var, direct: &var });
                let url = self.setup.vars[&var].clone();
                cli_kit::register_url_password(&url);
                self.watch_url = Some(url.clone());
                pg_locks::connect(&self.setup.connect_options(&url))
            }
            (first, _) => {
                self.watch_url = Some(self.setup.url.clone());
                first
            }
        };
        match conn {
            Ok(c) => {
                if let Some(p) =
                    self.watch_url.as_ref().and_then(|u| pg_locks::parse_url(u, pg_locks::SslMode::Require).ok())
                {
                    self.voice.debug(format!(
                        "watching database {} on {} as {}",
                        p.dbname,
                        p.host,
                        crate::setup::OWN_NAME
                    ));
                }
                self.report.watched = true;
                Ok(Some(c))
            }
            Err(e) if self.args.unwatched => {
                self.watch_url = None;
                self.voice.show(&Said::Unwatched { error: e.to_string() });
                Ok(None)
            }
            Err(e) => {
                self.voice.show(&Said::CannotWatch { error: e.to_string() });
                self.report.outcome = Outcome::Refused;
                Err(Exit::Refused)
            }
        }
    }

    fn clear(&mut self, conn: &mut Conn) -> Result<(), Exit> {
        if let Some(file) = &self.setup.plan {
            if let Err(e) = file.check_against(pg_locks::Connection::client(conn)) {
                self.voice.show(&Said::PlanRefused { error: cli_kit::one_line(&e) });
                self.report.outcome = Outcome::Refused;
                return Err(cli_kit::exit_for(&e));
            }
        }
        let opts = ClearOptions {
            wait_for: self.args.wait_for_clear,
            max_xact_age: self.args.max_xact_age,
            cancel_backups: self.args.cancel_backups,
            plan: self.setup.plan.as_ref().map(|f| &f.plan),
        };
        let deadline = self.deadline;
        let stop = || interrupt::requested() || Instant::now() >= deadline;
        let cleared = match clear::wait_for_clear(conn, &opts, &self.voice, stop) {
            Ok(Ok(c)) => c,
            Ok(Err(clear::Stop::Interrupted)) => {
                self.voice.show(&Said::StoppedWhileClearing);
                self.report.outcome = Outcome::Stopped;
                return Err(Exit::Failed);
            }
            Err(e) => {
                self.voice.show(&Said::LocksUnread { error: e.to_string() });
                self.report.outcome = Outcome::Refused;
                return Err(Exit::Refused);
            }
        };
        self.report.clearing = cleared.clearing;
        if !self.report.clearing.clear {
            let app = self.setup.app.as_deref();
            self.voice.show(&Said::Refused { remaining: &cleared.remaining, last: &cleared.last, app });
            self.report.outcome = Outcome::Refused;
            return Err(Exit::Refused);
        }
        if self.report.clearing.waited_ms > 0 && !self.report.clearing.blockers.is_empty() {
            self.voice.show(&Said::ClearNow { waited: Duration::from_millis(self.report.clearing.waited_ms) });
        }
        Ok(())
    }

    fn guarding(&self) -> Said<'_> {
        let budget = match (&self.watch_url, self.args.lock_wait.0, self.outside_budget().wait) {
            (_, None, _) | (_, _, None) => {
                "no lock-wait budget (--lock-wait off): statements wait as long as their locks take; the guard watches"
                    .to_string()
            }
            (Some(_), Some(_), Some(outside)) if self.pooled => format!(
                "no PGOPTIONS (the pooler refuses them): lock waits cut from the guard's own connection at {}",
                dur(outside)
            ),
            (Some(_), Some(lock_wait), Some(outside)) => format!(
                "lock_timeout {} via PGOPTIONS, cut from the guard's own connection at {}",
                dur(lock_wait),
                dur(outside)
            ),
            (None, Some(lock_wait), _) => format!("lock_timeout {} via PGOPTIONS only (unwatched)", dur(lock_wait)),
        };
        let holds = match (&self.watch_url, self.outside_budget().hold) {
            (None, _) => "nothing bounds how long others queue behind its locks (unwatched)".to_string(),
            (Some(_), Some(hold)) => format!("{}{}", migration_policy::signs::HOLDS_CUT_AT, dur(hold)),
            (Some(_), None) => migration_policy::signs::HOLDS_NOT_CUT.to_string(),
        };
        let budget = format!("{budget}; {holds}");
        Said::Guarding {
            argv: cli_kit::shell::join(&self.setup.argv),
            dyno: &self.setup.dyno,
            budget,
            sessions: &self.setup.session_name,
            retries: self.args.retries,
            retry_for: self.args.retry_for,
            deadline: self.args.deadline,
        }
    }

    /// The budgets as the watch enforces them: waits just after Postgres's own lock_timeout
    /// would have acted, so PGOPTIONS in force means the watch never has to; holds at the hold
    /// budget itself (nothing inside the session bounds a hold).
    fn outside_budget(&self) -> pg_locks::Budgets {
        let asked = self.args.lock_wait.budgets(self.args.lock_hold);
        pg_locks::Budgets { wait: asked.wait.map(|d| d + OUTSIDE_SLACK), hold: asked.hold }
    }
}

/// One attempt's ending: what the policy needs, and whether a stop ended it (its report line
/// is already in the guard's report).
struct Ran {
    tried: Tried,
    stopped: Option<Stopped>,
}

impl Guard<'_> {
    /// Runs the command under the one guarded run ([`migration_policy::drive`]) until the policy
    /// says the last attempt is the answer.
    fn attempts(&mut self, debris: &DebrisCheck) -> Exit {
        let policy = Policy {
            retries: self.args.retries,
            retry_for: Some(self.args.retry_for),
            watched: self.watch_url.is_some(),
        };
        let driven = drive(&mut GuardRunner { guard: self }, &policy, debris);
        let last = driven.attempts.last().map(|r| (r.tried, r.stopped));
        match (driven.outcome, last) {
            (Err(e), _) => {
                self.voice.show(&Attempts::CannotStart {
                    argv: cli_kit::shell::join(&self.setup.argv),
                    error: e.to_string(),
                });
                self.report.outcome = Outcome::Failed;
                Exit::Failed
            }
            (Ok(Driven::Stopped), Some((_, Some(why)))) => self.stopped(why),
            (Ok(Driven::StoppedInThePause), _) => self.stopped(self.stop_requested().unwrap_or(Stopped::Signal)),
            (Ok(Driven::OutOfRetries { .. }), _) => {
                self.report.outcome = Outcome::LockTimeout;
                self.guard_or_child_exit()
            }
            (Ok(Driven::RetryBlocked), _) => {
                self.report.outcome = Outcome::RetryBlocked;
                Exit::Failed
            }
            (Ok(_), Some((tried, _))) => self.done(&tried),
            (Ok(_), None) => self.done(&Tried::default()),
        }
    }

    /// The last attempt is the answer: its own exit status.
    fn done(&mut self, last: &Tried) -> Exit {
        match last.exit {
            Some(0) => {
                self.report.outcome = Outcome::Succeeded;
                Exit::Success
            }
            _ if self.last_cut_for_holding() => {
                // Not retried: the same statement on the same data would hold the lock as long again.
                self.report.outcome = Outcome::HoldCut;
                self.voice.show(&Attempts::HeldTooLong);
                Exit::Failed
            }
            code => {
                self.report.outcome = Outcome::Failed;
                self.voice.show(&Attempts::FailedOnItsOwn { code });
                Exit::Other(code.unwrap_or(1).clamp(1, 255) as u8)
            }
        }
    }

    /// The hold budget cut a statement of the last attempt (verified).
    fn last_cut_for_holding(&self) -> bool {
        self.report.attempts.last().is_some_and(|a| a.cut.iter().any(|e| e.verified && e.for_holding()))
    }

    /// 1 when the budget cut the last attempt (the guard ended it), else the command's own status.
    fn guard_or_child_exit(&self) -> Exit {
        let last = self.report.attempts.last();
        let cut = last.is_some_and(|a| a.cut.iter().any(|e| e.verified));
        match last.and_then(|a| a.exit_status) {
            Some(c) if !cut && c != 0 => Exit::Other(c.clamp(1, 255) as u8),
            _ => Exit::Failed,
        }
    }

    fn stopped(&mut self, why: Stopped) -> Exit {
        self.report.outcome = match why {
            Stopped::Signal => Outcome::Stopped,
            Stopped::Deadline => Outcome::Deadline,
        };
        Exit::Failed
    }

    /// Waits `pause` between attempts; a signal or the deadline ends the wait.
    fn pause(&self, pause: Duration) -> Option<Stopped> {
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if let Some(why) = self.stop_requested() {
                return Some(why);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// The sessions the command owns, and a connection kept aside to end them: reserved before
/// the command starts, so ending its statements needs no free connection slot later.
struct Claim {
    ownership: Vec<Ownership>,
    reserve: Option<Conn>,
}

impl Guard<'_> {
    /// Its application_name, or connected after it started from this dyno's address and
    /// running DDL (a driver that ignores PGAPPNAME).
    fn claim(&self) -> Claim {
        let mut ownership = vec![Ownership::AppName(self.setup.session_name.clone())];
        let reserve = self.watch_url.as_ref().and_then(|url| pg_locks::connect(&self.setup.connect_options(url)).ok());
        let mut reserve = reserve;
        if let Some(c) = reserve.as_mut() {
            let row = c.query_one(
                "SELECT extract(epoch FROM clock_timestamp())::float8, host(client_addr) FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            );
            // Over a Unix socket there is no address to tell the dyno's sessions by: only the
            // name proves them then (a claim "from anywhere" would take another host's DDL).
            if let Some(row) = row.ok().filter(|r| r.get::<_, Option<String>>(1).is_some()) {
                ownership.push(Ownership::ConnectedAfter {
                    since_epoch: row.get(0),
                    who: self.setup.dyno.clone(),
                    client_addr: row.get(1),
                });
            }
        }
        self.voice.debug(format!("this attempt's sessions: {ownership:?}"));
        Claim { ownership, reserve }
    }

    fn attempt(&mut self, pgoptions: bool) -> std::io::Result<Ran> {
        let mut claim = self.claim();
        let watch = match &self.watch_url {
            Some(url) => {
                let voice = self.voice;
                let opts = self.setup.connect_options(url);
                Watch::start(Reads::Connect(opts), claim.ownership.clone(), self.outside_budget(), move |e| {
                    voice.watch_event(e)
                })
            }
            None => Watch::none(),
        };
        let mut env = vec![("PGAPPNAME".to_string(), self.setup.session_name.clone())];
        if let Some(lock_wait) = self.args.lock_wait.0.filter(|_| pgoptions) {
            env.push(("PGOPTIONS".to_string(), self.setup.pgoptions(lock_wait)));
        }
        let began = Instant::now();
        let mut running = match child::start(&Launch { argv: &self.setup.argv, env }) {
            Ok(r) => r,
            Err(e) => {
                watch.finish();
                return Err(e);
            }
        };
        let (status, stopped) = self.wait(&mut running);
        let status = match stopped {
            Some(why) => self.end(why, &mut running, &mut claim),
            None => status,
        };
        // After a stop the platform's SIGKILL is on its way: the summary line matters more
        // than the command's last buffered lines.
        let said = running.drain(if stopped.is_some() { Duration::from_millis(300) } else { Duration::from_secs(2) });
        let log: WatchLog =
            if stopped.is_some() { watch.finish_within(Duration::from_millis(300)) } else { watch.finish() };
        let cut_waiting = log.enforcements.iter().any(|e| e.verified && !e.for_holding());
        let report = AttemptReport {
            attempt: self.report.attempts.len() + 1,
            exit_status: status,
            hit_lock_timeout: said.lock_timeout || cut_waiting,
            cut: log.enforcements,
            lock_waits: log.waits,
            left_behind: None,
            duration_ms: began.elapsed().as_millis() as u64,
        };
        let tried = Tried {
            exit: if stopped.is_some() { None } else { status },
            hit_lock_timeout: report.hit_lock_timeout,
            pooler_refused: said.pooler_refused,
            pgoptions,
            elapsed: Duration::ZERO,
        };
        self.report.attempts.push(report);
        Ok(Ran { tried, stopped })
    }

    /// Until the command exits, a signal arrives or the deadline passes.
    fn wait(&self, running: &mut child::Running) -> (Option<i32>, Option<Stopped>) {
        loop {
            match running.child.try_wait() {
                // The dyno manager signals every process at once: a command that died of the
                // same SIGTERM still leaves its statements to end.
                Ok(Some(s)) => return (Some(cli_kit::shell::status_code(s)), self.stop_requested()),
                Ok(None) => {}
                Err(_) => return (None, self.stop_requested()),
            }
            if let Some(why) = self.stop_requested() {
                return (None, Some(why));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends the command: its statements on the database first (a stopped process leaves a
    /// waiting DDL in the lock queue), verified, then the process itself.
    fn end(&mut self, why: Stopped, running: &mut child::Running, claim: &mut Claim) -> Option<i32> {
        self.voice.show(&Attempts::Stopping { why, sigterm: interrupt::terms() > 0, deadline: self.args.deadline });
        running.signal(libc::SIGTERM);
        let mut ended = self.end_sessions(claim);
        let until = Instant::now() + CHILD_GRACE;
        let status = loop {
            if let Ok(Some(s)) = running.child.try_wait() {
                break Some(cli_kit::shell::status_code(s));
            }
            if Instant::now() >= until {
                running.signal(libc::SIGKILL);
                break running.child.wait().ok().map(cli_kit::shell::status_code);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // A session opened in the command's last moments.
        if let (Some(first), Some(second)) = (ended.as_mut(), self.end_sessions(claim)) {
            for pid in second.found {
                if !first.found.contains(&pid) {
                    first.found.push(pid);
                }
            }
            first.remaining = second.remaining;
        }
        self.say_ended(ended.as_ref());
        self.report.ended_sessions = ended;
        status
    }

    fn end_sessions(&self, claim: &mut Claim) -> Option<pg_locks::EndReport> {
        let conn = claim.reserve.as_mut()?;
        match pg_locks::end_sessions(conn, &claim.ownership, END_GRACE) {
            Ok(r) => Some(r),
            Err(e) => {
                self.voice.show(&Attempts::EndFailed { error: e.to_string() });
                None
            }
        }
    }

    fn say_ended(&self, ended: Option<&pg_locks::EndReport>) {
        self.voice.show(&match ended {
            None => Attempts::SessionsUnchecked,
            Some(r) if r.remaining.is_empty() && r.found.is_empty() => Attempts::NoSessionsLeft,
            Some(r) if r.remaining.is_empty() => Attempts::SessionsEnded { pids: &r.found },
            Some(r) => Attempts::SessionsRemain { pids: &r.remaining },
        });
    }

    /// Writes the JSON report when asked, then the summary line (last).
    fn finish(&self) {
        if let Some(path) = &self.args.json_report {
            let text = serde_json::to_string_pretty(&self.report).unwrap_or_default();
            if let Err(e) = std::fs::write(path, text + "\n") {
                self.voice.show(&Attempts::ReportNotWritten { path: path.display().to_string(), error: e.to_string() });
            }
        }
        self.voice.summary(&self.report.summary_line());
    }
}

/// The guard as the guarded run's runner: the command as a child process of this one.
struct GuardRunner<'g, 'a> {
    guard: &'g mut Guard<'a>,
}

impl migration_policy::drive::Runner for GuardRunner<'_, '_> {
    type Attempt = Ran;

    fn attempt(&mut self, pgoptions: bool) -> anyhow::Result<Ran> {
        // Through a pooler that refuses startup options, no attempt is given PGOPTIONS.
        let pgoptions = pgoptions && !self.guard.pooled;
        Ok(self.guard.attempt(pgoptions)?)
    }

    fn tried(&self, attempt: &Ran, since_first: Duration) -> Tried {
        Tried { elapsed: since_first, ..attempt.tried }
    }

    fn was_stopped(&self, attempt: &Ran) -> bool {
        attempt.stopped.is_some()
    }

    fn left_behind(&mut self, _attempt: &mut Ran, found: LeftBehind) {
        if let Some(a) = self.guard.report.attempts.last_mut() {
            a.left_behind = Some(found);
        }
    }

    fn pause(&mut self, pause: Duration) -> bool {
        self.guard.pause(pause).is_none()
    }

    fn say(&mut self, event: &Event<'_>) {
        let (voice, args) = (self.guard.voice, self.guard.args);
        match event {
            Event::RetryWithoutPgoptions => voice.show(&Attempts::RetryWithoutPgoptions),
            Event::PoolerRefusedUnwatched => {}
            Event::Retrying { n, of, pause, ceiling } => {
                voice.show(&Attempts::Retrying { n: *n, of: *of, pause: *pause, ceiling: *ceiling })
            }
            Event::OutOfRetries { lock_timeouts } => voice.show(&Attempts::OutOfRetries {
                lock_timeouts: *lock_timeouts,
                budget: args.lock_wait.0.unwrap_or_default(),
                retries: args.retries,
                retry_for: args.retry_for,
            }),
            Event::StoppedInThePause => voice.show(&Attempts::StoppedInThePause),
            Event::Debris(found) => voice.show(&Attempts::Debris(found)),
        }
    }
}
