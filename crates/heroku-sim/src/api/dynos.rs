//! Dynos: listing, one-off creation (run detached or attached through the rendezvous), stop
//! by id or name, restart by dyno, by type or all; stop and restart by process type under the
//! 3.sdk variant, as the pinned CLI sends them (commands/ps/stop.js, restart.js).

use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::wire::{dyno_json, list};
use super::{answer, error, needs_sdk_variant, not_found, Answer, Call};
use crate::model::{AppState, DynoState, World};

/// `GET /apps/{app}/dynos`.
pub(super) fn list_dynos(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let app = &world.apps[app_name];
    let items = app.dynos.iter().map(|d| dyno_json(app, d)).collect();
    list(items, cx.range, "id", world.faults.page_size)
}

/// `GET /apps/{app}/dynos/{id or name}`.
pub(super) fn get_dyno(world: &mut World, app_name: &str, dyno: &str) -> Answer {
    let app = &world.apps[app_name];
    match app.dynos.iter().find(|d| d.id == dyno || d.name == dyno) {
        Some(d) => answer(200, dyno_json(app, d)),
        None => not_found("dyno"),
    }
}

/// `DELETE /apps/{app}/dynos`: every dyno restarts.
pub(super) fn restart_all(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    restart(world, app_name, |_| true, cx.now);
    answer(202, json!({}))
}

/// `DELETE /apps/{app}/dynos/{id or name}`. The route takes a dyno's id or name (the schema's
/// dyno identity). A process type there is no dyno: the platform answers 404 and restarts
/// nothing. Restarting a type is `DELETE /apps/{app}/formations/{type}`.
pub(super) fn restart_one(world: &mut World, app_name: &str, target: &str, cx: &Call) -> Answer {
    if !world.apps[app_name].dynos.iter().any(|d| d.id == target || d.name == target) {
        return error(404, "not_found", "Couldn't find that process.");
    }
    restart(world, app_name, |d| d.id == target || d.name == target, cx.now);
    answer(202, json!({}))
}

/// `POST /apps/{app}/formations/{type}/actions/stop` (3.sdk only: the schema has no link).
pub(super) fn stop_type(world: &mut World, app_name: &str, ptype: &str, cx: &Call) -> Answer {
    if let Some(refusal) = needs_sdk_variant(cx.req) {
        return refusal;
    }
    if !has_process_type(&world.apps[app_name], ptype) {
        return not_found("formation");
    }
    let stop_delay = world.timing.stop_delay;
    let app = world.apps.get_mut(app_name).expect("found");
    for d in app.dynos.iter_mut().filter(|d| d.process_type == ptype && !d.ignores_stop) {
        d.gone_at.get_or_insert(cx.now + stop_delay);
    }
    answer(202, json!({}))
}

/// `DELETE /apps/{app}/formations/{type}` (3.sdk only): the type's dynos restart.
pub(super) fn restart_type(world: &mut World, app_name: &str, ptype: &str, cx: &Call) -> Answer {
    if let Some(refusal) = needs_sdk_variant(cx.req) {
        return refusal;
    }
    if !has_process_type(&world.apps[app_name], ptype) {
        return not_found("formation");
    }
    restart(world, app_name, |d| d.process_type == ptype, cx.now);
    answer(202, json!({}))
}

pub(super) fn has_process_type(app: &AppState, ptype: &str) -> bool {
    app.dynos.iter().any(|d| d.process_type == ptype) || app.formation.iter().any(|f| f.process_type == ptype)
}

pub(super) fn stop_dyno(world: &mut World, app_name: &str, target: &str, now: Instant) -> Answer {
    let stop_delay = world.timing.stop_delay;
    let kill_grace = world.timing.kill_grace;
    let app = world.apps.get_mut(app_name).expect("found");
    if let Some(d) = app.dynos.iter_mut().find(|d| d.id == target || d.name == target) {
        if !d.ignores_stop {
            d.gone_at.get_or_insert(now + stop_delay);
            // A one-off dyno's command ends with it.
            if let Some(pid) = d.process {
                crate::oneoff::kill_group(pid, kill_grace);
            }
        }
        let d = d.clone();
        return answer(202, dyno_json(app, &d));
    }
    // The platform's known behaviour: a stop addressed to a bare process-type name that is
    // not a dyno name is accepted and stops nothing.
    if has_process_type(app, target) {
        return answer(202, json!({}));
    }
    not_found("dyno")
}

