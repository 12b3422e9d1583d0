//! The simulated platform's state and how it moves with time.

pub use crate::faults::{FaultKind, FaultRule, Faults};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// How long platform transitions take.
#[derive(Debug, Clone)]
pub struct Timing {
    /// From a stop request until the dyno is gone from the list.
    pub stop_delay: Duration,
    /// From (re)start until a dyno is `up`.
    pub start_delay: Duration,
    /// The longest a release phase may run before the platform stops it (one hour on the
    /// platform, and it cannot be extended).
    pub release_phase_limit: Duration,
    /// How long a Fir app's log session streams before it ends (the Heroku CLI re-creates Fir
    /// sessions every 15 minutes: lib/run/log-displayer.js, `HEROKU_LOG_STREAM_TIMEOUT`).
    pub fir_log_session: Duration,
    /// From the SIGTERM that stops a dyno until SIGKILL ends what is left of its processes
    /// (30 s on the platform: Dev Center "Dynos and the Dyno Manager", graceful shutdown).
    pub kill_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            stop_delay: Duration::from_millis(300),
            start_delay: Duration::from_millis(300),
            release_phase_limit: Duration::from_secs(3600),
            fir_log_session: Duration::from_secs(15 * 60),
            kill_grace: Duration::from_secs(30),
        }
    }
}

/// One dyno.
#[derive(Debug, Clone)]
pub struct DynoState {
    /// UUID.
    pub id: String,
    /// `web.1`, `release.2343`.
    pub name: String,
    /// Process type.
    pub process_type: String,
    /// Command line.
    pub command: String,
    /// Size.
    pub size: String,
    /// `up`, `starting`, `crashed`, `down`.
    pub state: String,
    /// Boot time.
    pub created_at: SystemTime,
    /// Last state change.
    pub updated_at: SystemTime,
    /// Release version it runs.
    pub release_version: u64,
    /// Set when a stop was accepted: the dyno disappears at this instant.
    pub gone_at: Option<Instant>,
    /// Set while starting: the dyno is `up` at this instant.
    pub up_at: Option<Instant>,
    /// A dyno that ignores stop requests (fault).
    pub ignores_stop: bool,
    /// A dyno that never reaches `up` after a restart (fault).
    pub never_up: bool,
    /// Rendezvous URL for attached one-off dynos.
    pub attach_url: Option<String>,
    /// Environment given at creation (one-off dynos).
    pub env: BTreeMap<String, String>,
    /// The local process running a one-off dyno's command.
    pub process: Option<u32>,
    /// The formation slot it fills (1 for `web.1`); None for one-off and release dynos.
    pub slot: Option<u64>,
}

/// One process type's formation.
#[derive(Debug, Clone)]
pub struct FormationState {
    /// UUID.
    pub id: String,
    /// Process type.
    pub process_type: String,
    /// Quantity.
    pub quantity: u32,
    /// Size.
    pub size: String,
    /// Command.
    pub command: String,
    /// Last change.
    pub updated_at: SystemTime,
}

/// One release.
#[derive(Debug, Clone)]
pub struct ReleaseState {
    /// UUID.
    pub id: String,
    /// v-number.
    pub version: u64,
    /// Description.
    pub description: String,
    /// `succeeded`, `pending`, `failed`.
    pub status: String,
    /// Creation time.
    pub created_at: SystemTime,
    /// Slug id.
    pub slug_id: Option<String>,
    /// The release command's output (a key of [`World::release_outputs`]) when the release
    /// ran a release phase.
    pub output_id: Option<String>,
}

/// One slug.
#[derive(Debug, Clone)]
pub struct SlugState {
    /// UUID.
    pub id: String,
    /// Git commit.
    pub commit: Option<String>,
    /// Commit message.
    pub commit_description: Option<String>,
    /// Procfile.
    pub process_types: BTreeMap<String, String>,
    /// Build time.
    pub created_at: SystemTime,
}

/// One add-on attachment.
#[derive(Debug, Clone)]
pub struct AttachmentState {
    /// UUID.
    pub id: String,
    /// Attachment name (`DATABASE`).
    pub name: String,
    /// Add-on UUID.
    pub addon_id: String,
    /// Add-on name (`postgresql-teal-12345`).
    pub addon_name: String,
    /// The add-on's plan: its UUID and `service:plan` name (`heroku-postgresql:standard-0`).
    pub plan: (String, String),
}

