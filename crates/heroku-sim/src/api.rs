//! The Platform API routes: turns a request into a reply against the [`World`].

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use crate::http::{Handler, Reply, Request};
use crate::model::{AppState, DynoState, FaultKind, LoggedRequest, World};
use crate::paging;

fn ts(t: SystemTime) -> String {
    crate::clock::api_time(t)
}

/// The HTTP handler over a shared world.
pub struct ApiHandler {
    /// The state every request reads and changes.
    pub world: Arc<Mutex<World>>,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer { status, headers: Vec::new(), body }
}

fn error(status: u16, id: &str, message: &str) -> Answer {
    answer(status, json!({ "id": id, "message": message }))
}

fn not_found(what: &str) -> Answer {
    error(404, "not_found", &format!("Couldn't find that {what}."))
}

impl Handler for ApiHandler {
    fn handle(&self, req: &Request) -> Reply {
        let arrived = Instant::now();
        let (reply, latency) = {
            let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
            world.request_count += 1;
            world.tick(arrived);
            let latency = world.faults.latency;
            let body: Option<Value> = serde_json::from_slice(&req.body).ok();
            let outcome = match injected_fault(&mut world, req) {
                Some(FaultKind::Reset) => None,
                Some(FaultKind::RateLimited(secs)) => {
                    let mut a = error(429, "rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests.");
                    a.headers.push(("Retry-After".into(), secs.to_string()));
                    Some(a)
                }
                Some(FaultKind::ServiceUnavailable) => {
                    Some(error(503, "unavailable", "The service is temporarily unavailable."))
                }
                Some(FaultKind::TwoFactor) => {
                    Some(error(403, "two_factor", "Two-factor authentication is required for this action."))
                }
                // A log stream is reached with the secret in its URL, not the API token.
                None if req.method == "GET" && req.path.starts_with("/log-sessions/") => {
                    let id = req.path.trim_start_matches("/log-sessions/").trim_end_matches("/stream").to_string();
                    match world.log_sessions.get(&id).cloned() {
                        Some(session) => {
                            let world = self.world.clone();
                            return Reply::Stream {
                                status: 200,
                                headers: vec![("Content-Type".into(), "text/event-stream".into())],
                                body: Box::new(move |out| crate::logs::stream(world, session, out)),
                            };
                        }
                        None => Some(not_found("log session")),
                    }
                }
                // So is a release's output stream (text/plain, resumable with Range).
                None if req.method == "GET" && req.path.starts_with("/release-output/") => {
                    let id = req.path.trim_start_matches("/release-output/").to_string();
                    match world.release_outputs.get(&id) {
                        Some(o) if o.started => {
                            let world = self.world.clone();
                            let from = crate::release_phase::range_start(req.header("range"));
                            return Reply::Stream {
                                status: if from > 0 { 206 } else { 200 },
                                headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
                                body: Box::new(move |out| crate::release_phase::stream_output(world, id, from, out)),
                            };
                        }
                        _ => Some(not_found("release output")),
                    }
                }
                None if !authorized(&world, req) => Some(error(401, "unauthorized", "Invalid credentials provided.")),
                // A push's build, asked for by the app's git remote (crate::git): not a Platform
                // API route; it streams what `git push` shows and ends with the hook's status.
                None if req.method == "POST"
                    && req.path.starts_with("/_sim/apps/")
                    && req.path.ends_with("/builds") =>
                {
                    match self.push_build(&world, req, body.as_ref()) {
                        Ok(reply) => return reply,
                        Err(answer) => Some(answer),
                    }
                }
                None => Some(route(&mut world, req, body.as_ref(), arrived)),
            };
            for job in std::mem::take(&mut world.detached_jobs) {
                crate::oneoff::run_detached(job, self.world.clone());
            }
            for job in std::mem::take(&mut world.release_jobs) {
                crate::release_phase::start(job, self.world.clone());
            }
            world.log.push(LoggedRequest {
                method: req.method.clone(),
                path: req.path.clone(),
                status: outcome.as_ref().map(|a| a.status).unwrap_or(0),
                range: req.header("range").map(str::to_string),
                body,
                at: arrived,
                accept: req.header("accept").map(str::to_string),
                user_agent: req.header("user-agent").map(str::to_string),
            });
            let reply = match outcome {
                None => Reply::Reset,
                Some(a) => {
                    let mut headers = a.headers;
                    headers.push(("Content-Type".into(), "application/json".into()));
                    headers.push(("Request-Id".into(), format!("sim-{}", world.request_count)));
                    headers.push(("RateLimit-Remaining".into(), "4500".into()));
                    Reply::Response { status: a.status, headers, body: a.body.to_string() }
                }
            };
            (reply, latency)
        };
        // Outside the lock, so concurrent requests overlap as they would on the real API.
        if !latency.is_zero() {
            std::thread::sleep(latency.saturating_sub(arrived.elapsed()));
        }
        reply
    }
}

