//! The Platform API: authentication, injected faults and the request log around one route
//! table, which hands each route to the module of its platform concern:
//!
//! | concern | module |
//! |---|---|
//! | account, apps, maintenance, config vars, add-on attachments | `apps` |
//! | dynos: one-offs, stop, restart (by dyno, by type under 3.sdk) | `dynos` |
//! | formation: quantities per type | `formation` |
//! | releases, rollbacks, slugs and OCI images | `releases` |
//! | log sessions | `log_sessions` (the stream itself: `crate::logs`) |
//! | pipelines: couplings, promotions | `pipelines` |
//! | how each resource is written, and paging | `wire` |

mod apps;
mod dynos;
mod formation;
mod log_sessions;
mod pipelines;
mod releases;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use crate::http::{Handler, Reply, Request};
use crate::model::{FaultKind, LoggedRequest, World};

/// The HTTP handler over a shared world.
pub struct ApiHandler {
    /// The state every request reads and changes.
    pub world: Arc<Mutex<World>>,
}

pub(super) struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

pub(super) fn answer(status: u16, body: Value) -> Answer {
    Answer { status, headers: Vec::new(), body }
}

pub(super) fn error(status: u16, id: &str, message: &str) -> Answer {
    answer(status, json!({ "id": id, "message": message }))
}

pub(super) fn not_found(what: &str) -> Answer {
    error(404, "not_found", &format!("Couldn't find that {what}."))
}

