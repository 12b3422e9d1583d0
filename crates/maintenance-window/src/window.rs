//! Opening, closing and restoring the window: journal first, then act; independent calls at
//! once; bounded polls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use cli_kit::{format_duration, refused, usage, Output, Poll};
use heroku_api::timestamp::format_rfc3339;
use heroku_api::{Client, Formation, FormationUpdate};

use crate::journal::{self, Journal, PipelineRoute, Promotion, Scaled};

/// The app's state read before the window (while the site is still up).
pub struct Before {
    /// Maintenance flag.
    pub maintenance: bool,
    /// Formation.
    pub formation: Vec<Formation>,
    /// What to promote and the app's current version, when promoting.
    pub promote: Option<(PromotionPlan, Option<u64>)>,
    /// The app's config vars when promoting (to find the database its release phase migrates).
    pub vars: BTreeMap<String, String>,
}

/// What `--promote-from` releases, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionPlan {
    /// The source app.
    pub from: String,
    /// The slug (Cedar) or OCI image (Fir) of the source's current release.
    pub artifact_id: String,
    /// Fir: through this pipeline.
    pub pipeline: Option<PipelineRoute>,
}

impl PromotionPlan {
    /// `acme-staging's slug`, `acme-staging's image (through its pipeline)`.
    pub fn describe(&self) -> String {
        match self.pipeline {
            None => format!("{}'s slug", self.from),
            Some(_) => format!("{}'s image (through their pipeline)", self.from),
        }
    }
}

/// What `source`'s current release carries and how it reaches `app`: a release of its slug on
/// Cedar; on Fir (an OCI image, which a release of a slug cannot carry) a promotion through the
/// pipeline both apps are coupled to, as `heroku pipelines:promote` does. Anything that cannot
/// be promoted is refused here, before anything changes.
pub fn plan_promotion(
    client: &Client,
    app: &str,
    platform: &heroku_api::Platform,
    source: &str,
) -> anyhow::Result<PromotionPlan> {
    let fir = platform.is_fir();
    let (release, couplings) = std::thread::scope(|s| {
        let couplings = s.spawn(|| -> anyhow::Result<_> {
            if !fir {
                return Ok(None);
            }
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| client.pipeline_coupling(app));
                (cli_kit::join(a), client.pipeline_coupling(source))
            });
            Ok(Some((a?, b?)))
        });
        // The source's current release: not its newest when a release phase runs there or failed.
        (release_phase::current_release(client, source), cli_kit::join(couplings))
    });
    let release = release.map_err(|e| {
        if e.is_not_found() {
            usage(format!("--promote-from {source}: no such app (or no access); nothing was changed"))
        } else {
            e.into()
        }
    })?;
    let release = release.ok_or_else(|| usage(format!("--promote-from {source}: it has no release to promote")))?;
    let v = release.version;
    match (fir, &release.slug, &release.oci_image) {
        (false, Some(slug), _) => Ok(PromotionPlan { from: source.to_string(), artifact_id: slug.id.clone(), pipeline: None }),
        (false, None, Some(_)) => Err(refused(format!(
            "--promote-from {source}: its current release v{v} is an OCI image (Fir), and {app} is on {platform}, which runs slugs; promote between apps of one generation; nothing was changed"
        ))),
        (true, Some(_), None) => Err(refused(format!(
            "--promote-from {source}: its current release v{v} is a slug (Cedar), and {app} is on {platform}, which runs OCI images; promote between apps of one generation; nothing was changed"
        ))),
        (true, _, Some(image)) => {
            let (target, from) = couplings?.unwrap_or((None, None));
            match (target, from) {
                (Some(t), Some(f)) if t.pipeline.id == f.pipeline.id => Ok(PromotionPlan {
                    from: source.to_string(),
                    artifact_id: image.id.clone(),
                    pipeline: Some(PipelineRoute {
                        pipeline_id: t.pipeline.id,
                        source_app_id: f.app.id,
                        target_app_id: t.app.id,
                    }),
                }),
                (t, f) => {
                    let said = |c: &Option<heroku_api::PipelineCoupling>| match c {
                        Some(c) => format!("in pipeline {} ({})", c.pipeline.id, c.stage),
                        None => "in no pipeline".to_string(),
                    };
                    Err(refused(format!(
                        "--promote-from {source}: {app} is on {platform}, where an image is promoted through the pipeline both apps are in, and {app} is {} while {source} is {}; add both to one pipeline (heroku pipelines:add PIPELINE -a APP --stage STAGE), then run this again; nothing was changed",
                        said(&t),
                        said(&f)
                    )))
                }
            }
        }
        (_, None, None) => Err(usage(format!(
            "--promote-from {source}: its current release v{v} carries {} to promote; nothing was changed",
            if fir { "no OCI image" } else { "no slug" }
        ))),
    }
}

