//! Following a Heroku release phase while it runs — shared by `migrate-restart release` and
//! `maintenance-window --promote-from`, so the two say and do the same:
//!
//! - the release command's output from `output_stream_url`, reopened where it left off;
//! - the dyno that runs it (`release.N`, the one whose release is the pending version);
//! - the database: which sessions are the release's (connected after its dyno started and run
//!   DDL, or carry the app's application_name), whom they wait for, once per change;
//! - the lock-wait budget (pg-locks' [`pg_locks::enforce`]): a DDL statement of the release that
//!   waited longer is cancelled, verified, so the queries queued behind it run at once;
//! - the deadline: the release dyno is stopped by id and its statements cancelled, verified;
//! - at the end, for a succeeded release, proof that every formation dyno runs it.

mod follow;
mod render;
pub mod report;
/// How a wait and a cut read (shared with migrate-restart and migrate-guard).
pub use migration_policy::text;
mod verify;

pub use follow::{follow, Context, Options};
pub use report::{
    DeadlineAction, DynoBrief, FormationCheck, FormationDyno, InsideGuard, PhaseResult, ReleaseBrief,
    ReleasePhaseReport, Watched,
};
pub use verify::verify_formation;

use cli_kit::{fail, usage, Exit};
use heroku_api::{Client, Release};

/// The release to follow: `VERSION` (`v43`, `43`, or an id) or the newest; with it, the
/// version the app runs now (what it stays on if the release phase fails).
pub fn find_release(client: &Client, app: &str, version: Option<&str>) -> anyhow::Result<(Release, Option<u64>)> {
    let (release, all) = std::thread::scope(|s| {
        let all = s.spawn(|| client.releases(app));
        let release = match version {
            Some(v) => {
                let key = v.trim().trim_start_matches(['v', 'V']);
                if key.is_empty() {
                    return (Err(usage(format!("release `{v}`: give a version such as v43"))), cli_kit::join(all));
                }
                client.release_info(app, key).map_err(|e| {
                    if e.is_not_found() {
                        usage(format!("{app} has no release {v}; see heroku releases -a {app}"))
                    } else {
                        e.into()
                    }
                })
            }
            None => client
                .latest_release(app)
                .map_err(anyhow::Error::from)
                .and_then(|r| r.ok_or_else(|| fail(Exit::Failed, format!("{app} has no releases")))),
        };
        (release, cli_kit::join(all))
    });
    let release = release?;
    let previous = all.ok().and_then(|all| {
        all.into_iter().filter(|r| r.status == "succeeded" && r.version < release.version).map(|r| r.version).max()
    });
    Ok((release, previous))
}

/// The release the app runs now: the one the platform marks current (else the newest that
/// succeeded) among the newest ten. The newest release is not it while a release phase runs or
/// after one failed.
pub fn current_release(client: &Client, app: &str) -> Result<Option<Release>, heroku_api::Error> {
    let recent = client.recent_releases(app, 10)?;
    let current = recent.iter().find(|r| r.current).or_else(|| recent.iter().find(|r| r.status == "succeeded"));
    Ok(current.cloned())
}

/// `heroku releases:retry -a APP`: what to run once the blocker is gone.
pub fn retry_command(app: &str) -> String {
    format!("heroku releases:retry -a {app}")
}
