//! What a run and `follow` both set up before they act, in two steps so that a mistake in the
//! arguments is found before the first request: [`Start`] (output, signals, the app, its
//! `--confirm` checked) and [`Session`] (the API client and the app as it is now).

use std::collections::BTreeMap;

use cli_kit::{api_client, interrupt, AppArgs, ConfirmArgs, DatabaseArgs, Output, OutputArgs, ResolvedDatabase};
use heroku_api::{Client, Dyno, Formation, Platform};

use crate::TOOL;

/// The run has an output, its signals handled, and an app whose `--confirm` matches.
pub struct Start {
    /// Human and `--json` output.
    pub out: Output,
    /// The app.
    pub app: String,
}

impl Start {
    /// Output, Ctrl-C and SIGHUP handling, the app, and `--confirm` against it.
    pub fn new(output: &OutputArgs, app: &AppArgs, confirm: &ConfirmArgs) -> anyhow::Result<Start> {
        let out = Output::new(output);
        interrupt::install();
        interrupt::install_hangup();
        let app = app.resolve()?;
        confirm.check(&app)?;
        Ok(Start { out, app })
    }

    /// The client, and the independent reads a run and `follow` start with, at once: the
    /// formation (to check `--restart`), the dynos (boot times before the migration), the
    /// config vars (the database; not read when `--database-url` names it) and the app's
    /// generation.
    pub fn read_app(self, db: &DatabaseArgs) -> anyhow::Result<Session> {
        let Start { out, app } = self;
        let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
        let (formation, dynos, vars, info, latest) = std::thread::scope(|s| {
            let f = s.spawn(|| client.formation(&app));
            let v = s.spawn(|| if db.database_url.is_some() { Ok(BTreeMap::new()) } else { client.config_vars(&app) });
            let i = s.spawn(|| client.app_info(&app));
            let r = s.spawn(|| client.latest_release(&app));
            let d = client.dynos(&app);
            (cli_kit::join(f), d, cli_kit::join(v), cli_kit::join(i), cli_kit::join(r))
        });
        let (formation, dynos, vars, platform) = (formation?, dynos?, vars?, info?.platform());
        out.debug(format!("{app} runs on {platform}"));
        let db = cli_kit::database::from_flag_or_app(db, &app, &vars)?;
        Ok(Session { out, app, client, formation, dynos, vars, platform, db, latest_release: latest? })
    }
}

/// The app as it was when the run began, and how to reach it.
pub struct Session {
    /// Human and `--json` output.
    pub out: Output,
    /// The app.
    pub app: String,
    /// The Platform API.
    pub client: Client,
    /// Its process types and quantities.
    pub formation: Vec<Formation>,
    /// Its dynos, with their boot times.
    pub dynos: Vec<Dyno>,
    /// Its config vars (empty when `--database-url` names the database).
    pub vars: BTreeMap<String, String>,
    /// Its generation and stack.
    pub platform: Platform,
    /// The database the run reads, when one is known.
    pub db: Option<ResolvedDatabase>,
    /// The app's newest release (pending while its release phase runs).
    pub latest_release: Option<heroku_api::Release>,
}

impl Session {
    /// A release phase running now: the newest release still `pending`, or a `release` dyno
    /// listed. A migration beside it would be a second one at once, and a restart would boot
    /// the release that is about to be replaced. `(version, dyno)` as far as known.
    pub fn release_phase_running(&self) -> Option<(Option<u64>, Option<String>)> {
        let pending = self.latest_release.as_ref().filter(|r| r.status == "pending").map(|r| r.version);
        let dyno = self.dynos.iter().find(|d| d.process_type == "release").map(|d| d.name.clone());
        (pending.is_some() || dyno.is_some()).then_some((pending, dyno))
    }
}
