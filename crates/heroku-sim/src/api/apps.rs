//! The account and apps: an app's info (its generation under 3.sdk), maintenance mode, its
//! config vars (a change makes a release, which runs the release phase) and add-on
//! attachments.

use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::wire::{account_json, app_json, attachment_json, list};
use super::{answer, error, needs_sdk_variant, Answer, Call};
use crate::model::{AppState, World};

/// `GET /account`.
pub(super) fn account(world: &mut World) -> Answer {
    answer(200, account_json(world))
}

/// `GET /apps/{app}`. The published schema has no `generation`; the pinned CLI reads it from
/// this route under the 3.sdk variant (lib/apps/generation.js), as a string or `{name}`.
pub(super) fn get_app(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let mut app = app_json(world, &world.apps[app_name]);
    if needs_sdk_variant(cx.req).is_none() {
        app["generation"] = json!({ "name": world.apps[app_name].generation });
    }
    answer(200, app)
}

/// `PATCH /apps/{app}`: maintenance on or off.
pub(super) fn update_app(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let app = world.apps.get_mut(app_name).expect("found");
    if let Some(m) = cx.body.and_then(|b| b.get("maintenance")).and_then(Value::as_bool) {
        app.maintenance = m;
        app.updated_at = SystemTime::now();
    }
    answer(200, app_json(world, &world.apps[app_name]))
}

/// `GET /apps/{app}/config-vars`.
pub(super) fn config_vars(world: &mut World, app_name: &str) -> Answer {
    let vars: serde_json::Map<String, Value> =
        world.apps[app_name].config_vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    answer(200, Value::Object(vars))
}

/// `GET /apps/{app}/addon-attachments`.
pub(super) fn attachments(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let app = &world.apps[app_name];
    let items = app.attachments.iter().map(|a| attachment_json(app, a, &cx.inclusion)).collect();
    list(items, cx.range, "id", world.faults.page_size)
}

/// `POST /actions/addon-attachments/resolve`: the attachments an identifier names — an
/// attachment's id or name, or the config var it sets (`DATABASE_URL`, as the CLI's database
/// resolver sends it) — on `app` when given, of `addon_service` when given. None: 404.
pub(super) fn resolve_attachment(world: &mut World, cx: &Call) -> Answer {
    let field = |k: &str| cx.body.and_then(|b| b.get(k)).and_then(Value::as_str);
    let Some(key) = field("addon_attachment") else {
        return error(422, "invalid_params", "addon_attachment is required.");
    };
    let apps: Vec<&AppState> = match field("app") {
        Some(name) => match world.apps.get(name) {
            Some(app) => vec![app],
            None => return error(404, "not_found", "Couldn't find that app."),
        },
        None => world.apps.values().collect(),
    };
    let service = field("addon_service");
    let found: Vec<Value> = apps
        .iter()
        .flat_map(|app| app.attachments.iter().map(move |a| (*app, a)))
        .filter(|(_, a)| a.id == key || a.name == key || format!("{}_URL", a.name) == key)
        .filter(|(_, a)| service.is_none_or(|s| a.plan.1.split(':').next() == Some(s)))
        .map(|(app, a)| attachment_json(app, a, &cx.inclusion))
        .collect();
    if found.is_empty() {
        return error(404, "not_found", "Couldn't find that add on attachment.");
    }
    answer(200, Value::Array(found))
}

pub(super) fn update_config_vars(world: &mut World, app_name: &str, body: Option<&Value>, now: Instant) -> Answer {
    let Some(obj) = body.and_then(Value::as_object) else {
        return error(422, "invalid_params", "A JSON object of config vars is required.");
    };
    let vars: Vec<(String, Option<String>)> =
        obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string))).collect();
    world.user_config_change(app_name, &vars, now);
    let vars: serde_json::Map<String, Value> =
        world.apps[app_name].config_vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    answer(200, Value::Object(vars))
}

/// One app feature as the schema's `app-feature` (the fields the schema defines).
fn feature_json(app: &crate::model::AppState, index: usize, name: &str, enabled: bool) -> Value {
    let at = super::wire::ts(app.created_at);
    json!({
        "id": format!("5f0c7e1a-0000-4000-8000-{index:012x}"),
        "name": name,
        "enabled": enabled,
        "state": "general",
        "description": format!("{name} (simulated)"),
        "doc_url": format!("https://devcenter.heroku.com/articles/{name}"),
        "display_name": name,
        "feedback_email": "",
        "created_at": at,
        "updated_at": at,
    })
}

/// `GET /apps/{app}/features`.
pub(super) fn features(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let app = &world.apps[app_name];
    let items = app.features.iter().enumerate().map(|(i, (n, e))| feature_json(app, i, n, *e)).collect();
    list(items, cx.range, "id", world.faults.page_size)
}

/// `GET /apps/{app}/features/{name}`: 404 for a feature the app does not have.
pub(super) fn feature(world: &mut World, app_name: &str, name: &str) -> Answer {
    let app = &world.apps[app_name];
    match app.features.iter().enumerate().find(|(_, (n, _))| n.as_str() == name) {
        Some((i, (n, e))) => answer(200, feature_json(app, i, n, *e)),
        None => error(404, "not_found", "Couldn't find that feature."),
    }
}
