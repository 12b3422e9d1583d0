//! The report: one tree per root blocker for people, one JSON document for scripts.

use std::collections::BTreeMap;
use std::time::Duration;

use cli_kit::output::{bold, count, cyan, dim, red, yellow};
use cli_kit::{format_duration, ResolvedDatabase};
use pg_locks::{ActReport, Forest, Label, Node, Recommendation, Session, Signal, Snapshot};

/// Query text width in human output.
const QUERY_WIDTH: usize = 90;

fn secs(d: Option<f64>) -> String {
    d.map(|s| format_duration(Duration::from_secs_f64(s.max(0.0)))).unwrap_or_else(|| "?".into())
}

fn labels(s: &Session) -> String {
    let words: Vec<&str> = s.labels.iter().filter(|l| **l != Label::Own).map(|l| l.word()).collect();
    if words.is_empty() {
        String::new()
    } else {
        format!(" {}", yellow().apply_to(format!("[{}]", words.join(", "))))
    }
}

fn who(s: &Session) -> String {
    let app = if s.application_name.is_empty() { "(no application_name)" } else { &s.application_name };
    let user = s.user.as_deref().map(|u| format!(" {}", dim().apply_to(format!("as {u}")))).unwrap_or_default();
    format!("{} {}{}", cyan().apply_to(s.pid), bold().apply_to(app), user)
}

fn waits_for(s: &Session) -> String {
    match &s.waiting_for {
        Some(w) => format!(" ({} on {})", w.mode, w.object.as_deref().unwrap_or(&w.locktype)),
        None => String::new(),
    }
}

fn blocking(n: &Node) -> String {
    match (n.blocking_direct, n.blocking_total) {
        (0, _) => String::new(),
        (d, t) if d == t => format!(" — {}", red().apply_to(format!("blocking {t}"))),
        (d, t) => format!(" — {}", red().apply_to(format!("blocking {d} ({t} in total)"))),
    }
}

