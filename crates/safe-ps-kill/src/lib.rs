//! safe-ps-kill: resolve a dyno or process type to dyno ids, stop by id, prove the dynos are
//! gone, and show what their database statements left waiting.

mod cli;
mod dbcheck;
mod render;
pub mod report;
pub mod resolve;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

pub use cli::Args;
use cli_kit::output::count;
use cli_kit::{api_client, confirm_destructive, format_duration, pick, refused, usage, Exit, Output, Poll};
use heroku_api::{Client, Dyno};
pub use render::plan_lines;
use render::{Fate, Said};
use report::{Action, DatabaseCheck, KillReport, ReleasePhaseNote, ResolvedDyno, StopOutcome};
use resolve::{closest, natural_key, resolve, Resolution};

const TOOL: &str = "safe-ps-kill";

/// How the dynos to stop were chosen, for the report.
struct Choice {
    dynos: Vec<Dyno>,
    how: report::Resolution,
}

/// Runs the command; returns the exit code the contract prescribes.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    // Ctrl-C after the stop is sent must not end the tool silently: it says what was sent.
    cli_kit::interrupt::install();
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    // The dyno list and the config vars (for the database check) are independent: fetch both at once.
    // The generation says how dynos are named and replaced; reports carry it.
    let (dynos, vars, info) = std::thread::scope(|s| {
        let vars =
            s.spawn(|| if args.db.database_url.is_some() { Ok(BTreeMap::new()) } else { client.config_vars(&app) });
        let info = s.spawn(|| client.app_info(&app));
        let dynos = client.dynos(&app);
        (dynos, cli_kit::join(vars), cli_kit::join(info))
    });
    let dynos = dynos?;
    let platform = info?.platform();
    out.debug(format!("{app} runs on {platform}"));
    let choice = choose(&args, &out, &app, &dynos, &platform)?;
    show_plan(&out, &choice);
    let release_phase = release_notes(&client, &out, &app, &choice.dynos);

    if args.dry_run {
        out.show(&Said::DryRun {
            command: format!(
                "safe-ps-kill {} -a {app}{} --confirm {app}",
                target_arg(&args, &choice),
                if choice.dynos.len() > 1 { " --all" } else { "" }
            ),
        });
        out.report(&kill_report(
            &args,
            &app,
            &platform,
            &choice,
            Action::DryRun,
            release_phase,
            Vec::new(),
            DatabaseCheck::NotApplicable { reason: "dry run: nothing was stopped".into() },
        ));
        return Ok(Exit::Success);
    }
    let names: Vec<&str> = choice.dynos.iter().map(|d| d.name.as_str()).collect();
    confirm_destructive(&out, &app, args.confirm.answer(), &format!("Stop {} on {app}?", names.join(", ")))?;

    if cli_kit::interrupt::requested() {
        out.show(&Said::InterruptedBeforeStop);
        return Ok(Exit::Interrupted);
    }
    stop_all(&client, &app, &choice.dynos)?;
    let outcomes = verify(&client, &out, &app, &choice.dynos, &dynos, args.wait);
    let all_gone = outcomes.iter().all(|o| o.gone_after.is_some());
    let interrupted = cli_kit::interrupt::requested() && !all_gone;
    say_outcomes(&out, &app, &outcomes, interrupted, args.wait);

    let db_check = if choice.dynos.iter().any(dbcheck::runs_statements) {
        dbcheck::check(&out, &app, &args.db, &vars.unwrap_or_default(), &choice.dynos)
    } else {
        DatabaseCheck::NotApplicable { reason: "only release and one-off dynos run migrations".into() }
    };
    let per = outcomes
        .iter()
        .map(|o| StopOutcome {
            name: o.dyno.name.clone(),
            id: o.dyno.id.clone(),
            stopped: o.gone_after.is_some(),
            gone_after_ms: o.gone_after.map(|t| t.as_millis() as u64),
            still_running: o.gone_after.is_none(),
            last_state: o.last_state.clone(),
        })
        .collect();
    out.report(&kill_report(&args, &app, &platform, &choice, Action::Stop, release_phase, per, db_check));
    Ok(match (all_gone, interrupted) {
        (true, _) => Exit::Success,
        (false, true) => Exit::Interrupted,
        (false, false) => Exit::NotVerified,
    })
}

fn target_arg(args: &Args, choice: &Choice) -> String {
    match (&args.target, choice.dynos.as_slice()) {
        (_, [one]) => one.name.clone(),
        (Some(t), _) => t.clone(),
        (None, _) => String::new(),
    }
}