impl ApiHandler {
    /// The build of a push: the stream [`crate::git::build`] writes, or why there is none.
    fn push_build(&self, world: &World, req: &Request, body: Option<&Value>) -> Result<Reply, Answer> {
        let app = req.path.trim_start_matches("/_sim/apps/").trim_end_matches("/builds").to_string();
        let field = |k: &str| body.and_then(|b| b.get(k)).and_then(Value::as_str).map(str::to_string);
        let objects = crate::git::Objects { object_dir: field("object_dir"), alternates: field("alternates") };
        if !world.apps.contains_key(&app) {
            return Err(not_found("app"));
        }
        let (Some(commit), Some(git_dir)) = (field("commit"), field("git_dir")) else {
            return Err(error(422, "invalid_params", "commit and git_dir are required."));
        };
        let world = self.world.clone();
        Ok(Reply::Stream {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: Box::new(move |out| {
                crate::git::build(world, &app, std::path::Path::new(&git_dir), &objects, &commit, out)
            }),
        })
    }
}

fn injected_fault(world: &mut World, req: &Request) -> Option<FaultKind> {
    let faults = &mut world.faults;
    if let Some(pos) = faults.rules.iter().position(|r| {
        r.remaining > 0
            && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&req.method))
            && r.path_contains.as_deref().is_none_or(|p| req.path.contains(p))
    }) {
        let rule = &mut faults.rules[pos];
        rule.remaining -= 1;
        return Some(rule.kind.clone());
    }
    if let Some(n) = faults.rate_limit_every {
        if n > 0 && world.request_count % u64::from(n) == 0 {
            return Some(FaultKind::RateLimited(faults.retry_after_secs));
        }
    }
    None
}

fn authorized(world: &World, req: &Request) -> bool {
    let expected = format!("Bearer {}", world.token);
    req.header("authorization").is_some_and(|v| v == expected)
}

fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(world: &mut World, req: &Request, body: Option<&Value>, now: Instant) -> Answer {
    let segs: Vec<String> = req.path.split('/').filter(|s| !s.is_empty()).map(decode_segment).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    let range = req.header("range");
    if segs == ["account"] && method == "GET" {
        return answer(200, account_json(world));
    }
    match (method, segs.as_slice()) {
        ("POST", ["pipeline-promotions"]) => {
            let host = req.header("host").unwrap_or("127.0.0.1").to_string();
            return create_promotion(world, body, now, &host);
        }
        ("GET", ["pipeline-promotions", id]) => {
            return match world.promotions.iter().find(|p| p.id == *id) {
                Some(p) => answer(200, promotion_json(world, p)),
                None => not_found("pipeline promotion"),
            };
        }
        ("GET", ["pipeline-promotions", id, "promotion-targets"]) => {
            return match world.promotions.iter().find(|p| p.id == *id) {
                Some(p) => answer(200, Value::Array(promotion_targets_json(world, p))),
                None => not_found("pipeline promotion"),
            };
        }
        _ => {}
    }
    let ["apps", app_key, rest @ ..] = segs.as_slice() else {
        return error(404, "not_found", "Not found.");
    };
    let Some(app_name) = find_app(world, app_key) else {
        return error(404, "not_found", "Couldn't find that app.");
    };
    match (method, rest) {
        ("GET", []) => {
            let mut app = app_json(world, &world.apps[&app_name]);
            // The published schema has no `generation`; the pinned CLI reads it from this
            // route under the 3.sdk variant (lib/apps/generation.js), as a string or `{name}`.
            if needs_sdk_variant(req).is_none() {
                app["generation"] = json!({ "name": world.apps[&app_name].generation });
            }
            answer(200, app)
        }
        ("PATCH", []) => {
            let app = world.apps.get_mut(&app_name).expect("found");
            if let Some(m) = body.and_then(|b| b.get("maintenance")).and_then(Value::as_bool) {
                app.maintenance = m;
                app.updated_at = SystemTime::now();
            }
            answer(200, app_json(world, &world.apps[&app_name]))
        }
        ("GET", ["dynos"]) => {
            let app = &world.apps[&app_name];
            let items = app.dynos.iter().map(|d| dyno_json(app, d)).collect();
            list(items, range, "id", world.faults.page_size)
        }
        ("POST", ["dynos"]) => create_dyno(world, &app_name, body, now),
        ("POST", ["log-sessions"]) => {
            let host = req.header("host").unwrap_or("127.0.0.1").to_string();
            create_log_session(world, &app_name, body, &host)
        }
        ("DELETE", ["dynos"]) => {
            restart(world, &app_name, |_| true, now);
            answer(202, json!({}))
        }
        ("GET", ["dynos", dyno]) => {
            let app = &world.apps[&app_name];
            match app.dynos.iter().find(|d| d.id == *dyno || d.name == *dyno) {
                Some(d) => answer(200, dyno_json(app, d)),
                None => not_found("dyno"),
            }
        }
        ("DELETE", ["dynos", target]) => {
            // The dyno route takes a dyno's id or name (the schema's dyno identity). A process
            // type there is no dyno: the platform answers 404 and restarts nothing. Restarting a
            // type is `DELETE /apps/{app}/formations/{type}` (below).
            let target = target.to_string();
            if !world.apps[&app_name].dynos.iter().any(|d| d.id == target || d.name == target) {
                return error(404, "not_found", "Couldn't find that process.");
            }
            restart(world, &app_name, |d| d.id == target || d.name == target, now);
            answer(202, json!({}))
        }
        ("POST", ["dynos", target, "actions", "stop"]) => stop_dyno(world, &app_name, target, now),
        // Stop and restart by process type. The schema has no link for these; the pinned Heroku
        // CLI sends them (commands/ps/stop.js, restart.js), always with the `3.sdk` variant, so
        // the simulator serves them only under that variant.
        ("POST", ["formations", ptype, "actions", "stop"]) => {
            if let Some(refusal) = needs_sdk_variant(req) {
                return refusal;
            }
            if !has_process_type(&world.apps[&app_name], ptype) {
                return not_found("formation");
            }
            let stop_delay = world.timing.stop_delay;
            let app = world.apps.get_mut(&app_name).expect("found");
            for d in app.dynos.iter_mut().filter(|d| d.process_type == *ptype && !d.ignores_stop) {
                d.gone_at.get_or_insert(now + stop_delay);
            }
            answer(202, json!({}))
        }
        ("DELETE", ["formations", ptype]) => {
            if let Some(refusal) = needs_sdk_variant(req) {
                return refusal;
            }
            if !has_process_type(&world.apps[&app_name], ptype) {
                return not_found("formation");
            }
            let ptype = ptype.to_string();
            restart(world, &app_name, |d| d.process_type == ptype, now);
            answer(202, json!({}))
        }
        ("GET", ["formation"]) => {
            let app = &world.apps[&app_name];
            let items = app.formation.iter().map(|f| formation_json(app, f)).collect();
            list(items, range, "id", world.faults.page_size)
        }
        ("PATCH", ["formation"]) => {
            let Some(updates) = body.and_then(|b| b.get("updates")).and_then(Value::as_array) else {
                return error(422, "invalid_params", "updates is required.");
            };
            let mut parsed = Vec::new();
            for u in updates {
                let Some(ptype) = u.get("type").and_then(Value::as_str) else {
                    return error(422, "invalid_params", "type is required.");
                };
                if !world.apps[&app_name].formation.iter().any(|f| f.process_type == ptype || f.id == ptype) {
                    return not_found("formation");
                }
                parsed.push((ptype.to_string(), u.get("quantity").and_then(Value::as_u64)));
            }
            let mut changed = Vec::new();
            for (ptype, qty) in parsed {
                let ptype = resolve_formation_type(&world.apps[&app_name], &ptype);
                if let Some(q) = qty {
                    world.apply_quantity(&app_name, &ptype, q as u32, now);
                }
                changed.push(ptype);
            }
            let app = &world.apps[&app_name];
            let out: Vec<Value> = app
                .formation
                .iter()
                .filter(|f| changed.contains(&f.process_type))
                .map(|f| formation_json(app, f))
                .collect();
            answer(200, Value::Array(out))
        }
        ("GET", ["formation", ptype]) => {
            let app = &world.apps[&app_name];
            match app.formation.iter().find(|f| f.process_type == *ptype || f.id == *ptype) {
                Some(f) => answer(200, formation_json(app, f)),
                None => not_found("formation"),
            }
        }
        ("PATCH", ["formation", ptype]) => {
            if !world.apps[&app_name].formation.iter().any(|f| f.process_type == *ptype || f.id == *ptype) {
                return not_found("formation");
            }
            let ptype = resolve_formation_type(&world.apps[&app_name], ptype);
            if let Some(q) = body.and_then(|b| b.get("quantity")).and_then(Value::as_u64) {
                world.apply_quantity(&app_name, &ptype, q as u32, now);
            }
            let app = &world.apps[&app_name];
            let f = app.formation.iter().find(|f| f.process_type == ptype).expect("exists");
            answer(200, formation_json(app, f))
        }
        ("GET", ["releases"]) => {
            let app = &world.apps[&app_name];
            let host = req.header("host").unwrap_or("127.0.0.1");
            let sdk = needs_sdk_variant(req).is_none();
            let items = app.releases.iter().map(|r| release_json(world, app, r.version, host, sdk)).collect();
            list(items, range, "id", world.faults.page_size)
        }
        ("GET", ["releases", key]) => {
            let app = &world.apps[&app_name];
            match app.releases.iter().find(|r| r.id == *key || r.version.to_string() == key.trim_start_matches('v')) {
                Some(r) => answer(
                    200,
                    release_json(
                        world,
                        app,
                        r.version,
                        req.header("host").unwrap_or("127.0.0.1"),
                        needs_sdk_variant(req).is_none(),
                    ),
                ),
                None => not_found("release"),
            }
        }
        // A release's config vars (the schema's "Info for App Release"; `releases:info` reads
        // them). The simulator does not version config vars: every release sees today's.
        ("GET", ["releases", key, "config-vars"]) => {
            let app = &world.apps[&app_name];
            if !app.releases.iter().any(|r| r.id == *key || r.version.to_string() == key.trim_start_matches('v')) {
                return not_found("release");
            }
            let vars: serde_json::Map<String, Value> =
                app.config_vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            answer(200, Value::Object(vars))
        }
        ("POST", ["releases"]) => {
            let host = req.header("host").unwrap_or("127.0.0.1").to_string();
            create_release(world, &app_name, body, now, &host)
        }
        ("GET", ["slugs", id]) => {
            let app = &world.apps[&app_name];
            match app.slugs.iter().find(|s| s.id == *id && !app.is_fir()) {
                Some(s) => answer(200, slug_json(s)),
                None => not_found("slug"),
            }
        }
        // The image a Fir release runs, as an array (the CLI reads `[0].commit`).
        ("GET", ["oci-images", id]) => {
            let app = &world.apps[&app_name];
            match app.slugs.iter().find(|s| s.id == *id && app.is_fir()) {
                Some(s) => answer(200, json!([oci_image_json(s)])),
                None => not_found("oci-image"),
            }
        }
        ("GET", ["pipeline-couplings"]) => match world.couplings.iter().find(|c| c.app == app_name) {
            Some(c) => answer(200, coupling_json(world, c)),
            None => not_found("pipeline coupling"),
        },
        // A user's config change makes a release, which runs the release phase.
        ("PATCH", ["config-vars"]) => update_config_vars(world, &app_name, body, now),
        ("GET", ["config-vars"]) => {
            let vars: serde_json::Map<String, Value> =
                world.apps[&app_name].config_vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            answer(200, Value::Object(vars))
        }
        ("GET", ["addon-attachments"]) => {
            let app = &world.apps[&app_name];
            let items = app.attachments.iter().map(|a| attachment_json(app, a)).collect();
            list(items, range, "id", world.faults.page_size)
        }
        _ => error(404, "not_found", "Not found."),
    }
}

