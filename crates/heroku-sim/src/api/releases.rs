//! Releases and what they run: listing and reading releases (their config vars too), a new
//! release of a slug (Cedar), a rollback (which runs the release phase again), the slug or OCI
//! image behind a release.

use std::time::Instant;

use serde_json::{json, Value};

use super::wire::{list, oci_image_json, release_json, slug_json};
use super::{answer, error, not_found, Answer, Call};
use crate::model::World;

/// `GET /apps/{app}/releases`.
pub(super) fn list_releases(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let app = &world.apps[app_name];
    let items = app.releases.iter().map(|r| release_json(world, app, r.version, &cx.host, cx.sdk)).collect();
    list(items, cx.range, "id", world.faults.page_size)
}

/// `GET /apps/{app}/releases/{id or version}`.
pub(super) fn get_release(world: &mut World, app_name: &str, key: &str, cx: &Call) -> Answer {
    let app = &world.apps[app_name];
    match app.releases.iter().find(|r| r.id == key || r.version.to_string() == key.trim_start_matches('v')) {
        Some(r) => answer(200, release_json(world, app, r.version, &cx.host, cx.sdk)),
        None => not_found("release"),
    }
}

/// `GET /apps/{app}/releases/{id or version}/config-vars` (the schema's "Info for App
/// Release"; `releases:info` reads it). Config vars are not versioned here: every release
/// sees today's.
pub(super) fn release_config_vars(world: &mut World, app_name: &str, key: &str) -> Answer {
    let app = &world.apps[app_name];
    if !app.releases.iter().any(|r| r.id == key || r.version.to_string() == key.trim_start_matches('v')) {
        return not_found("release");
    }
    let vars: serde_json::Map<String, Value> =
        app.config_vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    answer(200, Value::Object(vars))
}

/// `GET /apps/{app}/slugs/{id}` (Cedar).
pub(super) fn get_slug(world: &mut World, app_name: &str, id: &str) -> Answer {
    let app = &world.apps[app_name];
    match app.slugs.iter().find(|s| s.id == id && !app.is_fir()) {
        Some(s) => answer(200, slug_json(s)),
        None => not_found("slug"),
    }
}

/// `GET /apps/{app}/oci-images/{id}`: the image a Fir release runs, as an array (the CLI reads
/// `[0].commit`).
pub(super) fn get_oci_image(world: &mut World, app_name: &str, id: &str) -> Answer {
    let app = &world.apps[app_name];
    match app.slugs.iter().find(|s| s.id == id && app.is_fir()) {
        Some(s) => answer(200, json!([oci_image_json(s)])),
        None => not_found("oci-image"),
    }
}

pub(super) fn create_release(
    world: &mut World,
    app_name: &str,
    body: Option<&Value>,
    now: Instant,
    host: &str,
) -> Answer {
    // A rollback names a release (`heroku releases:rollback`: {"release": id}); it re-releases
    // that release's slug, and the release phase runs again.
    if let Some(key) = body.and_then(|b| b.get("release")).and_then(Value::as_str) {
        return rollback(world, app_name, key, now, host);
    }
    let Some(slug_id) = body.and_then(|b| b.get("slug")).and_then(Value::as_str) else {
        return error(422, "invalid_params", "slug is required.");
    };
    // A Fir app releases OCI images, which this route (a slug) cannot name.
    if world.apps[app_name].is_fir() {
        return error(
            422,
            "invalid_params",
            "This app is on the Fir generation: its releases are built from OCI images, not slugs.",
        );
    }
    // A slug may come from another app of the same account (promotion).
    let Some(slug) = world.apps.values().flat_map(|a| a.slugs.iter()).find(|s| s.id == slug_id).cloned() else {
        return not_found("slug");
    };
    let description =
        body.and_then(|b| b.get("description")).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
            format!("Deploy {}", slug.commit.as_deref().unwrap_or("").chars().take(8).collect::<String>())
        });
    let version = world.release_slug(app_name, slug, description, now);
    let app = &world.apps[app_name];
    answer(201, release_json(world, app, version, host, false))
}

pub(super) fn rollback(world: &mut World, app_name: &str, key: &str, now: Instant, host: &str) -> Answer {
    let app = &world.apps[app_name];
    let Some(target) =
        app.releases.iter().find(|r| r.id == key || r.version.to_string() == key.trim_start_matches('v'))
    else {
        return not_found("release");
    };
    let (version, slug_id) = (target.version, target.slug_id.clone());
    let Some(slug) = slug_id.and_then(|id| app.slugs.iter().find(|s| s.id == id).cloned()) else {
        return error(422, "invalid_params", "This release has no slug to roll back to.");
    };
    let released = world.release_slug(app_name, slug, format!("Rollback to v{version}"), now);
    let app = &world.apps[app_name];
    answer(201, release_json(world, app, released, host, true))
}
