//! The release phase as the platform runs it (Dev Center "Release Phase"; the schema's release
//! `status` and `output_stream_url`; the pinned CLI's `releases:output`, `releases:retry` and
//! `lib/releases/output.js`):
//!
//! - a new release whose slug's process types include `release` is `pending` while its release
//!   command runs on a one-off dyno `release.N` with the app's config vars;
//! - exit 0: the release becomes `succeeded` and current, and the formation's dynos restart onto
//!   it; any other exit, a stop of the dyno, or the time limit: `failed`, the previous release
//!   stays current and no dyno restarts;
//! - the command's output is served at `output_stream_url` as `text/plain` while it runs and in
//!   full afterwards, resumable with `Range: bytes=N-`; 404 until the command has started (the
//!   CLI says "Release command not started yet" on a 404);
//! - after the first release phase the formation lists a `release` type (quantity 0), which
//!   `releases:retry` requires;
//! - a newer release supersedes a pending one: the pending one becomes `expired` (the CLI's
//!   `releases` says "release expired") and never becomes current, even if its command then
//!   succeeds; its release command is not stopped (the stricter reading: its statements may
//!   still hold locks);
//! - a release made by an add-on's change to its config vars skips the release phase and
//!   succeeds at once (Dev Center "Release Phase"); a user's config change runs it.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::model::{FormationState, ReleaseState, SlugState, World};
use crate::oneoff::{exit_code, kill_group, read_lines, spawn, Job};

/// Release phases between their release and their end.
#[derive(Debug, Clone, Default)]
pub struct ReleasePhases {
    /// Release phases to start once the request is answered.
    pub to_start: Vec<ReleaseJob>,
    /// Release commands' output, by output id.
    pub outputs: std::collections::HashMap<String, ReleaseOutput>,
}

/// A release phase waiting to start.
#[derive(Debug, Clone)]
pub struct ReleaseJob {
    /// The release command as a one-off job on `release.N`.
    pub job: Job,
    /// The pending release's version.
    pub version: u64,
    /// Where its output goes.
    pub output_id: String,
}

/// One release command's output.
#[derive(Debug, Clone, Default)]
pub struct ReleaseOutput {
    /// Has the command started (before that the stream answers 404).
    pub started: bool,
    /// Everything written so far (stdout and stderr, line by line).
    pub text: String,
    /// The command has ended: the stream ends after the text.
    pub done: bool,
}

impl World {
    /// Adds a slug built from `commit` with these process types (a build); returns its id.
    pub fn add_slug(&mut self, app: &str, commit: &str, description: &str, process_types: &[(&str, &str)]) -> String {
        let id = self.new_id();
        let a = self.apps.get_mut(app).expect("seed: unknown app");
        a.slugs.push(SlugState {
            id: id.clone(),
            commit: Some(commit.to_string()),
            commit_description: Some(description.to_string()),
            process_types: process_types.iter().map(|(t, c)| (t.to_string(), c.to_string())).collect(),
            created_at: SystemTime::now(),
        });
        id
    }

