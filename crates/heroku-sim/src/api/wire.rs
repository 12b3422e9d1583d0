//! The wire format: how each resource is written as JSON, as the published schema has it (and
//! the fields the pinned CLI reads under the 3.sdk variant), and how a list is paged.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::Answer;
use crate::model::{AppState, DynoState, World};
use crate::paging;

/// An API timestamp, in the simulator's own formatting.
pub(super) fn ts(t: SystemTime) -> String {
    crate::clock::api_time(t)
}

pub(super) fn list(items: Vec<Value>, range: Option<&str>, default_field: &str, page_size: usize) -> Answer {
    let (status, headers, page) = paging::page(items, range, default_field, page_size);
    Answer { status, headers, body: Value::Array(page) }
}

pub(super) fn account_json(world: &World) -> Value {
    json!({
        "id": world.account.id,
        "email": world.account.email,
        "name": "On Call",
        "allow_tracking": false,
        "beta": false,
        "created_at": "2015-01-01T00:00:00Z",
        "updated_at": "2015-01-01T00:00:00Z",
        "last_login": "2026-01-01T00:00:00Z",
        "sms_number": null,
        "suspended_at": null,
        "delinquent_at": null,
        "two_factor_authentication": true,
        "verified": true,
        "country_of_residence": null,
        "default_organization": null,
        "default_team": null,
        "identity_provider": null,
        "federated": false
    })
}

pub(super) fn app_ref(app: &AppState) -> Value {
    json!({ "id": app.id, "name": app.name })
}

pub(super) fn app_json(world: &World, app: &AppState) -> Value {
    let released_at = app.current_release().map(|r| ts(r.created_at));
    json!({
        "id": app.id,
        "name": app.name,
        "maintenance": app.maintenance,
        "created_at": ts(app.created_at),
        "updated_at": ts(app.updated_at),
        "released_at": released_at,
        "web_url": format!("https://{}.herokuapp.com/", app.name),
        "git_url": format!("https://git.heroku.com/{}.git", app.name),
        "owner": { "id": world.account.id, "email": world.account.email },
        "region": { "id": "59accabd-516d-4f0e-83e6-6e3757701145", "name": "us" },
        "stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": app.stack },
        "build_stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": app.stack },
        "buildpack_provided_description": "Ruby/Rails",
        "acm": false,
        "archived_at": null,
        "internal_routing": null,
        "organization": null,
        "team": null,
        "space": null,
        "repo_size": null,
        "slug_size": 52_428_800
    })
}

pub(super) fn dyno_json(app: &AppState, d: &DynoState) -> Value {
    let release = app.releases.iter().find(|r| r.version == d.release_version);
    json!({
        "id": d.id,
        "name": d.name,
        "type": d.process_type,
        "state": d.state,
        "command": d.command,
        "size": d.size,
        "created_at": ts(d.created_at),
        "updated_at": ts(d.updated_at),
        "attach_url": d.attach_url,
        "release": release.map(|r| json!({ "id": r.id, "version": r.version })),
        "app": app_ref(app)
    })
}

pub(super) fn formation_json(app: &AppState, f: &crate::model::FormationState) -> Value {
    json!({
        "id": f.id,
        "type": f.process_type,
        "quantity": f.quantity,
        "size": f.size,
        "command": f.command,
        "created_at": ts(app.created_at),
        "updated_at": ts(f.updated_at),
        "app": app_ref(app)
    })
}

/// A release; `output_stream_url` is served by this server at a secret path, as the platform's
/// carries a token (no API key is sent with it: the CLI fetches it with a plain GET).
/// A release; `sdk`: asked under the 3.sdk variant, which also carries `oci_image`.
pub(super) fn release_json(world: &World, app: &AppState, version: u64, host: &str, sdk: bool) -> Value {
    let r = app.releases.iter().find(|r| r.version == version).expect("release exists");
    let current = app.current_release().map(|c| c.version) == Some(version);
    let mut release = json!({
        "id": r.id,
        "version": r.version,
        "description": r.description,
        "status": r.status,
        "created_at": ts(r.created_at),
        "updated_at": ts(r.created_at),
        "current": current,
        // A Fir release runs an OCI image and has no slug. The simulator keeps one artifact
        // store and names it by generation.
        "slug": if app.is_fir() { None } else { r.slug_id.as_ref().map(|id| json!({ "id": id })) },
        "user": { "id": world.account.id, "email": world.account.email },
        "app": app_ref(app),
        "addon_plan_names": ["heroku-postgresql:standard-0"],
        "output_stream_url": r.output_id.as_ref().map(|id| format!("http://{host}/release-output/{id}"))
    });
    // The published schema has no `oci_image`; the pinned CLI reads it from releases asked for
    // under the 3.sdk variant (lib/buildpacks/buildpacks.js, commands/pipelines/diff.js).
    if sdk {
        // What `heroku releases:rollback` may roll back to (lib/releases/releases.js filters on
        // it, asking under 3.sdk; the schema has no such field): a release that ran and has
        // something to run again.
        release["eligible_for_rollback"] = json!(r.status == "succeeded" && r.slug_id.is_some());
        release["oci_image"] = if app.is_fir() {
            r.slug_id.as_ref().map(|id| json!({ "id": id })).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
    }
    release
}

pub(super) fn oci_image_json(s: &crate::model::SlugState) -> Value {
    json!({
        "id": s.id,
        "commit": s.commit,
        "commit_description": s.commit_description,
        "process_types": s.process_types.iter().map(|(k, v)| (k.clone(), json!({ "name": k, "command": v }))).collect::<serde_json::Map<String, Value>>(),
        "buildpacks": [{ "id": "heroku/ruby", "version": "1.0.0", "homepage": "https://github.com/heroku/buildpacks-ruby" }],
        "stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": "cnb" },
        "created_at": ts(s.created_at),
        "updated_at": ts(s.created_at),
    })
}