pub(super) fn restart(world: &mut World, app_name: &str, which: impl Fn(&DynoState) -> bool, now: Instant) {
    world.restart_dynos(app_name, now, which);
}

pub(super) fn create_dyno(world: &mut World, app_name: &str, body: Option<&Value>, now: Instant) -> Answer {
    let Some(command) = body.and_then(|b| b.get("command")).and_then(Value::as_str) else {
        return error(422, "invalid_params", "command is required.");
    };
    let ptype = body.and_then(|b| b.get("type")).and_then(Value::as_str).unwrap_or("run").to_string();
    let size = body.and_then(|b| b.get("size")).and_then(Value::as_str).unwrap_or("standard-1X").to_string();
    let env: std::collections::BTreeMap<String, String> = body
        .and_then(|b| b.get("env"))
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    let attach = body.and_then(|b| b.get("attach")).and_then(Value::as_bool).unwrap_or(false);
    let id = world.new_id();
    let number = world.next_run_number();
    let secret = world.new_id().replace('-', "");
    let start_delay = world.timing.start_delay;
    let rendezvous_port = world.one_offs.rendezvous_port;
    let slug_dir = world.slug.dir.clone();
    let runtime_dir = world.slug.runtime_dir.clone();
    let layers_dir = world.slug.layers_dir.clone();
    let app = world.apps.get_mut(app_name).expect("found");
    // Fir names one-off dynos like its pods (`run-…`); Cedar numbers them (`run.1001`).
    let name = if app.is_fir() { app.dyno_name(&ptype, number, &id) } else { format!("{ptype}.{number}") };
    // A dyno's environment: the app's config vars, then what the request adds.
    let mut job_env = app.config_vars.clone();
    job_env.extend(env.clone());
    let job = crate::oneoff::Job {
        app: app_name.to_string(),
        dyno_id: id.clone(),
        dyno_name: name.clone(),
        command: command.to_string(),
        env: job_env,
        dir: slug_dir,
        runtime: (runtime_dir, app.one_off_runtime()),
        launch_layers: app.launch_layer_bins(layers_dir.as_deref()),
    };
    // On Fir an attached one-off is reached over SSH with the user's key (lib/run/dyno.js
    // `_useSSH` for an http(s) attach_url), not the rendezvous: the URL is https and the
    // rendezvous knows no such secret.
    let fir = app.is_fir();
    let attach_url = match (attach, rendezvous_port) {
        (true, Some(port)) if fir => Some(format!("https://127.0.0.1:{port}/{secret}")),
        (true, Some(port)) => Some(format!("rendezvous://127.0.0.1:{port}/{secret}")),
        _ => None,
    };
    let t = SystemTime::now();
    let dyno = DynoState {
        id,
        name,
        process_type: ptype,
        command: command.to_string(),
        size,
        state: "starting".into(),
        created_at: t,
        updated_at: t,
        release_version: app.current_version(),
        gone_at: None,
        up_at: Some(now + start_delay),
        ignores_stop: false,
        never_up: false,
        attach_url: attach_url.clone(),
        env,
        process: None,
        slot: None,
    };
    let out = dyno_json(app, &dyno);
    app.dynos.push(dyno);
    match (attach, attach_url) {
        // Only a rendezvous URL is served here; a Fir dyno waits for an SSH client this
        // simulator does not play (it stays `starting` until stopped).
        (true, Some(url)) if url.starts_with("rendezvous://") => {
            world.one_offs.attach_jobs.insert(secret, job);
        }
        (true, _) => {}
        (false, _) => world.one_offs.detached.push(job),
    }
    answer(201, out)
}