fn resolve_formation_type(app: &AppState, key: &str) -> String {
    app.formation
        .iter()
        .find(|f| f.process_type == key || f.id == key)
        .map(|f| f.process_type.clone())
        .unwrap_or_default()
}

fn list(items: Vec<Value>, range: Option<&str>, default_field: &str, page_size: usize) -> Answer {
    let (status, headers, page) = paging::page(items, range, default_field, page_size);
    Answer { status, headers, body: Value::Array(page) }
}

fn find_app(world: &World, key: &str) -> Option<String> {
    if world.apps.contains_key(key) {
        return Some(key.to_string());
    }
    world.apps.values().find(|a| a.id == key).map(|a| a.name.clone())
}

/// The `Accept` variant the Heroku CLI sends for the formation action routes.
const SDK_VARIANT: &str = "application/vnd.heroku+json; version=3.sdk";

fn needs_sdk_variant(req: &Request) -> Option<Answer> {
    if req.header("accept").is_some_and(|a| a.split(',').any(|v| v.trim() == SDK_VARIANT)) {
        return None;
    }
    Some(error(404, "not_found", "Not found: this route is served under the 3.sdk variant only."))
}

fn has_process_type(app: &AppState, ptype: &str) -> bool {
    app.dynos.iter().any(|d| d.process_type == ptype) || app.formation.iter().any(|f| f.process_type == ptype)
}

