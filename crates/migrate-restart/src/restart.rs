//! After a successful migration: restart at once, then prove every dyno of those types booted
//! after the migration finished and is up.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use cli_kit::{usage, Output, Poll};
use heroku_api::{Client, Dyno, Formation};

use crate::render;
use crate::report::{RestartReport, Verdict};

/// Clock skew tolerated between this machine and the platform when comparing boot times.
const SKEW: Duration = Duration::from_secs(2);

/// What to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every dyno (one API call).
    All,
    /// These process types.
    Types(Vec<String>),
    /// Nothing (e.g. inside a maintenance window that restarts on close).
    None,
}

impl Plan {
    /// Parses `all`, `none` or `web,worker`, checking types against the formation.
    pub fn parse(text: &str, formation: &[Formation]) -> anyhow::Result<Plan> {
        match text.trim() {
            "all" => Ok(Plan::All),
            "none" => Ok(Plan::None),
            list => {
                let known: Vec<&str> = formation.iter().map(|f| f.process_type.as_str()).collect();
                let types: Vec<String> =
                    list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
                if types.is_empty() {
                    return Err(usage("--restart needs all, none, or process types such as web,worker"));
                }
                if let Some(word) = types.iter().find(|t| *t == "all" || *t == "none") {
                    return Err(usage(format!(
                        "--restart: `{word}` stands alone; to restart some types, name them: {}",
                        known.join(",")
                    )));
                }
                for t in &types {
                    if !known.contains(&t.as_str()) {
                        return Err(usage(format!(
                            "--restart: unknown process type `{t}`; this app has: {}",
                            known.join(", ")
                        )));
                    }
                }
                Ok(Plan::Types(types))
            }
        }
    }

    /// `restart every dyno`, `restart web, worker`, `restart nothing`.
    pub fn describe(&self) -> String {
        match self {
            Plan::All => "restart every dyno".to_string(),
            Plan::Types(t) => format!("restart {}", t.join(", ")),
            Plan::None => "restart nothing".to_string(),
        }
    }

    /// The process types whose dynos must be verified.
    pub fn types(&self, formation: &[Formation]) -> Vec<String> {
        match self {
            Plan::All => formation.iter().filter(|f| f.quantity > 0).map(|f| f.process_type.clone()).collect(),
            Plan::Types(t) => t.clone(),
            Plan::None => Vec::new(),
        }
    }
}

/// What to restart and what "fresh" means.
pub struct Request<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The app's formation.
    pub formation: &'a [Formation],
    /// The dyno list taken before the migration.
    pub before: &'a [Dyno],
    /// When the migration finished.
    pub migrated_at: SystemTime,
    /// How long the dynos have to come up.
    pub limit: Duration,
    /// The dyno list now, when some may already have booted after the migration (a `follow` of
    /// a run that ended earlier): types whose every dyno did are not restarted again.
    pub current: Option<&'a [Dyno]>,
}

/// The types with a dyno that booted before the migration ended (within the clock skew):
/// those still hold the old schema.
fn stale_types(types: &[String], now: &[Dyno], migrated_at: SystemTime) -> Vec<String> {
    types
        .iter()
        .filter(|t| {
            now.iter()
                .filter(|d| d.process_type == **t)
                .any(|d| d.created_at_time().is_none_or(|b| b + SKEW < migrated_at))
        })
        .cloned()
        .collect()
}

/// Restarts these process types through the formation route, together (independent requests).
fn restart_types(client: &Client, app: &str, types: &[String]) -> anyhow::Result<()> {
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = types.iter().map(|t| s.spawn(move || client.restart_process_type(app, t))).collect();
        hs.into_iter().map(|h| cli_kit::join(h)).collect()
    });
    for r in results {
        r?;
    }
    Ok(())
}