/// An app's place in a pipeline (`GET /apps/{app}/pipeline-couplings`).
#[derive(Debug, Clone)]
pub struct CouplingState {
    /// UUID.
    pub id: String,
    /// The app's name.
    pub app: String,
    /// The pipeline's UUID.
    pub pipeline_id: String,
    /// `development`, `staging`, `production`…
    pub stage: String,
    /// When it was coupled.
    pub created_at: SystemTime,
}

/// One pipeline promotion: the source's current release carried to each target as a new
/// release (`POST /pipeline-promotions`), on Cedar and Fir alike.
#[derive(Debug, Clone)]
pub struct PromotionState {
    /// UUID.
    pub id: String,
    /// The pipeline's UUID.
    pub pipeline_id: String,
    /// The source app's name.
    pub source_app: String,
    /// The source release's UUID.
    pub source_release_id: String,
    /// When it was made.
    pub created_at: SystemTime,
    /// Per target: (target id, app name, the release made there).
    pub targets: Vec<(String, String, Option<u64>)>,
}

/// One app and everything it owns.
#[derive(Debug, Clone)]
pub struct AppState {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Maintenance flag.
    pub maintenance: bool,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last change.
    pub updated_at: SystemTime,
    /// Dynos.
    pub dynos: Vec<DynoState>,
    /// Formation by type.
    pub formation: Vec<FormationState>,
    /// Releases, oldest first.
    pub releases: Vec<ReleaseState>,
    /// Slugs.
    pub slugs: Vec<SlugState>,
    /// Config vars.
    pub config_vars: BTreeMap<String, String>,
    /// Add-on attachments.
    pub attachments: Vec<AttachmentState>,
    /// `cedar` or `fir` (the platform generation; Fir names dynos like pods).
    pub generation: String,
    /// `heroku-24`, or `cnb` for Cloud Native Buildpack apps.
    pub stack: String,
    /// The app's features by name, enabled or not (`preboot`, off unless a test turns it on):
    /// what `heroku features` lists.
    pub features: BTreeMap<String, bool>,
}

/// How a dyno's command finds the app's language runtime (`bundle`, `ruby`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// On PATH from the start: a Cedar slug's, or a process type the CNB launcher starts.
    OnPath,
    /// Only through `launcher`: a one-off command on the `cnb` stack. Without it the runtime
    /// is not on PATH and the app's tools are "not found", as on the platform.
    ThroughLauncher,
}

impl AppState {
    /// A Fir app (pod-style names, SSH attach, OCI images, log sessions without history).
    pub fn is_fir(&self) -> bool {
        self.generation == "fir"
    }

    /// The `bin/` of each launch layer in `layers` (`<buildpack>/<layer>.toml` saying
    /// `launch = true`), in the launcher's order, when the app is on `cnb`; none otherwise.
    pub fn launch_layer_bins(&self, layers: Option<&std::path::Path>) -> Vec<std::path::PathBuf> {
        let Some(layers) = layers.filter(|_| self.stack == "cnb") else { return Vec::new() };
        let mut bins = Vec::new();
        let mut buildpacks: Vec<_> =
            std::fs::read_dir(layers).into_iter().flatten().flatten().map(|e| e.path()).collect();
        buildpacks.sort();
        for bp in buildpacks.iter().filter(|p| p.is_dir()) {
            let mut tomls: Vec<_> = std::fs::read_dir(bp).into_iter().flatten().flatten().map(|e| e.path()).collect();
            tomls.sort();
            for toml in tomls.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
                let launch =
                    std::fs::read_to_string(toml).is_ok_and(|t| t.lines().any(|l| l.replace(' ', "") == "launch=true"));
                let bin = toml.with_extension("").join("bin");
                if launch && bin.is_dir() {
                    bins.push(bin);
                }
            }
        }
        bins
    }

    /// A new release supersedes the pending ones: they expire and never become current.
    pub fn expire_pending(&mut self) {
        for r in self.releases.iter_mut().filter(|r| r.status == "pending") {
            r.status = "expired".into();
        }
    }

    /// How a one-off command of this app finds its runtime.
    pub fn one_off_runtime(&self) -> Runtime {
        if self.stack == "cnb" {
            Runtime::ThroughLauncher
        } else {
            Runtime::OnPath
        }
    }

    /// The name a formation dyno in `slot` gets: `web.1` on Cedar; on Fir a pod name,
    /// `web-<release hash>-<5 characters>`, new for every (re)start.
    pub fn dyno_name(&self, ptype: &str, slot: u64, id: &str) -> String {
        if self.generation != "fir" {
            return format!("{ptype}.{slot}");
        }
        let version = self.current_version();
        let h = (version.wrapping_add(7)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let suffix: String = id.chars().rev().filter(|c| c.is_ascii_alphanumeric()).take(5).collect();
        format!("{ptype}-{:010x}-{suffix}", h >> 24)
    }

    /// The current release (the newest succeeded one).
    pub fn current_release(&self) -> Option<&ReleaseState> {
        self.releases.iter().rev().find(|r| r.status == "succeeded")
    }

    /// The current release's version, 0 when there is none.
    pub fn current_version(&self) -> u64 {
        self.current_release().map(|r| r.version).unwrap_or(0)
    }
}

