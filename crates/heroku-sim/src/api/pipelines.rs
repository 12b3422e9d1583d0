//! Pipelines: an app's coupling, and promotions (a release of the source's slug on each
//! target, each running its release phase), read back with their targets' status.

use std::time::{Instant, SystemTime};

use serde_json::Value;

use super::wire::{coupling_json, promotion_json, promotion_targets_json};
use super::{answer, error, not_found, Answer, Call};
use crate::model::World;

/// `GET /apps/{app}/pipeline-couplings`.
pub(super) fn coupling(world: &mut World, app_name: &str) -> Answer {
    match world.pipelines.couplings.iter().find(|c| c.app == app_name) {
        Some(c) => answer(200, coupling_json(world, c)),
        None => not_found("pipeline coupling"),
    }
}

/// `GET /pipeline-promotions/{id}`.
pub(super) fn get_promotion(world: &mut World, id: &str) -> Answer {
    match world.pipelines.promotions.iter().find(|p| p.id == id) {
        Some(p) => answer(200, promotion_json(world, p)),
        None => not_found("pipeline promotion"),
    }
}

/// `GET /pipeline-promotions/{id}/promotion-targets`.
pub(super) fn promotion_targets(world: &mut World, id: &str) -> Answer {
    match world.pipelines.promotions.iter().find(|p| p.id == id) {
        Some(p) => answer(200, Value::Array(promotion_targets_json(world, p))),
        None => not_found("pipeline promotion"),
    }
}

/// `POST /pipeline-promotions`.
pub(super) fn create(world: &mut World, cx: &Call) -> Answer {
    create_promotion(world, cx.body, cx.now, &cx.host)
}

/// `POST /pipeline-promotions`: the source's current release (its slug, or on Fir its OCI
/// image) becomes a new release of every target; the source and every target must be coupled
/// to the pipeline. How `heroku pipelines:promote` promotes on both generations.
pub(super) fn create_promotion(world: &mut World, body: Option<&Value>, now: Instant, _host: &str) -> Answer {
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
    let coupled = |world: &World, app: &str| {
        world.pipelines.couplings.iter().any(|c| c.app == app && c.pipeline_id == pipeline_id)
    };
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
    world.pipelines.promotions.push(p);
    answer(201, out)
}