impl Handler for ApiHandler {
    fn handle(&self, req: &Request) -> Reply {
        let arrived = Instant::now();
        let (reply, latency) = {
            let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
            world.requests.count += 1;
            world.tick(arrived);
            let latency = world.faults.latency;
            let body: Option<Value> = serde_json::from_slice(&req.body).ok();
            let outcome = match self.answer_for(&mut world, req, body.as_ref(), arrived) {
                Ok(outcome) => outcome,
                Err(stream) => return stream,
            };
            for job in std::mem::take(&mut world.one_offs.detached) {
                crate::oneoff::run_detached(job, self.world.clone());
            }
            for job in std::mem::take(&mut world.release_phases.to_start) {
                crate::release_phase::start(job, self.world.clone());
            }
            world.requests.all.push(LoggedRequest {
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
                    headers.push(("Request-Id".into(), format!("sim-{}", world.requests.count)));
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
    /// The answer to a request: an injected fault, a stream (`Err`: the reply as it is), an
    /// authentication refusal, or the route's. `None`: the connection is reset.
    fn answer_for(
        &self,
        world: &mut World,
        req: &Request,
        body: Option<&Value>,
        arrived: Instant,
    ) -> Result<Option<Answer>, Reply> {
        Ok(match injected_fault(world, req) {
            Some(FaultKind::Reset) => None,
            Some(FaultKind::RateLimited(secs)) => {
                let mut a = error(
                    429,
                    "rate_limit",
                    "Your account reached the API rate limit. Please wait a few minutes before making new requests.",
                );
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
                match world.logs.sessions.get(&id).cloned() {
                    Some(session) => {
                        let world = self.world.clone();
                        return Err(Reply::Stream {
                            status: 200,
                            headers: vec![("Content-Type".into(), "text/event-stream".into())],
                            body: Box::new(move |out| crate::logs::stream(world, session, out)),
                        });
                    }
                    None => Some(not_found("log session")),
                }
            }
            // So is a release's output stream (text/plain, resumable with Range).
            None if req.method == "GET" && req.path.starts_with("/release-output/") => {
                let id = req.path.trim_start_matches("/release-output/").to_string();
                match world.release_phases.outputs.get(&id) {
                    Some(o) if o.started => {
                        let world = self.world.clone();
                        let from = crate::release_phase::range_start(req.header("range"));
                        return Err(Reply::Stream {
                            status: if from > 0 { 206 } else { 200 },
                            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
                            body: Box::new(move |out| crate::release_phase::stream_output(world, id, from, out)),
                        });
                    }
                    _ => Some(not_found("release output")),
                }
            }
            None if !authorized(world, req) => Some(error(401, "unauthorized", "Invalid credentials provided.")),
            // A push's build, asked for by the app's git remote (crate::git): not a Platform
            // API route; it streams what `git push` shows and ends with the hook's status.
            None if req.method == "POST" && req.path.starts_with("/_sim/apps/") && req.path.ends_with("/builds") => {
                match self.push_build(world, req, body) {
                    Ok(reply) => return Err(reply),
                    Err(answer) => Some(answer),
                }
            }
            None => Some(route(world, req, body, arrived)),
        })
    }

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
        if n > 0 && world.requests.count % u64::from(n) == 0 {
            return Some(FaultKind::RateLimited(faults.retry_after_secs));
        }
    }
    None
}

fn authorized(world: &World, req: &Request) -> bool {
    let expected = format!("Bearer {}", world.account.token);
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

/// One request as the route handlers read it.
pub(super) struct Call<'a> {
    req: &'a Request,
    body: Option<&'a Value>,
    now: Instant,
    range: Option<&'a str>,
    /// The Host header: URLs in answers point back at this server.
    host: String,
    /// Asked for under the 3.sdk variant.
    sdk: bool,
    /// What `Accept-Inclusion` asks to include beyond the schema (`addon:plan`, `config_vars`).
    inclusion: Vec<String>,
}

/// The route table: each route to the function of its concern.
fn route(world: &mut World, req: &Request, body: Option<&Value>, now: Instant) -> Answer {
    let segs: Vec<String> = req.path.split('/').filter(|s| !s.is_empty()).map(decode_segment).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let cx = Call {
        req,
        body,
        now,
        range: req.header("range"),
        host: req.header("host").unwrap_or("127.0.0.1").to_string(),
        sdk: needs_sdk_variant(req).is_none(),
        inclusion: req
            .header("accept-inclusion")
            .map(|h| h.split(',').map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect())
            .unwrap_or_default(),
    };
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["account"]) => return apps::account(world),
        ("POST", ["pipeline-promotions"]) => return pipelines::create(world, &cx),
        ("GET", ["pipeline-promotions", id]) => return pipelines::get_promotion(world, id),
        ("GET", ["pipeline-promotions", id, "promotion-targets"]) => return pipelines::promotion_targets(world, id),
        ("POST", ["actions", "addon-attachments", "resolve"]) => return apps::resolve_attachment(world, &cx),
        _ => {}
    }
    let ["apps", app_key, rest @ ..] = segs.as_slice() else {
        return error(404, "not_found", "Not found.");
    };
    let Some(app) = find_app(world, app_key) else {
        return error(404, "not_found", "Couldn't find that app.");
    };
    let app = app.as_str();
    match (req.method.as_str(), rest) {
        ("GET", []) => apps::get_app(world, app, &cx),
        ("PATCH", []) => apps::update_app(world, app, &cx),
        ("GET", ["config-vars"]) => apps::config_vars(world, app),
        ("GET", ["features"]) => apps::features(world, app, &cx),
        ("GET", ["features", name]) => apps::feature(world, app, name),
        // A user's config change makes a release, which runs the release phase.
        ("PATCH", ["config-vars"]) => apps::update_config_vars(world, app, body, now),
        ("GET", ["addon-attachments"]) => apps::attachments(world, app, &cx),
        ("GET", ["dynos"]) => dynos::list_dynos(world, app, &cx),
        ("POST", ["dynos"]) => dynos::create_dyno(world, app, body, now),
        ("DELETE", ["dynos"]) => dynos::restart_all(world, app, &cx),
        ("GET", ["dynos", dyno]) => dynos::get_dyno(world, app, dyno),
        ("DELETE", ["dynos", target]) => dynos::restart_one(world, app, target, &cx),
        ("POST", ["dynos", target, "actions", "stop"]) => dynos::stop_dyno(world, app, target, now),
        ("POST", ["formations", ptype, "actions", "stop"]) => dynos::stop_type(world, app, ptype, &cx),
        ("DELETE", ["formations", ptype]) => dynos::restart_type(world, app, ptype, &cx),
        ("POST", ["log-sessions"]) => log_sessions::create_log_session(world, app, body, &cx.host),
        ("GET", ["formation"]) => formation::list_formation(world, app, &cx),
        ("PATCH", ["formation"]) => formation::update_batch(world, app, &cx),
        ("GET", ["formation", ptype]) => formation::get_type(world, app, ptype),
        ("PATCH", ["formation", ptype]) => formation::update_type(world, app, ptype, &cx),
        ("GET", ["releases"]) => releases::list_releases(world, app, &cx),
        ("POST", ["releases"]) => releases::create_release(world, app, body, now, &cx.host),
        ("GET", ["releases", key]) => releases::get_release(world, app, key, &cx),
        ("GET", ["releases", key, "config-vars"]) => releases::release_config_vars(world, app, key),
        ("GET", ["slugs", id]) => releases::get_slug(world, app, id),
        ("GET", ["oci-images", id]) => releases::get_oci_image(world, app, id),
        ("GET", ["pipeline-couplings"]) => pipelines::coupling(world, app),
        _ => error(404, "not_found", "Not found."),
    }
}

fn find_app(world: &World, key: &str) -> Option<String> {
    if world.apps.contains_key(key) {
        return Some(key.to_string());
    }
    world.apps.values().find(|a| a.id == key).map(|a| a.name.clone())
}

/// The `Accept` variant the Heroku CLI sends for the formation action routes.
const SDK_VARIANT: &str = "application/vnd.heroku+json; version=3.sdk";

pub(super) fn needs_sdk_variant(req: &Request) -> Option<Answer> {
    if req.header("accept").is_some_and(|a| a.split(',').any(|v| v.trim() == SDK_VARIANT)) {
        return None;
    }
    Some(error(404, "not_found", "Not found: this route is served under the 3.sdk variant only."))
}