/// A request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status answered (0 for a reset).
    pub status: u16,
    /// The Range header, if any.
    pub range: Option<String>,
    /// The decoded JSON body, if any.
    pub body: Option<serde_json::Value>,
    /// When it arrived.
    pub at: Instant,
    /// The Accept header.
    pub accept: Option<String>,
    /// The User-Agent header.
    pub user_agent: Option<String>,
}

/// The whole simulated platform: the apps, and beside them each concern's own state — owned
/// by the module that models it (one-off dynos in `oneoff`, release phases in `release_phase`,
/// logs in `logs`, pipelines in `api::pipelines`), so a behaviour and its state have one
/// address.
#[derive(Debug, Clone)]
pub struct World {
    /// Apps by name: their config, formation, dynos and releases.
    pub apps: BTreeMap<String, AppState>,
    /// The account owning every app, and the token the API accepts.
    pub account: Account,
    /// Transition timing.
    pub timing: Timing,
    /// Fault injection.
    pub faults: Faults,
    /// Every request received.
    pub requests: RequestLog,
    /// One-off dynos: waiting for their client, or to start.
    pub one_offs: crate::oneoff::OneOffs,
    /// Release phases: to start, and their output.
    pub release_phases: crate::release_phase::ReleasePhases,
    /// What every dyno runs: the slug, the language runtime, buildpack layers.
    pub slug: Slug,
    /// Pipeline couplings and the promotions made.
    pub pipelines: Pipelines,
    /// Each app's log, and the log sessions created.
    pub logs: crate::logs::Logs,
    next_id: u64,
    next_run: u64,
}

/// The account every app belongs to.
#[derive(Debug, Clone)]
pub struct Account {
    /// Its email.
    pub email: String,
    /// Its id.
    pub id: String,
    /// The token the API accepts.
    pub token: String,
}

/// Every request the simulator received.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    /// In order of arrival.
    pub all: Vec<LoggedRequest>,
    /// How many were seen (for `rate_limit_every`).
    pub count: u64,
}

/// What a dyno runs, as the build left it.
#[derive(Debug, Clone, Default)]
pub struct Slug {
    /// The directory one-off dynos run in (the "slug"); the simulator's own when unset.
    pub dir: Option<std::path::PathBuf>,
    /// The app's language runtime (what the buildpacks installed: `bundle`, `ruby`…): on a
    /// dyno's PATH on Cedar, only through `launcher` for a one-off command on `cnb`.
    pub runtime_dir: Option<std::path::PathBuf>,
    /// A Cloud Native Buildpacks layers directory (`/layers`: one directory per buildpack,
    /// `<buildpack>/<layer>` beside `<buildpack>/<layer>.toml`): on a `cnb` app the launcher puts
    /// each launch layer's `bin/` on the PATH of every process it starts.
    pub layers_dir: Option<std::path::PathBuf>,
}

/// Pipelines: which app is in which stage, and what was promoted.
#[derive(Debug, Clone, Default)]
pub struct Pipelines {
    /// Pipeline couplings.
    pub couplings: Vec<CouplingState>,
    /// Pipeline promotions made.
    pub promotions: Vec<PromotionState>,
}

impl Default for World {
    fn default() -> Self {
        World {
            apps: BTreeMap::new(),
            account: Account {
                email: "oncall@example.com".into(),
                id: "3f1c9a0e-0000-4000-8000-00000000a001".into(),
                token: "sim-token".into(),
            },
            timing: Timing::default(),
            faults: Faults::default(),
            requests: RequestLog::default(),
            one_offs: Default::default(),
            release_phases: Default::default(),
            slug: Slug::default(),
            pipelines: Pipelines::default(),
            logs: Default::default(),
            next_id: 1,
            next_run: 1000,
        }
    }
}