    /// Creates a release of `slug` on `app` as the platform does: with a `release` process type
    /// it is pending and its release phase is queued (started by the server after the request,
    /// or by [`crate::Sim::push`]); without one it succeeds at once and the formation restarts
    /// onto it. Returns the version.
    pub fn release_slug(&mut self, app_name: &str, slug: SlugState, description: String, now: Instant) -> u64 {
        let id = self.new_id();
        let release_command = slug.process_types.get("release").cloned();
        let output_id = release_command.as_ref().map(|_| self.new_id());
        let dyno_id = self.new_id();
        let formation_id = self.new_id();
        let number = self.next_run_number();
        let (slug_dir, runtime_dir, layers) =
            (self.slug.dir.clone(), self.slug.runtime_dir.clone(), self.slug.layers_dir.clone());
        let app = self.apps.get_mut(app_name).expect("release of a known app");
        let launch_layers = app.launch_layer_bins(layers.as_deref());
        if !app.slugs.iter().any(|s| s.id == slug.id) {
            app.slugs.push(slug.clone());
        }
        let version = app.releases.last().map(|r| r.version).unwrap_or(0) + 1;
        app.expire_pending();
        app.releases.push(ReleaseState {
            id,
            version,
            description,
            status: if release_command.is_some() { "pending" } else { "succeeded" }.into(),
            created_at: SystemTime::now(),
            slug_id: Some(slug.id.clone()),
            output_id: output_id.clone(),
        });
        let (Some(command), Some(output_id)) = (release_command, output_id) else {
            self.restart_formation(app_name, now);
            return version;
        };
        if !app.formation.iter().any(|f| f.process_type == "release") {
            app.formation.push(FormationState {
                id: formation_id,
                process_type: "release".into(),
                quantity: 0,
                size: "standard-1X".into(),
                command: command.clone(),
                updated_at: SystemTime::now(),
            });
        }
        let name = if app.is_fir() { app.dyno_name("release", number, &dyno_id) } else { format!("release.{number}") };
        let t = SystemTime::now();
        app.dynos.push(crate::model::DynoState {
            id: dyno_id.clone(),
            name: name.clone(),
            process_type: "release".into(),
            command: command.clone(),
            size: "standard-1X".into(),
            state: "starting".into(),
            created_at: t,
            updated_at: t,
            // The release dyno runs the pending release (its slug and config).
            release_version: version,
            gone_at: None,
            up_at: None,
            ignores_stop: false,
            never_up: false,
            attach_url: None,
            env: BTreeMap::new(),
            process: None,
            slot: None,
        });
        let env = app.config_vars.clone();
        self.release_phases.outputs.insert(output_id.clone(), ReleaseOutput::default());
        self.release_phases.to_start.push(ReleaseJob {
            job: Job {
                app: app_name.to_string(),
                dyno_id,
                dyno_name: name,
                command,
                env,
                dir: slug_dir,
                // A process type: on `cnb` the launcher starts it, so the runtime is there.
                runtime: (runtime_dir, crate::model::Runtime::OnPath),
                launch_layers,
            },
            version,
            output_id,
        });
        version
    }

    /// A release made by an add-on changing its config var `key` (a database failover, a
    /// credential rotation): the current slug again, no release phase, succeeded at once, and
    /// the formation restarts onto it. Returns the version.
    pub fn addon_config_change(&mut self, app_name: &str, addon: &str, key: &str, value: &str, now: Instant) -> u64 {
        let id = self.new_id();
        let app = self.apps.get_mut(app_name).expect("a known app");
        app.config_vars.insert(key.to_string(), value.to_string());
        let slug_id = app.current_release().and_then(|r| r.slug_id.clone());
        let version = app.releases.last().map(|r| r.version).unwrap_or(0) + 1;
        app.releases.push(ReleaseState {
            id,
            version,
            description: format!("Update {key} by {addon}"),
            status: "succeeded".into(),
            created_at: SystemTime::now(),
            slug_id,
            output_id: None,
        });
        self.restart_formation(app_name, now);
        version
    }

    /// A user's config change (`PATCH /apps/{app}/config-vars`, `heroku config:set`): a new
    /// release of the current slug, with its release phase. Returns the version.
    pub fn user_config_change(&mut self, app_name: &str, vars: &[(String, Option<String>)], now: Instant) -> u64 {
        let app = self.apps.get_mut(app_name).expect("a known app");
        for (k, v) in vars {
            match v {
                Some(v) => app.config_vars.insert(k.clone(), v.clone()),
                None => app.config_vars.remove(k),
            };
        }
        let keys: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        let description = format!("Set {} config vars", keys.join(", "));
        let slug = app
            .current_release()
            .and_then(|r| r.slug_id.clone())
            .and_then(|id| app.slugs.iter().find(|s| s.id == id).cloned());
        match slug {
            Some(slug) => self.release_slug(app_name, slug, description, now),
            None => app.releases.last().map(|r| r.version).unwrap_or(0),
        }
    }

    /// Restarts every formation dyno (not one-off or release dynos) onto the current release.
    pub fn restart_formation(&mut self, app_name: &str, now: Instant) {
        self.restart_dynos(app_name, now, |d| {
            d.attach_url.is_none() && !matches!(d.process_type.as_str(), "run" | "release")
        });
    }

