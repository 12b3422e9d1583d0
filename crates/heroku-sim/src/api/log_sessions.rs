//! Log sessions: `POST /apps/{app}/log-sessions` answers a `logplex_url` this server streams
//! (crate::logs), with Cedar's history and Fir's limits.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::wire::ts;
use super::{answer, Answer};
use crate::model::World;

/// `POST /apps/{app}/log-sessions`: the session's `logplex_url` streams the app's log from
/// this server (a secret path, as the platform's carries a token).
pub(super) fn create_log_session(world: &mut World, app_name: &str, body: Option<&Value>, host: &str) -> Answer {
    let get = |k: &str| body.and_then(|b| b.get(k));
    let lines = (get("lines").and_then(Value::as_u64).unwrap_or(100) as usize).min(world.faults.log_history_limit);
    let fir = world.apps[app_name].is_fir();
    let limit = world.timing.fir_log_session;
    let session = crate::logs::LogSession {
        app: app_name.to_string(),
        dyno: get("dyno").and_then(Value::as_str).map(str::to_string),
        process_type: get("type").and_then(Value::as_str).map(str::to_string),
        source: get("source").and_then(Value::as_str).map(str::to_string),
        // A Fir session has no history (`--num` is "ignored for Fir generation apps"), always
        // tails, and ends after a while (the CLI re-creates it: lib/run/log-displayer.js).
        lines: if fir { 0 } else { lines },
        tail: fir || get("tail").and_then(Value::as_bool).unwrap_or(false),
        ends_after: fir.then_some(limit),
        fir,
    };
    let id = world.new_id();
    world.logs.sessions.insert(id.clone(), session);
    let t = ts(SystemTime::now());
    answer(
        201,
        json!({
            "id": id,
            "logplex_url": format!("http://{host}/log-sessions/{id}/stream"),
            "created_at": t,
            "updated_at": t,
        }),
    )
}
