//! A simulator of the Heroku Platform API subset the tools use.
//!
//! Stateful (apps, dynos, formation, releases, slugs, config vars, add-on attachments), with
//! time (a stopped dyno disappears after [`Timing::stop_delay`]; restarts pass through
//! `starting`), fault injection ([`Faults`]), a request log, and the platform's known quirk
//! from the stuck-release incident: a stop addressed to a bare process-type name answers 202
//! and stops nothing.
//!
//! In-process use from tests:
//! ```no_run
//! let mut world = heroku_sim::World::default();
//! world.add_app("acme");
//! let sim = heroku_sim::Sim::start(world).unwrap();
//! std::env::set_var("HEROKU_HOST", sim.url());
//! ```

pub mod api;
pub mod clock;
pub mod git;
pub mod http;
pub mod logs;
pub mod model;
pub mod oneoff;
pub mod paging;
pub mod release_phase;
pub mod scenarios;
mod seed;
pub mod tls;

use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use model::{AppState, DynoState, FaultKind, FaultRule, Faults, LoggedRequest, Timing, World};
pub use scenarios::{scenario, SCENARIOS};

/// A running simulator on 127.0.0.1. Stops when dropped.
pub struct Sim {
    world: Arc<Mutex<World>>,
    server: http::Server,
    rendezvous: oneoff::Rendezvous,
}

impl Sim {
    /// Starts on a free port.
    pub fn start(world: World) -> std::io::Result<Sim> {
        Sim::start_on(world, 0)
    }

    /// Starts on `port` (0 = any free port).
    pub fn start_on(world: World, port: u16) -> std::io::Result<Sim> {
        let world = Arc::new(Mutex::new(world));
        let rendezvous = oneoff::Rendezvous::start(world.clone())?;
        world.lock().unwrap_or_else(|e| e.into_inner()).rendezvous_port = Some(rendezvous.port());
        let handler = Arc::new(api::ApiHandler { world: world.clone() });
        let server = http::Server::start(port, handler)?;
        Ok(Sim { world, server, rendezvous })
    }

    /// `http://127.0.0.1:PORT`, the value for `HEROKU_HOST`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// The CA certificate (PEM) the rendezvous endpoint's certificate chains to; clients trust
    /// it through `SSL_CERT_FILE`.
    pub fn ca_pem(&self) -> &str {
        self.rendezvous.ca_pem()
    }

    /// Writes the CA certificate to `path` (for `SSL_CERT_FILE`).
    pub fn write_ca(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.ca_pem())
    }

    /// The token the simulator accepts.
    pub fn token(&self) -> String {
        self.with(|w| w.token.clone())
    }

    /// Reads or changes the world, after moving it to the present.
    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        w.tick(Instant::now());
        f(&mut w)
    }

    /// A copy of every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.with(|w| w.log.clone())
    }

    /// Adds a one-shot fault rule.
    pub fn add_fault(&self, kind: FaultKind, method: Option<&str>, path_contains: Option<&str>, times: u32) {
        self.with(|w| {
            w.faults.rules.push(FaultRule {
                method: method.map(str::to_string),
                path_contains: path_contains.map(str::to_string),
                remaining: times,
                kind,
            })
        });
    }

    /// A build and its release, as `git push heroku` makes them: a slug of `commit` with these
    /// process types, then a release of it. With a `release` type the release phase starts
    /// now and the release stays pending until it ends. Returns the version.
    pub fn push(&self, app: &str, commit: &str, description: &str, process_types: &[(&str, &str)]) -> u64 {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        w.tick(now);
        let slug_id = w.add_slug(app, commit, description, process_types);
        let slug = w.apps[app].slugs.iter().find(|s| s.id == slug_id).cloned().expect("just added");
        let short: String = commit.chars().take(8).collect();
        let version = w.release_slug(app, slug, format!("Deploy {short}"), now);
        for job in std::mem::take(&mut w.release_jobs) {
            release_phase::start(job, self.world.clone());
        }
        version
    }

    /// The bare repository `git push` reaches for `app` (created on first use), its hook
    /// pointed at this simulator. Pair it with [`Sim::git_insteadof`] so the remote URL stays
    /// the platform's, `https://git.heroku.com/APP.git`.
    pub fn git_remote(&self, app: &str) -> std::io::Result<std::path::PathBuf> {
        std::fs::create_dir_all(self.git_root())?;
        git::create_remote(&self.git_root(), app, &self.url(), &self.token())
    }

    /// Where the app repositories live.
    pub fn git_root(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("heroku-sim-git-{}-{}", std::process::id(), self.port()))
    }

    /// The git configuration that sends `https://git.heroku.com/APP.git` here:
    /// (`url.<root>/.insteadOf`, `https://git.heroku.com/`).
    pub fn git_insteadof(&self) -> (String, String) {
        (format!("url.{}/.insteadOf", self.git_root().display()), "https://git.heroku.com/".to_string())
    }

    /// Names of the dynos an app has now.
    pub fn dyno_names(&self, app: &str) -> Vec<String> {
        self.with(|w| w.apps.get(app).map(|a| a.dynos.iter().map(|d| d.name.clone()).collect()).unwrap_or_default())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // The app repositories `git_remote` made live as long as the simulator.
        let _ = std::fs::remove_dir_all(self.git_root());
    }
}