fn stop_dyno(world: &mut World, app_name: &str, target: &str, now: Instant) -> Answer {
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

fn restart(world: &mut World, app_name: &str, which: impl Fn(&DynoState) -> bool, now: Instant) {
    world.restart_dynos(app_name, now, which);
}

fn create_dyno(world: &mut World, app_name: &str, body: Option<&Value>, now: Instant) -> Answer {
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
    let rendezvous_port = world.rendezvous_port;
    let slug_dir = world.slug_dir.clone();
    let runtime_dir = world.runtime_dir.clone();
    let layers_dir = world.layers_dir.clone();
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
            world.attach_jobs.insert(secret, job);
        }
        (true, _) => {}
        (false, _) => world.detached_jobs.push(job),
    }
    answer(201, out)
}

/// `POST /apps/{app}/log-sessions`: the session's `logplex_url` streams the app's log from
/// this server (a secret path, as the platform's carries a token).
fn create_log_session(world: &mut World, app_name: &str, body: Option<&Value>, host: &str) -> Answer {
    let get = |k: &str| body.and_then(|b| b.get(k));
    let lines = (get("lines").and_then(Value::as_u64).unwrap_or(100) as usize).min(world.faults.log_history_limit);
    let fir = world.apps[app_name].is_fir();
    let limit = world.timing.fir_log_session;
    let session = crate::logs::LogSession {
        app: app_name.to_string(),
        dyno: get("dyno").and_then(Value::as_str).map(str::to_string),
        process_type: get("type").and_then(Value::as_str).map(str::to_string),
        source: get("source").and_then(Value::as_str).map(str::to_string),
        // A Fir session has no history (`--num` is "ignored for Fir generation apps"), always
        // tails, and ends after a while (the CLI re-creates it: lib/run/log-displayer.js).
        lines: if fir { 0 } else { lines },
        tail: fir || get("tail").and_then(Value::as_bool).unwrap_or(false),
        ends_after: fir.then_some(limit),
        fir,
    };
    let id = world.new_id();
    world.log_sessions.insert(id.clone(), session);
    let t = ts(SystemTime::now());
    answer(
        201,
        json!({
            "id": id,
            "logplex_url": format!("http://{host}/log-sessions/{id}/stream"),
            "created_at": t,
            "updated_at": t,
        }),
    )
}