impl World {
    /// A fresh UUID-shaped id, unique in this world.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        let n = self.next_id;
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (h >> 32) as u32,
            (h >> 16) as u16,
            (h & 0xfff),
            (n & 0xfff),
            n
        )
    }

    /// The next one-off dyno number (`run.1001`…).
    pub fn next_run_number(&mut self) -> u64 {
        self.next_run += 1;
        self.next_run
    }

    /// Moves time forward to `now`: stopped dynos vanish (formation dynos come back as new
    /// dynos with the same name), starting dynos come up, formation quantities are honoured.
    pub fn tick(&mut self, now: Instant) {
        let start_delay = self.timing.start_delay;
        let names: Vec<String> = self.apps.keys().cloned().collect();
        for name in names {
            let mut replacements = Vec::new();
            {
                let app = self.apps.get_mut(&name).expect("app exists");
                let formation: BTreeMap<String, u32> =
                    app.formation.iter().map(|f| (f.process_type.clone(), f.quantity)).collect();
                let mut stopped_release_phases = Vec::new();
                app.dynos.retain(|d| {
                    let gone = d.gone_at.is_some_and(|t| t <= now) && !d.ignores_stop;
                    if gone {
                        if let Some(index) = formation_slot(d, &formation) {
                            replacements.push((d.process_type.clone(), index, d.command.clone(), d.size.clone()));
                        }
                        if d.process_type == "release" {
                            stopped_release_phases.push(d.release_version);
                        }
                    }
                    !gone
                });
                // A release phase whose dyno was stopped fails (the platform: "shut down by the
                // dyno manager"), and the app stays on its current release.
                for r in app.releases.iter_mut().filter(|r| r.status == "pending") {
                    if stopped_release_phases.contains(&r.version) {
                        r.status = "failed".into();
                    }
                }
                for d in &mut app.dynos {
                    if d.up_at.is_some_and(|t| t <= now) && !d.never_up {
                        d.up_at = None;
                        d.state = "up".into();
                        d.updated_at = SystemTime::now();
                    }
                }
            }
            for (ptype, index, command, size) in replacements {
                let id = self.new_id();
                let app = self.apps.get_mut(&name).expect("app exists");
                let d = new_dyno(app, id, &ptype, index, &command, &size, now + start_delay);
                app.dynos.push(d);
            }
        }
    }

    /// Applies a formation quantity: extra dynos are stopped, missing ones start.
    pub fn apply_quantity(&mut self, app: &str, ptype: &str, quantity: u32, now: Instant) {
        let stop_delay = self.timing.stop_delay;
        let start_delay = self.timing.start_delay;
        let mut to_create = Vec::new();
        {
            let Some(a) = self.apps.get_mut(app) else { return };
            let Some(f) = a.formation.iter_mut().find(|f| f.process_type == ptype) else { return };
            f.quantity = quantity;
            f.updated_at = SystemTime::now();
            let (command, size) = (f.command.clone(), f.size.clone());
            for d in a.dynos.iter_mut().filter(|d| d.process_type == ptype) {
                let index = d.slot.unwrap_or(0);
                if index > quantity as u64 && d.gone_at.is_none() {
                    d.gone_at = Some(now + stop_delay);
                }
            }
            for index in 1..=quantity as u64 {
                let exists = a.dynos.iter().any(|d| d.process_type == ptype && d.slot == Some(index));
                if !exists {
                    to_create.push((index, command.clone(), size.clone()));
                }
            }
        }
        for (index, command, size) in to_create {
            let id = self.new_id();
            let a = self.apps.get_mut(app).expect("app exists");
            let d = new_dyno(a, id, ptype, index, &command, &size, now + start_delay);
            a.dynos.push(d);
        }
    }
}

fn formation_slot(d: &DynoState, formation: &BTreeMap<String, u32>) -> Option<u64> {
    let qty = *formation.get(&d.process_type)? as u64;
    let index = d.slot?;
    (index >= 1 && index <= qty).then_some(index)
}

fn new_dyno(
    app: &AppState,
    id: String,
    ptype: &str,
    index: u64,
    command: &str,
    size: &str,
    up_at: Instant,
) -> DynoState {
    let now = SystemTime::now();
    let version = app.current_version();
    DynoState {
        name: app.dyno_name(ptype, index, &id),
        id,
        process_type: ptype.to_string(),
        command: command.to_string(),
        size: size.to_string(),
        state: "starting".into(),
        created_at: now,
        updated_at: now,
        release_version: version,
        gone_at: None,
        up_at: Some(up_at),
        ignores_stop: false,
        never_up: false,
        attach_url: None,
        env: BTreeMap::new(),
        process: None,
        slot: Some(index),
    }
}
