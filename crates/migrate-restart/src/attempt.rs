//! One migration attempt: a one-off dyno with PGOPTIONS and PGAPPNAME. By default it runs
//! detached and is followed through the app's log (it survives the operator's connection);
//! with `--attach` it is attached through the rendezvous. Either way the real exit status
//! comes back (the marker, and for a detached dyno also the platform's exit line).

use std::collections::VecDeque;
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use cli_kit::{fail, interrupt, refused, Exit, Output, ResolvedDatabase};
use heroku_api::logs::{LogSessionCreate, StreamEvent};
use heroku_api::rendezvous::{attach, with_exit_marker, AttachUrl, OutputScanner};
use heroku_api::{Client, Dyno, DynoCreate};
use pg_locks::MIGRATION_APP_PREFIX;

use migration_policy::lockwatch::{Reads, Watch};
use migration_policy::{is_lock_timeout, is_pooler_refusal, pgoptions};

use crate::ending::{Ending, TAIL_LINES};
use crate::render;

/// What the attempt needs.
pub struct Spec<'a> {
    /// App.
    pub app: &'a str,
    /// The migration command as the user gave it.
    pub command: &'a str,
    /// Dyno size.
    pub size: Option<String>,
    /// `lock_timeout` for PGOPTIONS (None: `--lock-wait off`).
    pub lock_timeout: Option<Duration>,
    /// `statement_timeout` for PGOPTIONS.
    pub statement_timeout: Option<Duration>,
    /// `--lock-hold` as given (None: the same as the lock-wait budget; `Some(None)`: off), for
    /// migrate-guard in the slug.
    pub lock_hold: Option<Option<Duration>>,
    /// The budgets enforced from outside (None on a side: only watch).
    pub outside_budget: pg_locks::Budgets,
    /// Give the migration `PGOPTIONS` (false after a pooler refused it).
    pub pgoptions: bool,
    /// Longest the attempt may run.
    pub timeout: Duration,
    /// Database to watch for lock waits, when reachable.
    pub watch: Option<&'a ResolvedDatabase>,
    /// Attach through the rendezvous instead of following the log.
    pub attach: bool,
    /// Called once the dyno exists (a detached run records itself and prints how to follow it).
    pub started: &'a dyn Fn(&Dyno),
    /// The app's generation and stack: `cnb` needs `launcher`, Fir log sessions have no history.
    pub platform: &'a heroku_api::Platform,
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The one-off dyno.
    pub dyno: Dyno,
    /// How it ended.
    pub ending: Ending,
    /// The last lines of output.
    pub tail: VecDeque<String>,
    /// Whether a statement was cancelled for waiting on a lock: by Postgres (its lock_timeout,
    /// seen in the output) or by the outside budget.
    pub hit_lock_timeout: bool,
    /// What the outside budget cancelled (empty: it did not have to act).
    pub outside_budget: Vec<pg_locks::Enforcement>,
    /// It was given `PGOPTIONS`.
    pub pgoptions: bool,
    /// What the attempt left behind, when checked before a retry.
    pub left_behind: Option<migration_policy::debris::LeftBehind>,
    /// Wall time from dyno creation to the end.
    pub duration: Duration,
    /// Lock waits the watcher reported.
    pub lock_waits: Vec<String>,
    /// When it ended.
    pub finished_at: SystemTime,
    /// How many times the log stream had to be re-opened (detached runs).
    pub log_reopens: u32,
}

/// The application_name the migration's sessions carry.
pub fn session_name(dyno: &Dyno) -> String {
    format!("{MIGRATION_APP_PREFIX}{}", dyno.name)
}

/// The command as a one-off runs it. On a `cnb` stack the app's runtime and PATH exist only
/// through `launcher`, and the platform runs the line through a shell, so a bare prefix would
/// cover only the first simple command (`launcher cd x && rake …` launches `cd`): the whole
/// command runs as one `bash -c` under the launcher.
pub fn launched(command: &str, platform: &heroku_api::Platform) -> String {
    if !platform.is_cnb() {
        return command.to_string();
    }
    format!("launcher bash -c '{}'", command.replace('\'', "'\\''"))
}

/// `lock_timeout 5s`, or how the wait is bounded without PGOPTIONS.
fn in_force(spec: &Spec) -> String {
    match (spec.pgoptions, spec.outside_budget.wait) {
        (true, _) => match spec.lock_timeout {
            Some(l) => format!("lock_timeout {}", cli_kit::format_duration(l)),
            None => "no lock_timeout: --lock-wait off".to_string(),
        },
        (false, Some(b)) => {
            format!("no PGOPTIONS; lock waits cancelled from outside at {}", cli_kit::format_duration(b))
        }
        (false, None) => "no PGOPTIONS".to_string(),
    }
}