fn create_release(world: &mut World, app_name: &str, body: Option<&Value>, now: Instant, host: &str) -> Answer {
    // A rollback names a release (`heroku releases:rollback`: {"release": id}); it re-releases
    // that release's slug, and the release phase runs again.
    if let Some(key) = body.and_then(|b| b.get("release")).and_then(Value::as_str) {
        return rollback(world, app_name, key, now, host);
    }
    let Some(slug_id) = body.and_then(|b| b.get("slug")).and_then(Value::as_str) else {
        return error(422, "invalid_params", "slug is required.");
    };
    // A Fir app releases OCI images, which this route (a slug) cannot name.
    if world.apps[app_name].is_fir() {
        return error(
            422,
            "invalid_params",
            "This app is on the Fir generation: its releases are built from OCI images, not slugs.",
        );
    }
    // A slug may come from another app of the same account (promotion).
    let Some(slug) = world.apps.values().flat_map(|a| a.slugs.iter()).find(|s| s.id == slug_id).cloned() else {
        return not_found("slug");
    };
    let description =
        body.and_then(|b| b.get("description")).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
            format!("Deploy {}", slug.commit.as_deref().unwrap_or("").chars().take(8).collect::<String>())
        });
    let version = world.release_slug(app_name, slug, description, now);
    let app = &world.apps[app_name];
    answer(201, release_json(world, app, version, host, false))
}

fn update_config_vars(world: &mut World, app_name: &str, body: Option<&Value>, now: Instant) -> Answer {
    let Some(obj) = body.and_then(Value::as_object) else {
        return error(422, "invalid_params", "A JSON object of config vars is required.");
    };
    let vars: Vec<(String, Option<String>)> =
        obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string))).collect();
    world.user_config_change(app_name, &vars, now);
    let vars: serde_json::Map<String, Value> =
        world.apps[app_name].config_vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    answer(200, Value::Object(vars))
}

fn rollback(world: &mut World, app_name: &str, key: &str, now: Instant, host: &str) -> Answer {
    let app = &world.apps[app_name];
    let Some(target) =
        app.releases.iter().find(|r| r.id == key || r.version.to_string() == key.trim_start_matches('v'))
    else {
        return not_found("release");
    };
    let (version, slug_id) = (target.version, target.slug_id.clone());
    let Some(slug) = slug_id.and_then(|id| app.slugs.iter().find(|s| s.id == id).cloned()) else {
        return error(422, "invalid_params", "This release has no slug to roll back to.");
    };
    let released = world.release_slug(app_name, slug, format!("Rollback to v{version}"), now);
    let app = &world.apps[app_name];
    answer(201, release_json(world, app, released, host, true))
}

fn account_json(world: &World) -> Value {
    json!({
        "id": world.account_id,
        "email": world.account_email,
        "name": "On Call",
        "allow_tracking": false,
        "beta": false,
        "created_at": "2015-01-01T00:00:00Z",
        "updated_at": "2015-01-01T00:00:00Z",
        "last_login": "2026-01-01T00:00:00Z",
        "sms_number": null,
        "suspended_at": null,
        "delinquent_at": null,
        "two_factor_authentication": true,
        "verified": true,
        "country_of_residence": null,
        "default_organization": null,
        "default_team": null,
        "identity_provider": null,
        "federated": false
    })
}

fn app_ref(app: &AppState) -> Value {
    json!({ "id": app.id, "name": app.name })
}

fn app_json(world: &World, app: &AppState) -> Value {
    let released_at = app.current_release().map(|r| ts(r.created_at));
    json!({
        "id": app.id,
        "name": app.name,
        "maintenance": app.maintenance,
        "created_at": ts(app.created_at),
        "updated_at": ts(app.updated_at),
        "released_at": released_at,
        "web_url": format!("https://{}.herokuapp.com/", app.name),
        "git_url": format!("https://git.heroku.com/{}.git", app.name),
        "owner": { "id": world.account_id, "email": world.account_email },
        "region": { "id": "59accabd-516d-4f0e-83e6-6e3757701145", "name": "us" },
        "stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": app.stack },
        "build_stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": app.stack },
        "buildpack_provided_description": "Ruby/Rails",
        "acm": false,
        "archived_at": null,
        "internal_routing": null,
        "organization": null,
        "team": null,
        "space": null,
        "repo_size": null,
        "slug_size": 52_428_800
    })
}

fn dyno_json(app: &AppState, d: &DynoState) -> Value {
    let release = app.releases.iter().find(|r| r.version == d.release_version);
    json!({
        "id": d.id,
        "name": d.name,
        "type": d.process_type,
        "state": d.state,
        "command": d.command,
        "size": d.size,
        "created_at": ts(d.created_at),
        "updated_at": ts(d.updated_at),
        "attach_url": d.attach_url,
        "release": release.map(|r| json!({ "id": r.id, "version": r.version })),
        "app": app_ref(app)
    })
}