fn root_lines(node: &Node, snap: &Snapshot, out: &mut Vec<String>) {
    let Some(s) = snap.get(node.pid) else { return };
    let state = match (s.wait_event_type.as_deref(), s.wait_event.as_deref(), s.state.as_deref()) {
        (Some("Client"), Some(ev), _) => format!("{ev} (waiting for its client)"),
        (_, _, Some(st)) => st.to_string(),
        _ => "state hidden".to_string(),
    };
    // Session-level locks (advisory) outlive transactions: say which kind of age this is.
    let age = match (s.xact_age_secs, s.state_age_secs) {
        (Some(x), _) => format!("transaction open {}", secs(Some(x))),
        (None, Some(st)) => format!("no transaction, {} in this state", secs(Some(st))),
        (None, None) => "age hidden".to_string(),
    };
    out.push(format!("● {}{}  {state}, {age}{}", who(s), labels(s), blocking(node)));
    out.push(format!("  {}", s.query_line(QUERY_WIDTH)));
    if !s.holds.is_empty() {
        let mine: Vec<&String> = s.holds.iter().filter(|h| !h.starts_with("pg_")).collect();
        if !mine.is_empty() {
            out.push(format!(
                "  {}",
                dim().apply_to(format!("holds {}", mine.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")))
            ));
        }
    }
    child_lines(node, snap, "  ", out);
}

fn child_lines(node: &Node, snap: &Snapshot, indent: &str, out: &mut Vec<String>) {
    // Identical leaf waiters (the usual pile-up behind a DDL) are shown as one line.
    let mut groups: BTreeMap<(String, String), Vec<&Node>> = BTreeMap::new();
    let mut items: Vec<Result<&Node, (String, String)>> = Vec::new();
    for c in &node.children {
        let Some(s) = snap.get(c.pid) else { continue };
        if c.children.is_empty() {
            let key = (s.query_line(QUERY_WIDTH), waits_for(s));
            if !groups.contains_key(&key) {
                items.push(Err(key.clone()));
            }
            groups.entry(key).or_default().push(c);
        } else {
            items.push(Ok(c));
        }
    }
    let count = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let last = i + 1 == count;
        let (branch, next_indent) =
            if last { ("└─ ", format!("{indent}   ")) } else { ("├─ ", format!("{indent}│  ")) };
        match item {
            Ok(c) => {
                let s = snap.get(c.pid).expect("checked");
                out.push(format!(
                    "{indent}{branch}{}{}  waits {}: {}{}{}",
                    who(s),
                    labels(s),
                    secs(s.wait_secs()),
                    s.query_line(QUERY_WIDTH),
                    waits_for(s),
                    blocking(c)
                ));
                child_lines(c, snap, &next_indent, out);
            }
            Err(key) => {
                let members = &groups[&key];
                if members.len() < 3 {
                    for (j, c) in members.iter().enumerate() {
                        let s = snap.get(c.pid).expect("checked");
                        let b = if last && j + 1 == members.len() { "└─ " } else { "├─ " };
                        out.push(format!(
                            "{indent}{b}{}{}  waits {}: {}{}",
                            who(s),
                            labels(s),
                            secs(s.wait_secs()),
                            key.0,
                            key.1
                        ));
                    }
                } else {
                    let longest =
                        members.iter().filter_map(|c| snap.get(c.pid).and_then(Session::wait_secs)).fold(0.0, f64::max);
                    let pids: Vec<i32> = members.iter().map(|c| c.pid).collect();
                    out.push(format!(
                        "{indent}{branch}{} sessions wait (up to {}): {}{}  {}",
                        bold().apply_to(members.len()),
                        secs(Some(longest)),
                        key.0,
                        key.1,
                        dim().apply_to(format!("pids {}", pid_list(&pids)))
                    ));
                }
            }
        }
    }
}

fn pid_list(pids: &[i32]) -> String {
    if pids.len() <= 6 {
        pids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
    } else {
        format!("{}, {}, … {}", pids[0], pids[1], pids[pids.len() - 1])
    }
}

/// What this credential cannot see, said once: lock waits are seen whatever the role (through
/// pg_locks), what other roles' sessions run is not.
fn hidden_note(snap: &Snapshot) -> Option<String> {
    match snap.hidden_count() {
        0 => None,
        n => Some(format!(
            "  {}",
            dim().apply_to(format!(
                "{} of other roles: query text hidden from this credential (their locks and waits are shown)",
                count(n, "session")
            ))
        )),
    }
}

/// The command that applies a recommendation. When this credential may not signal the
/// session (the server would refuse), the command is the one that would work: with the app's
/// default credential (DATABASE_URL), or with a credential that may, given by URL.
pub fn command_for(tool: &str, db: &ResolvedDatabase, r: &Recommendation) -> String {
    let escalate = if r.note.is_some() { " --escalate" } else { "" };
    let selector = match (&r.needs_credential, db.app()) {
        (None, _) => db.selector_args(),
        (Some(_), Some(app)) => format!("-a {app}"),
        (Some(_), None) => "--database-url \"$URL_OF_A_CREDENTIAL_THAT_MAY\"".to_string(),
    };
    format!("{tool} {selector} --{} {}{escalate} --confirm {}", r.action.word(), r.pid, db.confirm_name())
}

/// Where a credential that may signal it comes from.
fn other_credential(db: &ResolvedDatabase) -> String {
    match db.app() {
        Some(app) => {
            format!("with the app's default credential, DATABASE_URL (heroku pg:credentials -a {app} lists them)")
        }
        None => "with a credential that may (the session's own role, pg_signal_backend, or a superuser)".to_string(),
    }
}

fn recommendation_lines(
    title: &str,
    r: &Recommendation,
    db: &ResolvedDatabase,
    snap: &Snapshot,
    out: &mut Vec<String>,
) {
    let labels = snap.get(r.pid).map(labels).unwrap_or_default();
    out.push(format!("{} {} pid {}{labels} — {}.", bold().apply_to(title), r.action.word(), r.pid, r.reason));
    out.push(format!("  cost: {}", r.cost));
    if let Some(n) = &r.note {
        out.push(format!("  note: {n}"));
    }
    match &r.needs_credential {
        None => out.push(format!("  run:  {}", command_for("pg-blockers", db, r))),
        Some(why) => {
            out.push(format!("  {} {why}", yellow().apply_to("this credential cannot:")));
            out.push(format!("  instead, {}:", other_credential(db)));
            out.push(format!("        {}", command_for("pg-blockers", db, r)));
        }
    }
    if let Some((command, cost)) = platform_way(r, db, snap) {
        out.push(format!("  or the platform's way: {command}"));
        if db.app().is_none() {
            out.push("  (APP: the Heroku app this database belongs to; it is not known from a URL)".to_string());
        }
        out.push(format!("  cost: {cost}"));
    }
}

/// Why a root blocker is not recommended for a cancel, in one line.
fn why_not_cancelled(s: &Session) -> String {
    if s.has(Label::Wraparound) {
        return format!(
            "  pid {} is a vacuum to prevent transaction ID wraparound: cancelled, it starts over and the table stays at risk. Let it finish (pg_stat_progress_vacuum shows how far it is); what waits behind it can give up and run again afterwards.",
            s.pid
        );
    }
    let why = pg_locks::refusal(s).unwrap_or("it is not a session this tool signals");
    format!("  pid {}: {why}.", s.pid)
}

/// The platform's own way to end what a recommendation cancels, when there is one: a Heroku
/// Postgres backup is stopped with `pg:backups:cancel`, which also ends the backup job (a
/// plain cancel only fails its COPY). Needs the app, which a bare `--database-url` lacks.
pub fn platform_way(r: &Recommendation, db: &ResolvedDatabase, snap: &Snapshot) -> Option<(String, &'static str)> {
    let backup =
        snap.get(r.pid).is_some_and(|s| s.has(Label::Backup) && s.application_name == "Heroku Postgres Backups");
    // From a bare URL the app is not known: the command says what to fill in.
    let app = db.app().map(str::to_string).unwrap_or_else(|| "APP".to_string());
    backup.then(|| {
        (
            format!("heroku pg:backups:cancel -a {app}"),
            "the backup job stops and this backup is lost (it does not retry); take one later with heroku pg:backups:capture",
        )
    })
}

/// A follower: never an all-clear from one, since the waits that matter happen on the leader.
fn follower_lines(db: &ResolvedDatabase, out: &mut Vec<String>) {
    // Never an all-clear from a follower: the waits that matter happen on the leader.
    out.push(format!(
        "{} {} is a follower (a read-only replica): the leader's lock waits are not visible here, and cancelling here cannot help them. Run pg-blockers against the leader database (its attachment, e.g. DATABASE_URL).",
        yellow().apply_to("!"),
        db.describe()
    ));
    // Dev Center "Postgres Advanced instance pools": a follower pool is one endpoint that
    // spreads connections over several instances. Nothing this connection sees tells a pool
    // from a single follower, so it is said as a condition.
    out.push(
        "  If it is a Postgres Advanced follower pool, its one endpoint spreads connections over several instances: the sessions here are those of the instance this connection reached, not the whole pool's.".to_string(),
    );
}

/// The human report.
pub fn human(
    db: &ResolvedDatabase,
    snap: &Snapshot,
    forest: &Forest,
    recs: &(Option<Recommendation>, Option<Recommendation>),
) -> Vec<String> {
    let mut out = Vec::new();
    if snap.through_pooler {
        out.push(format!(
            "{} read through a connection pooler ({} refused the startup options, as PgBouncer does): the lock view is the server's; this tool's timeouts are set per query.",
            dim().apply_to("·"),
            db.describe()
        ));
    }
    if snap.in_recovery {
        follower_lines(db, &mut out);
        if forest.is_empty() {
            out.push(format!(
                "  {} here, none waiting on another's lock.",
                count(snap.client_count(), "client session")
            ));
            return out;
        }
    }
    if forest.is_empty() {
        let waiting = snap.blocked().count();
        let hidden = if waiting > 0 { format!(" ({waiting} waiting below --min-wait)") } else { String::new() };
        out.push(format!(
            "✓ No blocking on {}: {}, none waiting on another's lock{hidden}.",
            db.describe(),
            count(snap.client_count(), "client session")
        ));
        out.extend(hidden_note(snap));
        return out;
    }
    let longest = forest
        .roots
        .iter()
        .flat_map(|r| r.pids().into_iter().skip(1))
        .filter_map(|p| snap.get(p).and_then(Session::wait_secs))
        .fold(0.0, f64::max);
    out.push(format!(
        "{} on {}: {} waiting, {}, longest wait {}",
        red().apply_to("Blocking"),
        db.describe(),
        count(forest.blocked_total, "session"),
        count(forest.roots.len(), "root blocker"),
        secs(Some(longest))
    ));
    out.extend(hidden_note(snap));
    for root in &forest.roots {
        out.push(String::new());
        root_lines(root, snap, &mut out);
    }
    out.push(String::new());
    let (primary, alternative) = recs;
    match primary {
        Some(r) => recommendation_lines("Recommended:", r, db, snap, &mut out),
        None => {
            out.push("No session here can be cancelled safely by this tool:".into());
            out.extend(forest.roots.iter().filter_map(|root| snap.get(root.pid)).map(why_not_cancelled));
        }
    }
    if let Some(r) = alternative {
        recommendation_lines("Or, to release the queue now:", r, db, snap, &mut out);
    }
    if let (Some(fill_in), true) = (db.fill_in(), primary.is_some() || alternative.is_some()) {
        out.push(format!("  {} {fill_in}", yellow().apply_to("to run it:")));
    }
    out
}

/// What acting on the database did or saw (`--cancel`, `--terminate`, `--cancel-roots`), and
/// the follower's note: each said here, shown by the orchestration.
#[derive(Debug)]
pub enum Acting<'a> {
    /// Read on a follower: which of the app's databases most likely leads it.
    Leader {
        /// The config var.
        var: &'a str,
        /// The app.
        app: &'a str,
    },
    /// `--cancel-roots` found none.
    NothingToCancel {
        /// Which database.
        database: String,
    },
    /// What will be signalled, each with what it blocks and costs.
    Will {
        /// Cancel or terminate.
        signal: Signal,
        /// Which database.
        database: String,
        /// Each session, how many it blocks, what signalling it costs.
        targets: Vec<(&'a Session, usize, String)>,
    },
    /// How each signal ended, and what runs again.
    Done {
        /// What each signal did.
        report: &'a ActReport,
        /// How long each was given to take.
        grace: Duration,
    },
}

impl cli_kit::Render for Acting<'_> {
    fn lines(&self) -> Vec<cli_kit::Line> {
        use cli_kit::{Line, Tone};
        match self {
            Acting::Leader { var, app } => {
                let selector = if *var == "DATABASE_URL" { String::new() } else { format!(" {var}") };
                vec![Line::new(
                    Tone::Say,
                    format!("  The leader is most likely {var} of {app}: pg-blockers -a {app}{selector}"),
                )]
            }
            Acting::NothingToCancel { database } => {
                vec![Line::new(Tone::Ok, format!("Nothing to cancel: no root blockers on {database}."))]
            }
            Acting::Will { signal, database, targets } => {
                let mut lines = vec![Line::new(Tone::Say, format!("Will {} on {database}:", signal.word()))];
                for (s, blocks, cost) in targets {
                    let blocking =
                        if *blocks == 0 { "blocking nothing".to_string() } else { format!("blocking {blocks}") };
                    lines.push(Line::new(
                        Tone::Say,
                        format!("  {} {} — {} — {blocking}", s.pid, s.application_name, s.query_line(70)),
                    ));
                    lines.push(Line::new(Tone::Say, format!("    cost: {cost}")));
                }
                lines
            }
            Acting::Done { report, grace } => done_lines(report, *grace),
        }
    }
}