/// Reads everything the window needs, all at once, before anything changes. `known_version`
/// is the app's current release version when the decision already read it.
pub fn read_before(
    client: &Client,
    app: &str,
    platform: &heroku_api::Platform,
    promote_from: Option<&str>,
    known_version: Option<u64>,
) -> anyhow::Result<Before> {
    let (info, formation, promote, vars) = std::thread::scope(|s| {
        let info = s.spawn(|| client.app_info(app));
        let vars = s.spawn(|| match promote_from {
            Some(_) => client.config_vars(app),
            None => Ok(BTreeMap::new()),
        });
        let promote = s.spawn(|| -> anyhow::Result<Option<(PromotionPlan, Option<u64>)>> {
            let Some(src) = promote_from else { return Ok(None) };
            let plan = plan_promotion(client, app, platform, src)?;
            let current = match known_version {
                Some(v) => Some(v),
                None => release_phase::current_release(client, app)?.map(|r| r.version),
            };
            Ok(Some((plan, current)))
        });
        let formation = client.formation(app);
        (cli_kit::join(info), formation, cli_kit::join(promote), cli_kit::join(vars))
    });
    Ok(Before { maintenance: info?.maintenance, formation: formation?, promote: promote?, vars: vars? })
}

/// The types to scale down: `--scale-down` (checked against the formation) or every non-web
/// type with dynos.
pub fn scale_set(requested: &[String], formation: &[Formation]) -> anyhow::Result<Vec<Scaled>> {
    let by_type: BTreeMap<&str, u32> = formation.iter().map(|f| (f.process_type.as_str(), f.quantity)).collect();
    let mut set: Vec<Scaled> = if requested.is_empty() {
        by_type
            .iter()
            .filter(|(t, q)| **t != "web" && **q > 0)
            .map(|(t, q)| Scaled { process_type: t.to_string(), quantity_before: *q })
            .collect()
    } else {
        requested
            .iter()
            .map(|t| match by_type.get(t.as_str()) {
                Some(q) => Ok(Scaled { process_type: t.clone(), quantity_before: *q }),
                None => Err(usage(format!(
                    "--scale-down: unknown process type `{t}`; this app has: {}",
                    by_type.keys().copied().collect::<Vec<_>>().join(", ")
                ))),
            })
            .collect::<anyhow::Result<_>>()?
    };
    // Stable order for people and for the journal.
    set.sort_by(|a, b| a.process_type.cmp(&b.process_type));
    set.dedup_by(|a, b| a.process_type == b.process_type);
    Ok(set)
}

/// Journals, then turns maintenance on and scales down in parallel, then waits for the drain.
/// Returns whether the drain finished in time.
pub fn open(client: &Client, out: &Output, j: &mut Journal, drain_timeout: Duration) -> anyhow::Result<bool> {
    journal::save(j)?;
    let updates: Vec<FormationUpdate> =
        j.scaled.iter().map(|s| FormationUpdate { process_type: s.process_type.clone(), quantity: 0 }).collect();
    let (m, f) = std::thread::scope(|s| {
        let f = s.spawn(|| if updates.is_empty() { Ok(Vec::new()) } else { client.update_formation(&j.app, &updates) });
        (client.set_maintenance(&j.app, true), cli_kit::join(f))
    });
    m?;
    j.steps.push("maintenance on".into());
    f?;
    for s in &j.scaled {
        j.steps.push(format!("scaled {} {}→0", s.process_type, s.quantity_before));
    }
    journal::save(j)?;
    out.show(&crate::render::Opening::MaintenanceOn {
        app: &j.app,
        scaled: j.scaled.iter().map(|s| s.process_type.as_str()).collect(),
    });
    if j.scaled.is_empty() {
        return Ok(true);
    }
    let types: Vec<&str> = j.scaled.iter().map(|s| s.process_type.as_str()).collect();
    let spinner = out.spinner(format!("waiting for {} to stop", types.join(", ")));
    let mut poll = Poll::with_pauses(drain_timeout, Duration::from_millis(100), Duration::from_secs(1));
    let drained = loop {
        if let Ok(list) = client.dynos(&j.app) {
            let left: Vec<&str> =
                list.iter().filter(|d| types.contains(&d.process_type.as_str())).map(|d| d.name.as_str()).collect();
            if left.is_empty() {
                break true;
            }
            spinner.set_message(format!("waiting for {} to stop", left.join(", ")));
        }
        if !poll.wait_next() {
            break false;
        }
    };
    spinner.finish();
    if drained {
        j.steps.push("drained".into());
        journal::save(j)?;
    }
    Ok(drained)
}

/// Releases the prebuilt slug on the app; returns the new release (pending while the app's
/// release phase runs).
pub fn promote(client: &Client, out: &Output, j: &mut Journal) -> anyhow::Result<Option<heroku_api::Release>> {
    let Some(p) = j.promotion.clone() else { return Ok(None) };
    let plan = PromotionPlan { from: p.from.clone(), artifact_id: p.slug_id.clone(), pipeline: p.pipeline.clone() };
    let release = release_promotion(client, out, &j.app, &plan, "maintenance-window")?;
    j.promotion = Some(Promotion { new_version: Some(release.version), ..p });
    j.steps.push(format!("released v{}", release.version));
    journal::save(j)?;
    out.show(&crate::render::Opening::Released { app: &j.app, version: release.version, from: plan.describe() });
    Ok(Some(release))
}