fn formation_json(app: &AppState, f: &crate::model::FormationState) -> Value {
    json!({
        "id": f.id,
        "type": f.process_type,
        "quantity": f.quantity,
        "size": f.size,
        "command": f.command,
        "created_at": ts(app.created_at),
        "updated_at": ts(f.updated_at),
        "app": app_ref(app)
    })
}

/// A release; `output_stream_url` is served by this server at a secret path, as the platform's
/// carries a token (no API key is sent with it: the CLI fetches it with a plain GET).
/// A release; `sdk`: asked under the 3.sdk variant, which also carries `oci_image`.
fn release_json(world: &World, app: &AppState, version: u64, host: &str, sdk: bool) -> Value {
    let r = app.releases.iter().find(|r| r.version == version).expect("release exists");
    let current = app.current_release().map(|c| c.version) == Some(version);
    let mut release = json!({
        "id": r.id,
        "version": r.version,
        "description": r.description,
        "status": r.status,
        "created_at": ts(r.created_at),
        "updated_at": ts(r.created_at),
        "current": current,
        // A Fir release runs an OCI image and has no slug. The simulator keeps one artifact
        // store and names it by generation.
        "slug": if app.is_fir() { None } else { r.slug_id.as_ref().map(|id| json!({ "id": id })) },
        "user": { "id": world.account_id, "email": world.account_email },
        "app": app_ref(app),
        "addon_plan_names": ["heroku-postgresql:standard-0"],
        "output_stream_url": r.output_id.as_ref().map(|id| format!("http://{host}/release-output/{id}"))
    });
    // The published schema has no `oci_image`; the pinned CLI reads it from releases asked for
    // under the 3.sdk variant (lib/buildpacks/buildpacks.js, commands/pipelines/diff.js).
    if sdk {
        // What `heroku releases:rollback` may roll back to (lib/releases/releases.js filters on
        // it, asking under 3.sdk; the schema has no such field): a release that ran and has
        // something to run again.
        release["eligible_for_rollback"] = json!(r.status == "succeeded" && r.slug_id.is_some());
        release["oci_image"] = if app.is_fir() {
            r.slug_id.as_ref().map(|id| json!({ "id": id })).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
    }
    release
}

fn oci_image_json(s: &crate::model::SlugState) -> Value {
    json!({
        "id": s.id,
        "commit": s.commit,
        "commit_description": s.commit_description,
        "process_types": s.process_types.iter().map(|(k, v)| (k.clone(), json!({ "name": k, "command": v }))).collect::<serde_json::Map<String, Value>>(),
        "buildpacks": [{ "id": "heroku/ruby", "version": "1.0.0", "homepage": "https://github.com/heroku/buildpacks-ruby" }],
        "stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": "cnb" },
        "created_at": ts(s.created_at),
        "updated_at": ts(s.created_at),
    })
}

fn slug_json(s: &crate::model::SlugState) -> Value {
    json!({
        "id": s.id,
        "commit": s.commit,
        "commit_description": s.commit_description,
        "process_types": s.process_types,
        "created_at": ts(s.created_at),
        "updated_at": ts(s.created_at),
        "size": 52_428_800,
        "checksum": "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "buildpack_provided_description": "Ruby/Rails",
        "blob": { "method": "get", "url": "https://slugs.example.invalid/blob" },
        "stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": "heroku-24" }
    })
}

fn attachment_json(app: &AppState, a: &crate::model::AttachmentState) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "addon": { "id": a.addon_id, "name": a.addon_name, "app": app_ref(app) },
        "app": app_ref(app),
        "namespace": null,
        "created_at": ts(app.created_at),
        "updated_at": ts(app.created_at),
        "web_url": format!("https://data.heroku.com/datastores/{}", a.addon_id),
        "log_input_url": null
    })
}

fn app_id(world: &World, name: &str) -> Value {
    json!({ "id": world.apps.get(name).map(|a| a.id.clone()).unwrap_or_default() })
}

fn coupling_json(world: &World, c: &crate::model::CouplingState) -> Value {
    json!({
        "id": c.id,
        "app": app_id(world, &c.app),
        "pipeline": { "id": c.pipeline_id },
        "stage": c.stage,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.created_at),
    })
}