impl Attempt {
    /// What the attempt policy needs of it; `elapsed` since the first attempt began.
    pub fn tried(&self, elapsed: Duration) -> migration_policy::Tried {
        migration_policy::Tried {
            exit: match self.ending {
                Ending::Exited(c) => Some(c),
                _ => None,
            },
            hit_lock_timeout: self.hit_lock_timeout,
            pooler_refused: self.pooler_refused(),
            pgoptions: self.pgoptions,
            elapsed,
        }
    }

    /// A statement of it was cut for holding a lock past the hold budget: by the watch here, or
    /// by migrate-guard inside the dyno (its summary line says so).
    pub fn held_too_long(&self) -> bool {
        self.outside_budget.iter().any(|e| e.verified && e.for_holding())
            || self.tail.iter().any(|l| migration_policy::signs::is_hold_cut(l))
    }

    /// The migration could not connect because a pooler refused `PGOPTIONS`.
    pub fn pooler_refused(&self) -> bool {
        matches!(self.ending, Ending::Exited(c) if c != 0) && self.tail.iter().any(|l| is_pooler_refusal(l))
    }
}

/// The one-off dyno the attempt asks for.
fn dyno_create(spec: &Spec) -> DynoCreate {
    // PGAPPNAME needs the dyno's name, which only exists once the dyno does: the shell reads
    // it from $DYNO, which the platform sets in every dyno.
    // On `cnb` the whole line — PGAPPNAME, the guard's check, the migration, the exit marker —
    // runs under `launcher`, its first word, as the Heroku CLI sends one-off commands
    // (lib/run/helpers.js): the runtime is set up before anything else runs.
    let command = launched(
        &with_exit_marker(&format!(
            "export PGAPPNAME=\"{MIGRATION_APP_PREFIX}${{DYNO:-run}}\"; {}",
            guarded(spec.command, spec.lock_timeout, spec.lock_hold, spec.timeout)
        )),
        spec.platform,
    );
    DynoCreate {
        command,
        env: [
            pgoptions_for(spec).map(|o| ("PGOPTIONS".to_string(), o)),
            Some(("PGAPPNAME".to_string(), MIGRATION_APP_PREFIX.trim_end_matches('/').to_string())),
        ]
        .into_iter()
        .flatten()
        .filter(|(k, _)| spec.pgoptions || k != "PGOPTIONS")
        .collect(),
        attach: spec.attach,
        size: spec.size.clone(),
        process_type: Some("run".into()),
        time_to_live: Some(spec.timeout.as_secs().max(60)),
    }
}

/// The migration's `PGOPTIONS`: its lock_timeout and statement_timeout, as far as given.
fn pgoptions_for(spec: &Spec) -> Option<String> {
    match (spec.lock_timeout, spec.statement_timeout) {
        (Some(l), s) => Some(pgoptions(l, s)),
        (None, Some(s)) => Some(format!("-c statement_timeout={}", s.as_millis())),
        (None, None) => None,
    }
}

/// Creates the dyno and follows it until it ends. Never retries the create.
pub fn run(client: &Client, out: &Output, spec: &Spec) -> anyhow::Result<Attempt> {
    let started = Instant::now();
    let create = dyno_create(spec);
    // A Fir log session has no history: it must be open before the dyno exists, or the first
    // lines (and for a quick command its exit) would be lost. It is asked for the one-off type
    // and read for this dyno only.
    let opened = if spec.attach || !spec.platform.is_fir() {
        None
    } else {
        let ask = LogSessionCreate { process_type: Some("run".into()), tail: true, ..Default::default() };
        let session = client.create_log_session(spec.app, &ask)?;
        Some(client.stream_log(&session.logplex_url)?)
    };
    let watching = open_watch(spec)?;
    let dyno = client.create_dyno(spec.app, &create)?;
    (spec.started)(&dyno);
    if !spec.attach {
        return run_detached(client, out, spec, dyno, started, opened, watching);
    }
    run_attached(client, out, spec, dyno, started, watching)
}

/// The lock watch's connection, opened before the dyno exists: a budget that is announced must
/// be enforced, so a database the watch cannot reach (down, no free slot) refuses the attempt
/// (5, nothing started) instead of running it unwatched. `--no-lock-watch` is the way to run
/// without it.
fn open_watch(spec: &Spec) -> anyhow::Result<Option<pg_locks::Conn>> {
    spec.watch.map(probe_watch).transpose()
}

