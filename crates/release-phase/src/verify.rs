//! After a release phase succeeded: the platform restarts the formation onto the release; prove
//! every formation dyno runs it and is up (what `migrate-restart check` looks at, by release
//! rather than by time).

use std::time::Duration;

use crate::render::Following;
use crate::report::{FormationCheck, FormationDyno};
use cli_kit::{Output, Poll};
use heroku_api::Client;

/// Polls (bounded by `limit`) until every formation dyno runs `version` and is up.
pub fn verify_formation(
    client: &Client,
    out: &Output,
    app: &str,
    version: u64,
    limit: Duration,
) -> anyhow::Result<FormationCheck> {
    let formation = client.formation(app)?;
    let expected: u32 = formation.iter().filter(|f| f.process_type != "release").map(|f| f.quantity).sum();
    let spinner = out.spinner(format!("waiting for the formation to run v{version}"));
    let mut poll = Poll::with_pauses(limit, Duration::from_millis(200), Duration::from_secs(2));
    let mut dynos = Vec::new();
    let verified = loop {
        if let Ok(list) = client.dynos(app) {
            dynos = list
                .iter()
                .filter(|d| !d.is_one_off())
                .map(|d| FormationDyno {
                    name: d.name.clone(),
                    release_version: d.release.as_ref().map(|r| r.version),
                    state: d.state.clone(),
                })
                .collect();
            let on_it = dynos.iter().filter(|d| d.release_version == Some(version) && d.state == "up").count();
            spinner.set_message(format!("{on_it} of {expected} dynos up on v{version}"));
            if on_it >= expected as usize && dynos.iter().all(|d| d.release_version == Some(version) && d.state == "up")
            {
                break true;
            }
        }
        if !poll.wait_next() {
            break false;
        }
    };
    spinner.finish();
    dynos.sort_by(|a, b| a.name.cmp(&b.name));
    let check = FormationCheck { version, dynos, verified, elapsed_ms: poll.elapsed().as_millis() as u64 };
    if verified {
        out.show(&Following::FormationUp { app, version, dynos: check.dynos.len(), took: poll.elapsed() });
    } else {
        let dynos = check.dynos.iter().filter(|d| !(d.release_version == Some(version) && d.state == "up")).collect();
        out.show(&Following::FormationNotUp { dynos, limit });
    }
    Ok(check)
}