    /// Restarts the dynos `which` selects: each passes through `starting` onto the current release.
    pub fn restart_dynos(&mut self, app_name: &str, now: Instant, which: impl Fn(&crate::model::DynoState) -> bool) {
        let start_delay = self.timing.start_delay;
        let Some(app) = self.apps.get_mut(app_name) else { return };
        let version = app.current_version();
        // On Fir a restart is a new pod: formation dynos come back under a new name.
        let renames: Vec<(usize, String)> = app
            .dynos
            .iter()
            .enumerate()
            .filter(|(_, d)| app.generation == "fir" && which(d))
            .filter_map(|(i, d)| {
                let nonce = format!(
                    "{}{:x}",
                    d.id,
                    SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.subsec_nanos()
                );
                Some((i, app.dyno_name(&d.process_type, d.slot?, &nonce)))
            })
            .collect();
        for (i, name) in renames {
            app.dynos[i].name = name;
        }
        for d in app.dynos.iter_mut().filter(|d| which(d)) {
            let t = SystemTime::now();
            d.created_at = t;
            d.updated_at = t;
            d.state = "starting".into();
            d.up_at = Some(now + start_delay);
            d.release_version = version;
        }
    }
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a release phase in the background: the command's lines go to the release output and
/// the app's log (`app[release.N]`), the platform's to the log (`heroku[release.N]`); at the end
/// the release succeeds or fails and the dyno goes away.
pub fn start(rj: ReleaseJob, world: Arc<Mutex<World>>) {
    std::thread::spawn(move || {
        let job = &rj.job;
        let log = |source: &str, text: &str| lock(&world).log_line(&job.app, source, &job.dyno_name, text);
        log("heroku", &format!("Starting process with command `{}`", job.command));
        let limit = lock(&world).timing.release_phase_limit;
        let mut child = match spawn(job, Stdio::null()) {
            Ok(c) => c,
            Err(_) => {
                finish(&world, &rj, 127);
                return;
            }
        };
        {
            let mut w = lock(&world);
            if let Some(d) = w.apps.get_mut(&job.app).and_then(|a| a.dynos.iter_mut().find(|d| d.id == job.dyno_id)) {
                d.process = Some(child.id());
                d.state = "up".into();
                d.updated_at = SystemTime::now();
            }
            if let Some(o) = w.release_phases.outputs.get_mut(&rj.output_id) {
                o.started = true;
            }
        }
        log("heroku", "State changed from starting to up");
        let readers = read_lines(&mut child, {
            let (world, rj) = (world.clone(), rj.clone());
            move |line: &str| {
                let mut w = lock(&world);
                w.log_line(&rj.job.app, "app", &rj.job.dyno_name, line);
                if let Some(o) = w.release_phases.outputs.get_mut(&rj.output_id) {
                    o.text.push_str(line);
                    o.text.push('\n');
                }
            }
        });
        let started = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if !timed_out && started.elapsed() >= limit {
                // The platform stops a release phase at its time limit.
                timed_out = true;
                log("heroku", "Stopping all processes with SIGTERM");
                kill_group(child.id(), lock(&world).timing.kill_grace);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in readers {
            let _ = r.join();
        }
        let code = match status {
            Some(s) => exit_code(Ok(s)),
            None => 1,
        };
        if code == 143 && !timed_out {
            log("heroku", "Stopping all processes with SIGTERM");
        }
        finish(&world, &rj, code);
    });
}

fn finish(world: &Arc<Mutex<World>>, rj: &ReleaseJob, code: i32) {
    let mut w = lock(world);
    let job = &rj.job;
    w.log_line(&job.app, "heroku", &job.dyno_name, &format!("Process exited with status {code}"));
    w.log_line(&job.app, "heroku", &job.dyno_name, "State changed from up to complete");
    if let Some(o) = w.release_phases.outputs.get_mut(&rj.output_id) {
        o.started = true;
        o.done = true;
    }
    let Some(app) = w.apps.get_mut(&job.app) else { return };
    app.dynos.retain(|d| d.id != job.dyno_id);
    // A superseded release stays expired whatever its command did.
    let Some(r) = app.releases.iter_mut().find(|r| r.version == rj.version && r.status == "pending") else { return };
    r.status = if code == 0 { "succeeded" } else { "failed" }.into();
    if code == 0 {
        let now = Instant::now();
        w.tick(now);
        w.restart_formation(&job.app, now);
    }
}

/// Serves a release output from byte `from` as text/plain: what is there, then what comes,
/// until the command ends or the client goes away. The HTTP head has been written.
pub fn stream_output(world: Arc<Mutex<World>>, output_id: String, from: usize, out: &mut dyn Write) {
    let mut sent = from;
    loop {
        let (chunk, done) = {
            let w = lock(&world);
            let Some(o) = w.release_phases.outputs.get(&output_id) else { return };
            let start = sent.min(o.text.len());
            (o.text.as_bytes()[start..].to_vec(), o.done)
        };
        if !chunk.is_empty() {
            if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                return;
            }
            sent += chunk.len();
        } else if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The offset a `Range: bytes=N-` header asks for (other forms: from the start).
pub fn range_start(range: Option<&str>) -> usize {
    range
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