/// Sends the restarts the plan asks for — of the stale types only, when the current list is
/// known — and says what is restarted.
fn send_restarts(
    client: &Client,
    out: &Output,
    app: &str,
    plan: &Plan,
    types: &[String],
    stale: Option<&[String]>,
) -> anyhow::Result<()> {
    if let Some(stale) = stale.filter(|s| s.len() < types.len()) {
        let fresh: Vec<&str> = types.iter().filter(|t| !stale.contains(t)).map(String::as_str).collect();
        out.show(&render::Restarting::AlreadyFresh { types: fresh });
    }
    let what = match (plan, stale) {
        (_, Some([])) => None,
        (Plan::All, Some(stale)) if stale.len() < types.len() => Some(stale.to_vec()),
        (Plan::All, _) => {
            client.restart_all(app)?;
            out.show(&render::Restarting::All { app });
            return Ok(());
        }
        (_, Some(stale)) => Some(stale.to_vec()),
        (_, None) => Some(types.to_vec()),
    };
    match what {
        Some(ts) => {
            restart_types(client, app, &ts)?;
            out.show(&render::Restarting::Types { app, types: &ts });
        }
        None => out.show(&render::Restarting::NothingToRestart { app }),
    }
    Ok(())
}

/// Whether one dyno is fresh: booted after the migration (within the clock skew) and, when it
/// was restarted, newer than it was — boot times are whole seconds. A type not restarted
/// because it had booted after the run ended is judged by the first alone.
fn verdict(
    d: &Dyno,
    migrated_at: SystemTime,
    booted_before: &BTreeMap<&str, SystemTime>,
    stale: Option<&[String]>,
) -> Verdict {
    let booted = d.created_at_time();
    let after_migration = booted.is_some_and(|b| b + SKEW >= migrated_at);
    let restarted = stale.is_none_or(|s| s.contains(&d.process_type));
    let newer_than_before = !restarted
        || match (booted, booted_before.get(d.name.as_str())) {
            (Some(b), Some(prev)) => b > *prev,
            _ => true,
        };
    Verdict {
        name: d.name.clone(),
        id: d.id.clone(),
        created_at: d.created_at.clone(),
        state: d.state.clone(),
        fresh: after_migration && newer_than_before,
        up: d.state == "up",
    }
}

/// Restarts and verifies.
pub fn restart_and_verify(client: &Client, out: &Output, app: &str, req: &Request) -> anyhow::Result<RestartReport> {
    let Request { plan, formation, before, migrated_at, limit, current } = *req;
    let types = plan.types(formation);
    let stale = current.map(|now| stale_types(&types, now, migrated_at));
    if *plan == Plan::None {
        return Ok(RestartReport { types, dynos: Vec::new(), verified: true, elapsed_ms: 0 });
    }
    send_restarts(client, out, app, plan, &types, stale.as_deref())?;
    let expected: BTreeMap<&str, u32> = formation
        .iter()
        .filter(|f| types.contains(&f.process_type))
        .map(|f| (f.process_type.as_str(), f.quantity))
        .collect();
    let booted_before: BTreeMap<&str, SystemTime> =
        before.iter().filter_map(|d| Some((d.name.as_str(), d.created_at_time()?))).collect();
    let spinner = out.spinner("waiting for the restarted dynos to come up");
    let mut poll = Poll::with_pauses(limit, Duration::from_millis(250), Duration::from_secs(3));
    let mut verdicts = Vec::new();
    let verified = loop {
        if let Ok(list) = client.dynos(app) {
            verdicts = list
                .iter()
                .filter(|d| types.contains(&d.process_type))
                .map(|d| verdict(d, migrated_at, &booted_before, stale.as_deref()))
                .collect();
            // By each dyno's type, never its name: Fir names pods `web-…`, not `web.1`.
            let complete =
                expected.iter().all(|(t, q)| list.iter().filter(|d| d.process_type == *t).count() >= *q as usize);
            spinner.set_message(format!(
                "{} of {} restarted dynos up",
                verdicts.iter().filter(|v| v.fresh && v.up).count(),
                expected.values().sum::<u32>()
            ));
            if complete && verdicts.iter().all(|v| v.fresh && v.up) {
                break true;
            }
        }
        if !poll.wait_next() {
            break false;
        }
    };
    spinner.finish();
    verdicts.sort_by(|a, b| a.name.cmp(&b.name));
    let report = RestartReport { types, dynos: verdicts, verified, elapsed_ms: poll.elapsed().as_millis() as u64 };
    if report.verified {
        out.show(&render::Restarting::RestartVerified { dynos: report.dynos.len(), took: poll.elapsed() });
    } else {
        let dynos = report.dynos.iter().filter(|v| !(v.fresh && v.up)).collect();
        out.show(&render::Restarting::RestartNotVerified { dynos, limit });
    }
    Ok(report)
}
