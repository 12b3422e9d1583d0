//! The formation: quantities per process type, read and changed one type or a batch at once;
//! a change starts or stops dynos (`World::apply_quantity`).

use serde_json::Value;

use super::wire::{formation_json, list};
use super::{answer, error, not_found, Answer, Call};
use crate::model::{AppState, World};

/// `GET /apps/{app}/formation`.
pub(super) fn list_formation(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let app = &world.apps[app_name];
    let items = app.formation.iter().map(|f| formation_json(app, f)).collect();
    list(items, cx.range, "id", world.faults.page_size)
}

/// `PATCH /apps/{app}/formation`: a batch; every type must exist before anything changes.
pub(super) fn update_batch(world: &mut World, app_name: &str, cx: &Call) -> Answer {
    let Some(updates) = cx.body.and_then(|b| b.get("updates")).and_then(Value::as_array) else {
        return error(422, "invalid_params", "updates is required.");
    };
    let mut parsed = Vec::new();
    for u in updates {
        let Some(ptype) = u.get("type").and_then(Value::as_str) else {
            return error(422, "invalid_params", "type is required.");
        };
        if !world.apps[app_name].formation.iter().any(|f| f.process_type == ptype || f.id == ptype) {
            return not_found("formation");
        }
        parsed.push((ptype.to_string(), u.get("quantity").and_then(Value::as_u64)));
    }
    let mut changed = Vec::new();
    for (ptype, qty) in parsed {
        let ptype = resolve_formation_type(&world.apps[app_name], &ptype);
        if let Some(q) = qty {
            world.apply_quantity(app_name, &ptype, q as u32, cx.now);
        }
        changed.push(ptype);
    }
    let app = &world.apps[app_name];
    let out: Vec<Value> =
        app.formation.iter().filter(|f| changed.contains(&f.process_type)).map(|f| formation_json(app, f)).collect();
    answer(200, Value::Array(out))
}

/// `GET /apps/{app}/formation/{type or id}`.
pub(super) fn get_type(world: &mut World, app_name: &str, ptype: &str) -> Answer {
    let app = &world.apps[app_name];
    match app.formation.iter().find(|f| f.process_type == ptype || f.id == ptype) {
        Some(f) => answer(200, formation_json(app, f)),
        None => not_found("formation"),
    }
}

/// `PATCH /apps/{app}/formation/{type or id}`.
pub(super) fn update_type(world: &mut World, app_name: &str, ptype: &str, cx: &Call) -> Answer {
    if !world.apps[app_name].formation.iter().any(|f| f.process_type == ptype || f.id == ptype) {
        return not_found("formation");
    }
    let ptype = resolve_formation_type(&world.apps[app_name], ptype);
    if let Some(q) = cx.body.and_then(|b| b.get("quantity")).and_then(Value::as_u64) {
        world.apply_quantity(app_name, &ptype, q as u32, cx.now);
    }
    let app = &world.apps[app_name];
    let f = app.formation.iter().find(|f| f.process_type == ptype).expect("exists");
    answer(200, formation_json(app, f))
}

pub(super) fn resolve_formation_type(app: &AppState, key: &str) -> String {
    app.formation
        .iter()
        .find(|f| f.process_type == key || f.id == key)
        .map(|f| f.process_type.clone())
        .unwrap_or_default()
}