/// The lock watch's connection to `db`, or the refusal (5) that says the budget could not be
/// enforced.
pub fn probe_watch(db: &ResolvedDatabase) -> anyhow::Result<pg_locks::Conn> {
    pg_locks::connect(&db.connect_options(WATCH_APP_NAME)).map_err(|e| {
        refused(format!(
            "cannot watch {} ({}): the lock-wait budget could not be enforced from outside; nothing was started. Free a connection slot or fix the URL, or pass --no-lock-watch to rely on the migration's own lock_timeout",
            db.describe(),
            cli_kit::one_line(&anyhow::Error::new(e))
        ))
    })
}

/// The dyno's rendezvous, connected.
fn rendezvous(dyno: &Dyno) -> anyhow::Result<heroku_api::rendezvous::Rendezvous> {
    let url = match dyno.attach_url.as_deref().map(AttachUrl::parse) {
        Some(u) => u?,
        None => {
            return Err(fail(
                Exit::Failed,
                format!("Heroku returned no attach_url for {}; cannot follow the migration", dyno.name),
            ))
        }
    };
    Ok(attach(&url, Duration::from_secs(10))?)
}

/// An attached dyno: its output through the rendezvous; the lock watch runs beside it.
fn run_attached(
    client: &Client,
    out: &Output,
    spec: &Spec,
    dyno: Dyno,
    started: Instant,
    watching: Option<pg_locks::Conn>,
) -> anyhow::Result<Attempt> {
    out.show(&render::Attempting::RunningAttached {
        command: spec.command,
        dyno: &dyno.name,
        in_force: in_force(spec),
    });
    let mut stream = match rendezvous(&dyno) {
        Ok(s) => s,
        Err(e) => return Err(abandon(client, spec.app, &dyno, e)),
    };
    // The migration reads no input: end its stdin at once, as `heroku run` does off a terminal.
    let _ = stream.send_eof();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let watch = start_watch(spec, &dyno, out, watching);
    let mut scanner = OutputScanner::default();
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut lock_timeout = false;
    let mut buf = [0u8; 8192];
    let spot_guard = guard_spotter(out, &watch);
    let show = |line: String, tail: &mut VecDeque<String>, lock_timeout: &mut bool| {
        *lock_timeout |= is_lock_timeout(&line);
        spot_guard(&line);
        out.show(&render::Attempting::Output(&line));
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let ending = loop {
        if interrupt::requested() {
            break Ending::Interrupted;
        }
        if started.elapsed() > spec.timeout {
            break Ending::TimedOut;
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                if let Some(last) = scanner.finish() {
                    show(last, &mut tail, &mut lock_timeout);
                }
                break match scanner.exit_status {
                    Some(code) => Ending::Exited(code),
                    None => Ending::Lost("the connection closed without an exit status".into()),
                };
            }
            Ok(n) => {
                for line in scanner.feed(&buf[..n]) {
                    show(line, &mut tail, &mut lock_timeout);
                }
                if let Some(code) = scanner.exit_status {
                    break Ending::Exited(code);
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => break Ending::Lost(format!("the connection failed: {e}")),
        }
    };
    let log = watch.finish();
    Ok(Attempt {
        dyno,
        ending,
        tail,
        hit_lock_timeout: lock_timeout || log.enforcements.iter().any(|e| e.verified && !e.for_holding()),
        outside_budget: log.enforcements,
        pgoptions: spec.pgoptions,
        left_behind: None,
        duration: started.elapsed(),
        lock_waits: log.waits,
        finished_at: SystemTime::now(),
        log_reopens: 0,
    })
}

/// A detached dyno: followed through the log; the lock watch runs beside it.
fn run_detached(
    client: &Client,
    out: &Output,
    spec: &Spec,
    dyno: Dyno,
    started: Instant,
    opened: Option<std::sync::mpsc::Receiver<StreamEvent>>,
    watching: Option<pg_locks::Conn>,
) -> anyhow::Result<Attempt> {
    out.show(&render::Attempting::RunningDetached {
        command: spec.command,
        dyno: &dyno.name,
        in_force: in_force(spec),
    });
    let watch = start_watch(spec, &dyno, out, watching);
    let on_line = guard_spotter(out, &watch);
    let source =
        crate::log_follower::Source { opened, history: !spec.platform.is_fir(), on_line: Some(Box::new(on_line)) };
    let followed = crate::log_follower::follow(client, out, spec.app, &dyno.name, started + spec.timeout, None, source);
    let log = watch.finish();
    let followed = match followed {
        Ok(f) => f,
        Err(e) => crate::log_follower::Followed {
            ending: Ending::Lost(format!("could not read the log: {}", cli_kit::one_line(&e))),
            tail: VecDeque::new(),
            lock_timeout: false,
            reopened: 0,
            ran: (None, None),
        },
    };
    Ok(Attempt {
        dyno,
        ending: followed.ending,
        tail: followed.tail,
        hit_lock_timeout: followed.lock_timeout || log.enforcements.iter().any(|e| e.verified && !e.for_holding()),
        outside_budget: log.enforcements,
        pgoptions: spec.pgoptions,
        left_behind: None,
        duration: started.elapsed(),
        lock_waits: log.waits,
        finished_at: SystemTime::now(),
        log_reopens: followed.reopened,
    })
}

/// The migration as the one-off runs it: under migrate-guard when the app's slug has it (its
/// buildpack put it on PATH) and the dyno has a DATABASE_URL for it to watch, so the lock-wait
/// budget holds inside the dyno even when this terminal goes away; as given otherwise (the
/// guard is a second safeguard, never a new way for a one-off to fail). One attempt per dyno (`--retries 0`: the retry
/// policy runs here), no look for blockers (the preflight ran here), the deadline the attempt's.
///
/// `--lock-hold`, when given, goes to the guard only if the guard knows it (one from before the
/// hold budget would refuse it): an older guard still guards the waits, and the watch here
/// bounds the holds alone.
pub fn guarded(
    command: &str,
    lock_timeout: Option<Duration>,
    lock_hold: Option<Option<Duration>>,
    timeout: Duration,
) -> String {
    let quoted = command.replace('\'', "'\\''");
    let budget = |d: Option<Duration>| d.map(|l| format!("{}ms", l.as_millis())).unwrap_or_else(|| "off".into());
    let guard = |hold: &str| {
        format!(
            "migrate-guard --lock-wait {}{hold} --retries 0 --no-preflight --deadline {}s -- sh -c '{quoted}'",
            budget(lock_timeout),
            timeout.as_secs().max(1)
        )
    };
    let guarded = match lock_hold {
        None => guard(""),
        Some(h) => format!(
            "if migrate-guard --help 2>/dev/null | grep -q -- --lock-hold; then {}; else {}; fi",
            guard(&format!(" --lock-hold {}", budget(h))),
            guard("")
        ),
    };
    format!(
        "if [ -n \"${{DATABASE_URL:-}}\" ] && command -v migrate-guard >/dev/null 2>&1; then {guarded}; else sh -c '{quoted}'; fi"
    )
}

/// Watches the output for migrate-guard's first line: from then on the outside budget is a
/// second line ([`migration_policy::lockwatch::second_line`], the one rule for both paths).
fn guard_spotter(out: &Output, watch: &Watch) -> impl Fn(&str) + 'static {
    let budget = watch.budget();
    let seen = std::cell::Cell::new(false);
    let out = out.clone();
    move |line: &str| {
        if seen.get() || !migration_policy::signs::guard_started(line) {
            return;
        }
        seen.set(true);
        let second_line = migration_policy::lockwatch::second_lines(budget.get(), line);
        if second_line != pg_locks::Budgets::default() {
            budget.set(second_line);
            out.show(&render::Attempting::GuardInTheSlug { second_line });
        }
    }
}

/// The lock watch (and outside budget) on the dyno's sessions, when the database is known.
fn start_watch(spec: &Spec, dyno: &Dyno, out: &Output, watching: Option<pg_locks::Conn>) -> Watch {
    let Some(conn) = watching else { return Watch::none() };
    let ownership = vec![pg_locks::Ownership::AppName(session_name(dyno))];
    let out = out.clone();
    Watch::start(Reads::Connected(Box::new(conn)), ownership, spec.outside_budget, move |event| {
        out.show(&render::Attempting::Watch(event))
    })
}

/// The lock watch's application_name.
const WATCH_APP_NAME: &str = "migrate-restart-watch";

/// A dyno we cannot follow is stopped (by id) rather than left running unobserved.
fn abandon(client: &Client, app: &str, dyno: &Dyno, err: anyhow::Error) -> anyhow::Error {
    let said = match client.stop_dyno(app, &dyno.id) {
        Ok(()) => format!("{} was stopped", dyno.name),
        Err(stop) => {
            format!("and stopping {} failed too ({stop}); stop it with safe-ps-kill {} -a {app}", dyno.name, dyno.name)
        }
    };
    err.context(Abandoned { dyno: dyno.clone(), said, at: SystemTime::now() })
}

/// A one-off dyno created and then given up before it could be followed (its rendezvous
/// failed), and what was done about it: carried on the error so that the run's report can
/// still record the dyno.
#[derive(Debug)]
pub struct Abandoned {
    dyno: Dyno,
    said: String,
    at: SystemTime,
}

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.said)
    }
}