fn done_lines(report: &ActReport, grace: Duration) -> Vec<cli_kit::Line> {
    use cli_kit::{Line, Tone};
    let mut lines: Vec<Line> = report
        .outcomes
        .iter()
        .map(|o| {
            let how = if o.escalated { "cancel did not take; terminated" } else { o.signal.word() };
            match (o.took, o.took_after_ms) {
                (true, Some(ms)) => {
                    Line::new(Tone::Ok, format!("pid {} released its locks ({how}, seen after {ms}ms)", o.pid))
                }
                _ if !o.sent => Line::new(Tone::Bad, format!("pid {} had already ended before the signal", o.pid)),
                _ => Line::new(
                    Tone::Bad,
                    format!(
                        "pid {} STILL BLOCKING after {} ({how}){}",
                        o.pid,
                        format_duration(grace),
                        if o.escalated { "" } else { " — retry with --escalate to terminate it" }
                    ),
                ),
            }
        })
        .collect();
    let line = match report.previously_blocked {
        0 => "nothing else was waiting on it".to_string(),
        1 => format!("{} of 1 previously blocked session is running again", report.running_again),
        n => format!("{} of {n} previously blocked sessions are running again", report.running_again),
    };
    let queued = match report.queued_behind.len() {
        0 => String::new(),
        n => format!(
            "; {n} still {} behind a session the cancel freed (it got its lock and runs: {})",
            if n == 1 { "waits" } else { "wait" },
            report.queued_behind.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    if report.still_blocked.is_empty() {
        lines.push(Line::new(Tone::Say, format!("{} {line}{queued}.", cli_kit::output::green().apply_to("✓"))));
    } else {
        lines.push(Line::new(
            Tone::Say,
            format!(
                "{} {line}; still waiting: {}.",
                red().apply_to("✗"),
                report.still_blocked.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    lines
}