/// A target's status follows the release the promotion made there: pending while its release
/// phase runs, then succeeded or failed.
fn target_status(world: &World, app: &str, version: Option<u64>) -> &'static str {
    let status =
        version.and_then(|v| world.apps.get(app)?.releases.iter().find(|r| r.version == v)).map(|r| r.status.as_str());
    match status {
        Some("succeeded") => "succeeded",
        Some("failed") | None => "failed",
        Some(_) => "pending",
    }
}

fn promotion_targets_json(world: &World, p: &crate::model::PromotionState) -> Vec<Value> {
    p.targets
        .iter()
        .map(|(id, app, version)| {
            let release = version
                .and_then(|v| world.apps.get(app)?.releases.iter().find(|r| r.version == v))
                .map(|r| json!({ "id": r.id }));
            let status = target_status(world, app, *version);
            json!({
                "id": id,
                "app": app_id(world, app),
                "pipeline_promotion": { "id": p.id },
                "release": release,
                "status": status,
                "error_message": (status == "failed").then_some("The release command failed."),
            })
        })
        .collect()
}

fn promotion_json(world: &World, p: &crate::model::PromotionState) -> Value {
    let done = p.targets.iter().all(|(_, app, v)| target_status(world, app, *v) != "pending");
    json!({
        "id": p.id,
        "pipeline": { "id": p.pipeline_id },
        "source": { "app": app_id(world, &p.source_app), "release": { "id": p.source_release_id } },
        "status": if done { "completed" } else { "pending" },
        "created_at": ts(p.created_at),
        "updated_at": ts(p.created_at),
    })
}

/// `POST /pipeline-promotions`: the source's current release (its slug, or on Fir its OCI
/// image) becomes a new release of every target; the source and every target must be coupled
/// to the pipeline. How `heroku pipelines:promote` promotes on both generations.
fn create_promotion(world: &mut World, body: Option<&Value>, now: Instant, _host: &str) -> Answer {
    let get = |path: &[&str]| {
        let mut v = body?;
        for k in path {
            v = v.get(*k)?;
        }
        v.as_str().map(str::to_string)
    };
    let (Some(pipeline_id), Some(source_id)) = (get(&["pipeline", "id"]), get(&["source", "app", "id"])) else {
        return error(422, "invalid_params", "pipeline and source are required.");
    };
    let target_ids: Vec<String> = body
        .and_then(|b| b.get("targets"))
        .and_then(Value::as_array)
        .map(|ts| ts.iter().filter_map(|t| t.pointer("/app/id").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default();
    if target_ids.is_empty() {
        return error(422, "invalid_params", "targets are required.");
    }
    let name_of =
        |world: &World, id: &str| world.apps.values().find(|a| a.id == id || a.name == id).map(|a| a.name.clone());
    let coupled =
        |world: &World, app: &str| world.couplings.iter().any(|c| c.app == app && c.pipeline_id == pipeline_id);
    let Some(source) = name_of(world, &source_id).filter(|a| coupled(world, a)) else {
        return error(422, "invalid_params", "The source app is not in this pipeline.");
    };
    let mut targets = Vec::new();
    for id in &target_ids {
        match name_of(world, id).filter(|a| coupled(world, a)) {
            Some(t) => targets.push(t),
            None => return error(422, "invalid_params", "A target app is not in this pipeline."),
        }
    }
    let Some((release_id, version, slug_id)) =
        world.apps[&source].current_release().map(|r| (r.id.clone(), r.version, r.slug_id.clone()))
    else {
        return error(422, "invalid_params", "The source app has no release to promote.");
    };
    let Some(slug) = slug_id.and_then(|id| world.apps[&source].slugs.iter().find(|s| s.id == id).cloned()) else {
        return error(422, "invalid_params", "The source app's release has nothing to promote.");
    };
    let promotion_id = world.new_id();
    let mut made = Vec::new();
    for t in targets {
        let target_id = world.new_id();
        let v = world.release_slug(&t, slug.clone(), format!("Promote {source} v{version}"), now);
        made.push((target_id, t, Some(v)));
    }
    let p = crate::model::PromotionState {
        id: promotion_id,
        pipeline_id,
        source_app: source,
        source_release_id: release_id,
        created_at: SystemTime::now(),
        targets: made,
    };
    let out = promotion_json(world, &p);
    world.promotions.push(p);
    answer(201, out)
}