fn choose(
    args: &Args,
    out: &Output,
    app: &str,
    dynos: &[Dyno],
    platform: &heroku_api::Platform,
) -> anyhow::Result<Choice> {
    let Some(target) = args.target.as_deref() else {
        if dynos.is_empty() {
            return Err(usage(format!("{app} has no dynos running; nothing to stop")));
        }
        if !out.can_prompt() {
            return Err(usage(format!(
                "name a dyno or process type: safe-ps-kill DYNO -a {app}; dynos: {}",
                list_names(dynos)
            )));
        }
        let mut sorted = dynos.to_vec();
        sorted.sort_by_key(|d| natural_key(&d.name));
        let items: Vec<String> = sorted.iter().map(describe_for_pick).collect();
        return match pick(out, &format!("Which dyno of {app}?"), &items)? {
            Some(i) => Ok(Choice { dynos: vec![sorted[i].clone()], how: report::Resolution::Picked }),
            None => Err(refused("nothing chosen; nothing was stopped")),
        };
    };
    match resolve(target, dynos) {
        Resolution::Exact(d) => Ok(Choice { dynos: vec![d], how: report::Resolution::Exact }),
        Resolution::Type(t, ds) if ds.len() == 1 => {
            out.show(&Said::Resolved { process_type: &t, dyno: &ds[0].name });
            Ok(Choice { dynos: ds, how: report::Resolution::Type })
        }
        Resolution::Type(t, ds) => {
            if args.all {
                return Ok(Choice { dynos: ds, how: report::Resolution::All });
            }
            if !out.can_prompt() {
                return Err(usage(format!(
                    "{t} has {} ({}): name one, or stop them all with --all --confirm {app}",
                    count(ds.len(), "dyno"),
                    ds.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let mut items: Vec<String> = ds.iter().map(describe_for_pick).collect();
            items.push(format!("all {} {t} dynos", ds.len()));
            match pick(out, &format!("{t} has {} dynos; which?", ds.len()), &items)? {
                Some(i) if i == ds.len() => Ok(Choice { dynos: ds, how: report::Resolution::All }),
                Some(i) => Ok(Choice { dynos: vec![ds[i].clone()], how: report::Resolution::Picked }),
                None => Err(refused("nothing chosen; nothing was stopped")),
            }
        }
        Resolution::NoMatch => {
            if dynos.is_empty() {
                return Err(usage(format!("no dyno or process type `{target}` on {app}: it has no dynos running")));
            }
            // A Cedar-style name on Fir: say how Fir names dynos, and that a type works on both.
            let fir_hint = if platform.is_fir() && target.contains('.') {
                format!(
                    " ({app} is on {platform}: dynos are named like pods, e.g. web-848cd4f64d-pvpr2, and get new names on restart; pass the process type, e.g. `{}`)",
                    target.split('.').next().unwrap_or(target)
                )
            } else {
                String::new()
            };
            Err(usage(format!(
                "no dyno or process type `{target}` on {app}{fir_hint}; its dynos: {}",
                closest(target, dynos).join(", ")
            )))
        }
    }
}

fn list_names(dynos: &[Dyno]) -> String {
    let mut names: Vec<&str> = dynos.iter().map(|d| d.name.as_str()).collect();
    names.sort_by_key(|n| natural_key(n));
    names.join(", ")
}

fn age(d: &Dyno) -> String {
    d.age(SystemTime::now()).map(format_duration).unwrap_or_else(|| "?".into())
}

fn describe_for_pick(d: &Dyno) -> String {
    format!("{}  ({}, {} for {})  {}", d.name, d.process_type, d.state, age(d), d.command)
}

fn show_plan(out: &Output, choice: &Choice) {
    out.show(&Said::Plan { dynos: &choice.dynos, now: SystemTime::now() });
}

/// Stops every dyno by id, in parallel. A dyno that vanished already is not an error:
/// verification will see it gone.
/// Says what became of each stopped dyno: seen gone (and what replaced it), not yet confirmed
/// (interrupted), or still listed at the deadline.
fn say_outcomes(out: &Output, app: &str, outcomes: &[Outcome], interrupted: bool, wait: Duration) {
    for o in outcomes {
        let fate = match o.gone_after {
            Some(took) => Fate::Gone { took, replaced_by: o.replaced_by.as_ref() },
            None if interrupted => Fate::Unconfirmed,
            None => Fate::StillListed { waited: wait, state: o.last_state.as_deref().unwrap_or("up") },
        };
        out.show(&Said::Outcome { app, dyno: &o.dyno, fate });
    }
}

fn stop_all(client: &Client, app: &str, dynos: &[Dyno]) -> anyhow::Result<()> {
    let results: Vec<(String, Result<bool, heroku_api::Error>)> = std::thread::scope(|s| {
        let handles: Vec<_> =
            dynos.iter().map(|d| (d.name.clone(), s.spawn(move || client.stop_dyno_if_present(app, &d.id)))).collect();
        handles.into_iter().map(|(n, h)| (n, cli_kit::join(h))).collect()
    });
    for (name, r) in results {
        r.map_err(|e| anyhow::Error::new(e).context(format!("stopping {name}")))?;
    }
    Ok(())
}

struct Outcome {
    dyno: Dyno,
    gone_after: Option<Duration>,
    last_state: Option<String>,
    /// The dyno the formation started in its place: (name, state). The same name on Cedar; a
    /// new pod name on Fir.
    replaced_by: Option<(String, String)>,
}

/// Polls the dyno list (one request per check, however many dynos) until every stopped id is
/// gone or `limit` passes. Only what was observed is reported.
fn verify(
    client: &Client,
    out: &Output,
    app: &str,
    dynos: &[Dyno],
    listed_before: &[Dyno],
    limit: Duration,
) -> Vec<Outcome> {
    let mut gone: HashMap<String, Duration> = HashMap::new();
    let mut last: Vec<Dyno> = Vec::new();
    let spinner = out.spinner(format!(
        "waiting for {} to stop",
        dynos.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
    ));
    let mut poll = Poll::with_pauses(limit, Duration::from_millis(100), Duration::from_secs(2));
    loop {
        match client.dynos(app) {
            Ok(list) => {
                for d in dynos {
                    if !gone.contains_key(&d.id) && !list.iter().any(|x| x.id == d.id) {
                        gone.insert(d.id.clone(), poll.elapsed());
                    }
                }
                last = list;
            }
            // The client already retried; a failed check is not an observation either way.
            Err(e) => spinner.set_message(format!("checking failed ({e}); retrying")),
        }
        if gone.len() == dynos.len() || cli_kit::interrupt::requested() || !poll.wait_next() {
            break;
        }
    }
    spinner.finish();
    // Dynos that appeared since the stop: a formation dyno's replacement is among them, under
    // the same name (Cedar) or a new pod name of the same type (Fir). Each is claimed once.
    let mut fresh: Vec<&Dyno> = last.iter().filter(|x| !listed_before.iter().any(|b| b.id == x.id)).collect();
    dynos
        .iter()
        .map(|d| {
            let same_name = fresh.iter().position(|x| x.name == d.name);
            let same_type =
                || (!d.is_one_off()).then(|| fresh.iter().position(|x| x.process_type == d.process_type)).flatten();
            let replaced_by =
                same_name.or_else(same_type).map(|i| fresh.remove(i)).map(|x| (x.name.clone(), x.state.clone()));
            Outcome {
                dyno: d.clone(),
                gone_after: gone.get(&d.id).copied(),
                last_state: last.iter().find(|x| x.id == d.id).map(|x| x.state.clone()),
                replaced_by,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn kill_report(
    args: &Args,
    app: &str,
    platform: &heroku_api::Platform,
    choice: &Choice,
    action: Action,
    release_phase: Vec<ReleasePhaseNote>,
    outcomes: Vec<StopOutcome>,
    database_check: DatabaseCheck,
) -> KillReport {
    KillReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.to_string(),
        platform: platform.clone(),
        argument: args.target.clone(),
        resolution: choice.how,
        resolved: choice.dynos.iter().map(ResolvedDyno::from).collect(),
        action,
        wait_limit_ms: args.wait.as_millis() as u64,
        outcomes,
        release_phase,
        database_check,
    }
}

/// For a release dyno: which release it runs the release phase of, and what stopping it does
/// (the release fails; the app stays on its current release). One request, only when a release
/// dyno is among the targets; a failure to read is said and changes nothing else.
fn release_notes(client: &Client, out: &Output, app: &str, dynos: &[Dyno]) -> Vec<ReleasePhaseNote> {
    if !dynos.iter().any(|d| d.process_type == "release") {
        return Vec::new();
    }
    match client.recent_releases(app, 10) {
        Ok(releases) => {
            let notes = ReleasePhaseNote::for_dynos(dynos, &releases);
            for note in &notes {
                out.show(&Said::ReleasePhase { app, note });
            }
            notes
        }
        Err(e) => {
            out.show(&Said::ReleasesUnread { app, error: e.to_string() });
            Vec::new()
        }
    }
}
