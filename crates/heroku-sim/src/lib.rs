//! A simulator of the Heroku Platform API subset the tools use.
//!
//! Stateful (apps, dynos, formation, releases, slugs, config vars, add-on attachments), with
//! time (a stopped dyno disappears after [`Timing::stop_delay`]; restarts pass through
//! `starting`), fault injection ([`Faults`]), a request log, and the platform's known quirk
//! from the stuck-release incident: a stop addressed to a bare process-type name answers 202
//! and stops nothing.
//!
//! Each behaviour has one address. [`World`] holds the apps and, beside them, each concern's
//! own state, defined where the concern is modelled (`oneoff::OneOffs`,
//! `release_phase::ReleasePhases`, `logs::Logs`, `model::Pipelines`); the HTTP routes are a
//! table in `api` handing each route to its concern's module. Where each platform behaviour
//! lives, and the test that holds it there (paths from the workspace root; the
//! `docs_table` test checks every test named here exists):
//!
//! | platform behaviour | modelled in | test |
//! |---|---|---|
//! | a stop sent to a bare process-type name answers 202 and stops nothing; a stop by id removes the dyno | `api::dynos` | `crates/heroku-api/tests/against_sim.rs::stop_by_id_removes_the_dyno_but_a_stop_to_a_type_name_stops_nothing` |
//! | `ps:restart`/`ps:stop` of a type go through `/formations/{type}` (3.sdk) | `api::formation` | `crates/heroku-sim/tests/schema_fidelity.rs::a_process_type_is_restarted_through_the_formation_route_only` |
//! | a restart gives a new boot time and passes through `starting` | `model::World::tick` | `crates/heroku-api/tests/against_sim.rs::restarts_give_new_boot_times_and_pass_through_starting` |
//! | lists are paged with `Range` / `Next-Range` (1000 per page) | `paging`, `api::wire` | `crates/heroku-api/tests/against_sim.rs::lists_all_250_dynos_through_range_pagination` |
//! | `heroku pg:*` resolve `DATABASE_URL` through `POST /actions/addon-attachments/resolve`, with the add-on's plan and config vars only when `Accept-Inclusion` asks | `api::apps`, `api::wire` | `tests/real_heroku_cli.rs::pg_blocking_and_locks_resolve_the_database_as_on_the_platform` |
//! | an app's features (`preboot`, off unless turned on), read with `heroku features:info` | `api::apps` | `tests/real_heroku_cli.rs::features_info_reads_preboot_as_the_cli_does` |
//! | 429 with `Retry-After` | `api` (faults) | `crates/heroku-api/tests/against_sim.rs::waits_for_retry_after_on_429_then_succeeds` |
//! | every answer is in the published schema (names, types, `date-time`) | `api::wire`, `clock` | `crates/heroku-sim/tests/schema_fidelity.rs::every_endpoint_answers_in_the_published_schema` |
//! | `heroku run` attaches through the rendezvous (TLS, the secret, then the dyno's output) | `oneoff` | `tests/real_heroku_cli.rs::heroku_run_attaches_through_the_rendezvous` |
//! | a detached one-off's output and exit status reach the app's log | `oneoff`, `logs` | `tests/real_heroku_cli.rs::run_detached_output_and_exit_status_reach_heroku_logs` |
//! | on `cnb`, a one-off needs `launcher` first; the launcher puts launch layers' `bin/` on PATH | `oneoff`, `model::AppState::launch_layer_bins` | `crates/heroku-sim/tests/fir.rs::a_cnb_one_off_without_launcher_fails_and_with_it_runs` |
//! | a release with a release command is `pending` until it succeeds, then the formation restarts onto it | `release_phase` | `crates/heroku-sim/tests/release_phase.rs::a_release_with_a_release_command_is_pending_until_it_succeeds_then_the_formation_restarts_onto_it` |
//! | a failed release command leaves the previous release current and restarts nothing | `release_phase` | `crates/heroku-sim/tests/release_phase.rs::a_failed_release_command_leaves_the_previous_release_current_and_restarts_nothing` |
//! | the release phase's time limit; a stopped release dyno fails its release | `release_phase`, `model::World::tick` | `crates/heroku-sim/tests/release_phase.rs::the_release_phase_is_stopped_at_its_time_limit_and_a_stopped_release_dyno_fails_the_release` |
//! | a newer release supersedes a pending one, which expires | `release_phase` | `crates/heroku-sim/tests/release_phase.rs::a_newer_release_supersedes_a_pending_one_which_expires` |
//! | an add-on's config change skips the release phase; a user's runs it | `api::apps`, `World::addon_config_change` (in `release_phase`) | `crates/heroku-sim/tests/release_phase.rs::an_addon_config_change_skips_the_release_phase_and_a_users_runs_it` |
//! | `git push` streams the release phase and returns only when it has ended | `git` | `crates/heroku-sim/tests/git_push.rs::a_push_streams_the_release_phase_and_returns_only_when_it_has_ended` |
//! | a failed release phase still exits the push 0; only a failed build rejects it | `git` | `crates/heroku-sim/tests/git_push.rs::a_failed_release_phase_still_exits_0_as_on_the_platform` |
//! | the Procfile is read as the platform reads it | `git` | `crates/heroku-sim/tests/git_push.rs::the_procfile_is_read_as_the_platform_reads_it` |
//! | a Fir release runs an OCI image carrying the commit | `api::releases`, `release_phase` | `crates/heroku-sim/tests/fir.rs::a_fir_release_runs_an_oci_image_that_carries_the_commit` |
//! | a Fir log session has no history and ends after its time | `logs`, `api::log_sessions` | `crates/heroku-sim/tests/fir.rs::a_fir_log_session_has_no_history_and_ends_after_its_time` |
//! | `releases:rollback` runs the release phase again and the CLI never reads its outcome | `api::releases` | `tests/real_heroku_cli.rs::rollback_runs_the_release_phase_again_and_never_reads_its_outcome` |
//! | `heroku ps:stop release` (the incident) prints success and stops nothing | `api::dynos` | `tests/real_heroku_cli.rs::incident_ps_stop_release_prints_success_and_stops_nothing` |
//!
//! docs/platform.md says where each fact came from (the pinned CLI, the schema, Dev Center).
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
pub mod faults;
pub mod git;
pub mod http;
pub mod logs;
pub mod model;
pub mod oneoff;
pub mod paging;
pub mod release_phase;
pub mod scenarios;
mod seed;
pub mod session;
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
        world.lock().unwrap_or_else(|e| e.into_inner()).one_offs.rendezvous_port = Some(rendezvous.port());
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
        self.with(|w| w.account.token.clone())
    }

    /// Reads or changes the world, after moving it to the present.
    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        w.tick(Instant::now());
        f(&mut w)
    }

    /// A copy of every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.with(|w| w.requests.all.clone())
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
        for job in std::mem::take(&mut w.release_phases.to_start) {
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