/// The longest a pipeline promotion may take to make its release on the target.
const PROMOTION_LIMIT: Duration = Duration::from_secs(120);

/// Makes the release `plan` describes on `app` and returns it (pending while its release phase
/// runs): a release of the slug, or a pipeline promotion followed until the target's release
/// exists (bounded polling with backoff).
pub fn release_promotion(
    client: &Client,
    out: &Output,
    app: &str,
    plan: &PromotionPlan,
    why: &str,
) -> anyhow::Result<heroku_api::Release> {
    let Some(route) = &plan.pipeline else {
        return Ok(client.create_release(app, &plan.artifact_id, &format!("Promote {}'s slug ({why})", plan.from))?);
    };
    let promotion = client.create_pipeline_promotion(&route.pipeline_id, &route.source_app_id, &route.target_app_id)?;
    out.debug(format!("pipeline promotion {} from {} to {app}", promotion.id, plan.from));
    let mut poll = Poll::with_pauses(PROMOTION_LIMIT, Duration::from_millis(200), Duration::from_secs(2));
    loop {
        let targets = client.promotion_targets(&promotion.id)?;
        let target = targets.iter().find(|t| t.app.id == route.target_app_id);
        match target {
            Some(t) if t.release.is_some() => {
                let id = t.release.as_ref().map(|r| r.id.clone()).unwrap_or_default();
                return Ok(client.release_info(app, &id)?);
            }
            Some(t) if t.status == "failed" => {
                return Err(cli_kit::fail(
                    cli_kit::Exit::Failed,
                    format!(
                        "the pipeline promotion from {} to {app} failed: {}",
                        plan.from,
                        t.error_message.as_deref().unwrap_or("no reason given")
                    ),
                ))
            }
            _ => {}
        }
        if !poll.wait_next() {
            return Err(cli_kit::fail(
                cli_kit::Exit::NotVerified,
                format!(
                    "the pipeline promotion {} made no release on {app} within {}: see heroku releases -a {app}",
                    promotion.id,
                    format_duration(PROMOTION_LIMIT)
                ),
            ));
        }
    }
}

/// Puts back the journaled quantities and maintenance flag (both at once), then removes the
/// journal. Absolute values make it safe to run twice.
pub fn close(client: &Client, j: &Journal) -> anyhow::Result<()> {
    let updates: Vec<FormationUpdate> = j
        .scaled
        .iter()
        .map(|s| FormationUpdate { process_type: s.process_type.clone(), quantity: s.quantity_before })
        .collect();
    let (m, f) = std::thread::scope(|s| {
        let f = s.spawn(|| if updates.is_empty() { Ok(Vec::new()) } else { client.update_formation(&j.app, &updates) });
        (client.set_maintenance(&j.app, j.maintenance_before), cli_kit::join(f))
    });
    f?;
    m?;
    journal::remove(&j.app)
}

/// Lines describing what an open window holds.
pub fn describe(j: &Journal) -> Vec<String> {
    let mut lines = vec![format!(
        "maintenance was {} before the window (opened {} by pid {})",
        if j.maintenance_before { "on" } else { "off" },
        j.opened_at,
        j.pid
    )];
    for s in &j.scaled {
        lines.push(format!(
            "{} scaled {}→0 (restore puts back {})",
            s.process_type, s.quantity_before, s.quantity_before
        ));
    }
    if let Some(p) = &j.promotion {
        match p.new_version {
            Some(v) => lines.push(format!(
                "released v{v} from {} (stays; roll back with heroku releases:rollback{} if needed)",
                if p.pipeline.is_some() { format!("{}'s image", p.from) } else { format!("{}'s slug", p.from) },
                p.previous_version.map(|v| format!(" v{v}")).unwrap_or_default()
            )),
            None => lines.push(format!("promotion from {} not made", p.from)),
        }
    }
    lines.push(format!("steps done: {}", if j.steps.is_empty() { "none".to_string() } else { j.steps.join(", ") }));
    lines
}

/// A new journal for an app.
pub fn new_journal(app: &str, before: &Before, scaled: Vec<Scaled>, command: &[String]) -> Journal {
    Journal {
        version: journal::VERSION,
        app: app.to_string(),
        opened_at: format_rfc3339(SystemTime::now()),
        pid: std::process::id(),
        maintenance_before: before.maintenance,
        scaled,
        steps: Vec::new(),
        promotion: before.promote.as_ref().map(|(plan, prev)| Promotion {
            from: plan.from.clone(),
            slug_id: plan.artifact_id.clone(),
            pipeline: plan.pipeline.clone(),
            previous_version: *prev,
            new_version: None,
        }),
        command: command.to_vec(),
    }
}

/// Milliseconds since `t`.
pub fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}