pub(super) fn slug_json(s: &crate::model::SlugState) -> Value {
    json!({
        "id": s.id,
        "commit": s.commit,
        "commit_description": s.commit_description,
        "process_types": s.process_types,
        "created_at": ts(s.created_at),
        "updated_at": ts(s.created_at),
        "size": 52_428_800,
        "checksum": "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "buildpack_provided_description": "Ruby/Rails",
        "blob": { "method": "get", "url": "https://slugs.example.invalid/blob" },
        "stack": { "id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": "heroku-24" }
    })
}

/// An attachment as the schema has it, and — asked for with `Accept-Inclusion` (as the CLI's
/// database resolver asks: `addon:plan,config_vars`) — its add-on's plan and the config vars
/// it sets, which the schema does not list.
pub(super) fn attachment_json(app: &AppState, a: &crate::model::AttachmentState, inclusion: &[String]) -> Value {
    let included = |what: &str| inclusion.iter().any(|i| i == what);
    let mut addon = json!({ "id": a.addon_id, "name": a.addon_name, "app": app_ref(app) });
    if included("addon:plan") {
        addon["plan"] = json!({ "id": a.plan.0, "name": a.plan.1 });
    }
    let mut attachment = json!({
        "id": a.id,
        "name": a.name,
        "addon": addon,
        "app": app_ref(app),
        "namespace": null,
        "created_at": ts(app.created_at),
        "updated_at": ts(app.created_at),
        "web_url": format!("https://data.heroku.com/datastores/{}", a.addon_id),
        "log_input_url": null
    });
    if included("config_vars") {
        attachment["config_vars"] = json!([format!("{}_URL", a.name)]);
    }
    attachment
}

pub(super) fn app_id(world: &World, name: &str) -> Value {
    json!({ "id": world.apps.get(name).map(|a| a.id.clone()).unwrap_or_default() })
}

pub(super) fn coupling_json(world: &World, c: &crate::model::CouplingState) -> Value {
    json!({
        "id": c.id,
        "app": app_id(world, &c.app),
        "pipeline": { "id": c.pipeline_id },
        "stage": c.stage,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.created_at),
    })
}

/// A target's status follows the release the promotion made there: pending while its release
/// phase runs, then succeeded or failed.
pub(super) fn target_status(world: &World, app: &str, version: Option<u64>) -> &'static str {
    let status =
        version.and_then(|v| world.apps.get(app)?.releases.iter().find(|r| r.version == v)).map(|r| r.status.as_str());
    match status {
        Some("succeeded") => "succeeded",
        Some("failed") | None => "failed",
        Some(_) => "pending",
    }
}

pub(super) fn promotion_targets_json(world: &World, p: &crate::model::PromotionState) -> Vec<Value> {
    p.targets
        .iter()
        .map(|(id, app, version)| {
            let release = version
                .and_then(|v| world.apps.get(app)?.releases.iter().find(|r| r.version == v))
                .map(|r| json!({ "id": r.id }));
            let status = target_status(world, app, *version);
            json!({
                "id": id,
                "app": app_id(world, app),
                "pipeline_promotion": { "id": p.id },
                "release": release,
                "status": status,
                "error_message": (status == "failed").then_some("The release command failed."),
            })
        })
        .collect()
}

pub(super) fn promotion_json(world: &World, p: &crate::model::PromotionState) -> Value {
    let done = p.targets.iter().all(|(_, app, v)| target_status(world, app, *v) != "pending");
    json!({
        "id": p.id,
        "pipeline": { "id": p.pipeline_id },
        "source": { "app": app_id(world, &p.source_app), "release": { "id": p.source_release_id } },
        "status": if done { "completed" } else { "pending" },
        "created_at": ts(p.created_at),
        "updated_at": ts(p.created_at),
    })
}