/// The attempt an error abandoned, when it created a dyno: no exit status came back, and the
/// ending says why and what became of the dyno.
pub fn abandoned(err: &anyhow::Error, spec: &Spec) -> Option<Attempt> {
    let a = err.downcast_ref::<Abandoned>()?;
    Some(Attempt {
        dyno: a.dyno.clone(),
        ending: Ending::Lost(format!("not attached: {}", cli_kit::one_line(err))),
        tail: VecDeque::new(),
        hit_lock_timeout: false,
        outside_budget: Vec::new(),
        pgoptions: spec.pgoptions,
        left_behind: None,
        duration: Duration::ZERO,
        lock_waits: Vec::new(),
        finished_at: a.at,
        log_reopens: 0,
    })
}

#[cfg(test)]
mod wrapper_tests {
    use super::*;

    /// Runs the dyno's whole command line as the platform does (`sh -c`), in a directory whose
    /// only `migrate-guard` (when `with_guard`) runs what follows its `--`.
    fn run_as_the_dyno(command: &str, with_guard: bool) -> (i32, String) {
        let dir = std::env::temp_dir().join(format!("wrapper-{}-{with_guard}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("migrate-guard");
        std::fs::write(&fake, "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let line = with_exit_marker(&format!(
            "export PGAPPNAME=\"{MIGRATION_APP_PREFIX}${{DYNO:-run}}\"; {}",
            guarded(command, Some(Duration::from_secs(5)), None, Duration::from_secs(60))
        ));
        let path = if with_guard { format!("{}:/usr/bin:/bin", dir.display()) } else { "/usr/bin:/bin".to_string() };
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .env("PATH", path)
            .env("DATABASE_URL", "postgres://x")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// Any shell text runs as the user wrote it, with or without the guard in the slug: a
    /// trailing comment, `;`, a heredoc; an unclosed `if` fails as the user's own syntax error
    /// and the marker still carries its status.
    #[test]
    fn the_wrapper_runs_any_shell_text_as_written() {
        for with_guard in [false, true] {
            let (code, out) = run_as_the_dyno("echo migrating # see JIRA-123", with_guard);
            assert_eq!(code, 0, "{out}");
            assert!(out.starts_with("migrating\n"), "{out}");
            let (code, out) = run_as_the_dyno("echo one; echo two", with_guard);
            assert_eq!((code, out.matches("one\ntwo").count()), (0, 1), "{out}");
            let (code, out) = run_as_the_dyno("cat <<'SQL'\nALTER TABLE users ADD COLUMN x int;\nSQL", with_guard);
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("ALTER TABLE users ADD COLUMN x int;"), "{out}");
            let (code, out) = run_as_the_dyno("if true; then echo open", with_guard);
            assert_ne!(code, 0, "{out}");
            assert!(!out.contains("open\n"), "{out}");
            let (code, _) = run_as_the_dyno("exit 7 # failed", with_guard);
            assert_eq!(code, 7);
        }
    }

    /// `--lock-hold` reaches a guard in the slug that knows it; an older guard (its help does not
    /// name it) still guards the run, without it, rather than the run going unguarded.
    #[test]
    fn lock_hold_goes_only_to_a_guard_that_knows_it_and_an_older_guard_still_guards() {
        for knows in [true, false] {
            let dir = std::env::temp_dir().join(format!("hold-wrapper-{}-{knows}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let help = if knows { "echo '      --lock-hold <DUR|off>'" } else { "true" };
            let fake = dir.join("migrate-guard");
            std::fs::write(
                &fake,
                format!("#!/bin/sh\nif [ \"$1\" = --help ]; then {help}; exit 0; fi\necho \"guard $*\"\n"),
            )
            .unwrap();
            std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let line = guarded(
                "echo unguarded",
                Some(Duration::from_secs(5)),
                Some(Some(Duration::from_secs(2))),
                Duration::from_secs(60),
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &line])
                .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
                .env("DATABASE_URL", "postgres://x")
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.starts_with("guard --lock-wait 5000ms"), "guarded either way: {out}");
            assert_eq!(out.contains("--lock-hold 2000ms"), knows, "{out}");
        }
    }
}
