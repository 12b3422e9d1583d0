//! Every JSON object the simulator returns is checked against the published Platform API
//! schema (tests/heroku-platform-api/schema.json, the copy of ../shared's): property names,
//! JSON types, enums and the uuid / date-time formats. Main resources must also carry every
//! property the schema lists.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use heroku_sim::{Sim, World};
use serde_json::{json, Value};

fn schema() -> Value {
    serde_json::from_str(&test_support::platform_schema::text()).unwrap()
}

struct Checker {
    root: Value,
}

impl Checker {
    fn resolve<'a>(&'a self, mut s: &'a Value) -> &'a Value {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let mut cur = &self.root;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            s = cur;
        }
        s
    }

    /// Problems found in `v` against `s`, each with its JSON path.
    fn check(&self, path: &str, v: &Value, s: &Value, problems: &mut Vec<String>) {
        let s = self.resolve(s);
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = s.get(key).and_then(Value::as_array) {
                let ok = branches.iter().any(|b| {
                    let mut p = Vec::new();
                    self.check(path, v, b, &mut p);
                    p.is_empty()
                });
                if !ok {
                    problems.push(format!("{path}: matches no branch of {key}"));
                }
                return;
            }
        }
        if let Some(types) = s.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let actual = match v {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
            if !types.is_empty() && !fits {
                problems.push(format!("{path}: is {actual}, schema says {types:?}"));
                return;
            }
        }
        if let (Some(allowed), false) = (s.get("enum").and_then(Value::as_array), v.is_null()) {
            if !allowed.contains(v) {
                problems.push(format!("{path}: {v} is not one of {allowed:?}"));
            }
        }
        if let (Some(fmt), Some(text)) = (s.get("format").and_then(Value::as_str), v.as_str()) {
            let ok = match fmt {
                "uuid" => is_uuid(text),
                "date-time" => is_date_time(text),
                _ => true,
            };
            if !ok {
                problems.push(format!("{path}: `{text}` is not a {fmt}"));
            }
        }
        match v {
            Value::Object(map) => {
                let props = s.get("properties").and_then(Value::as_object);
                let patterns = s.get("patternProperties").and_then(Value::as_object);
                for (k, child) in map {
                    if let Some(ps) = props.and_then(|p| p.get(k)) {
                        self.check(&format!("{path}.{k}"), child, ps, problems);
                    } else if let Some(pp) = patterns.and_then(|p| p.values().next()) {
                        self.check(&format!("{path}.{k}"), child, pp, problems);
                    } else if props.is_some() {
                        problems.push(format!("{path}.{k}: property not in the schema"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(&format!("{path}[{i}]"), item, item_schema, problems);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// A raw request, so the test sees exactly the JSON the simulator sent.
fn call(sim: &Sim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_accepting(sim, method, path, body, "application/vnd.heroku+json; version=3")
}

fn call_accepting(sim: &Sim, method: &str, path: &str, body: Option<Value>, accept: &str) -> (u16, Value) {
    call_with(sim, method, path, body, &format!("Accept: {accept}\r\n"))
}

/// `headers`: more header lines, each ending in CRLF.
fn call_with(sim: &Sim, method: &str, path: &str, body: Option<Value>, headers: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sim.token(),
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn world() -> World {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
    w.add_formation("acme", "worker", 1, "sidekiq", Duration::from_secs(3600));
    w.add_dyno("acme", "release", "release.2343", "rake db:migrate", Duration::from_secs(1200));
    w.add_release("acme", "abc1234", "Deploy abc1234", Duration::from_secs(600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", "postgres://u:p@h/d");
    w.add_app("acme-staging");
    w.add_release("acme-staging", "def5678", "Deploy def5678", Duration::from_secs(300));
    w.add_pipeline(&[("acme-staging", "staging"), ("acme", "production")]);
    w
}

#[test]
fn every_endpoint_answers_in_the_published_schema() {
    let root = schema();
    let checker = Checker { root: root.clone() };
    let def = |name: &str| root["definitions"][name].clone();
    let sim = Sim::start(world()).unwrap();
    let slug_id = sim.with(|w| w.apps["acme"].slugs.last().unwrap().id.clone());
    let dyno_id = sim.with(|w| w.apps["acme"].dynos[0].id.clone());
    let release_id = sim.with(|w| w.apps["acme"].releases[0].id.clone());

    // (request, definition, whether every schema property must be present)
    let cases: Vec<(&str, String, Option<Value>, &str, bool)> = vec![
        ("GET", "/account".into(), None, "account", false),
        ("GET", "/apps/acme".into(), None, "app", true),
        ("PATCH", "/apps/acme".into(), Some(json!({"maintenance": true})), "app", true),
        ("GET", "/apps/acme/dynos".into(), None, "dyno", true),
        ("GET", "/apps/acme/dynos/web.1".into(), None, "dyno", true),
        ("GET", format!("/apps/acme/dynos/{dyno_id}"), None, "dyno", true),
        (
            "POST",
            "/apps/acme/dynos".into(),
            Some(
                json!({"command": "rake db:migrate", "attach": false, "env": {"PGAPPNAME": "x"}, "size": "standard-1X"}),
            ),
            "dyno",
            true,
        ),
        ("POST", format!("/apps/acme/dynos/{dyno_id}/actions/stop"), None, "dyno", true),
        ("POST", "/apps/acme/dynos/release/actions/stop".into(), None, "dyno", false),
        ("DELETE", "/apps/acme/dynos/web.1".into(), None, "dyno", false),
        ("DELETE", "/apps/acme/dynos".into(), None, "dyno", false),
        ("GET", "/apps/acme/formation".into(), None, "formation", true),
        ("GET", "/apps/acme/features".into(), None, "app-feature", true),
        ("GET", "/apps/acme/features/preboot".into(), None, "app-feature", true),
        ("GET", "/apps/acme/formation/web".into(), None, "formation", true),
        (
            "PATCH",
            "/apps/acme/formation".into(),
            Some(json!({"updates": [{"type": "worker", "quantity": 0}]})),
            "formation",
            true,
        ),
        ("PATCH", "/apps/acme/formation/web".into(), Some(json!({"quantity": 2})), "formation", true),
        ("GET", "/apps/acme/releases".into(), None, "release", true),
        ("GET", format!("/apps/acme/releases/{release_id}"), None, "release", true),
        ("GET", "/apps/acme/releases/2".into(), None, "release", true),
        (
            "POST",
            "/apps/acme/releases".into(),
            Some(json!({"slug": slug_id, "description": "promote"})),
            "release",
            true,
        ),
        ("GET", format!("/apps/acme/slugs/{slug_id}"), None, "slug", true),
        ("GET", "/apps/acme/config-vars".into(), None, "config-var", false),
        ("GET", "/apps/acme/addon-attachments".into(), None, "add-on-attachment", true),
        (
            "POST",
            "/actions/addon-attachments/resolve".into(),
            Some(json!({"app": "acme", "addon_attachment": "DATABASE_URL"})),
            "add-on-attachment",
            true,
        ),
        (
            "POST",
            "/apps/acme/log-sessions".into(),
            Some(json!({"dyno": "web.1", "lines": 10, "tail": false})),
            "log-session",
            true,
        ),
    ];
    let mut problems = Vec::new();
    // A pipeline promotion (how `heroku pipelines:promote` promotes, on Cedar and Fir alike):
    // its ids come from the couplings, its targets from the promotion it made.
    let (_, coupling) = call(&sim, "GET", "/apps/acme/pipeline-couplings", None);
    let (_, source) = call(&sim, "GET", "/apps/acme-staging/pipeline-couplings", None);
    let promote = json!({
        "pipeline": { "id": coupling["pipeline"]["id"] },
        "source": { "app": { "id": source["app"]["id"] } },
        "targets": [{ "app": { "id": coupling["app"]["id"] } }],
    });
    let (status, promotion) = call(&sim, "POST", "/pipeline-promotions", Some(promote));
    assert_eq!(status, 201, "{promotion}");
    let promotion_id = promotion["id"].as_str().unwrap().to_string();
    let cases: Vec<(&str, String, Option<Value>, &str, bool)> = cases
        .into_iter()
        .chain([
            ("GET", "/apps/acme/pipeline-couplings".to_string(), None, "pipeline-coupling", true),
            ("GET", format!("/pipeline-promotions/{promotion_id}"), None, "pipeline-promotion", true),
            (
                "GET",
                format!("/pipeline-promotions/{promotion_id}/promotion-targets"),
                None,
                "pipeline-promotion-target",
                true,
            ),
        ])
        .collect();
    for (method, path, body, name, complete) in cases {
        let (status, value) = call(&sim, method, &path, body);
        assert!((200..300).contains(&status), "{method} {path} answered {status}: {value}");
        let schema = def(name);
        let objects: Vec<Value> = match value {
            Value::Array(items) => {
                assert!(!items.is_empty(), "{method} {path}: empty list proves nothing");
                items
            }
            other => vec![other],
        };
        for obj in objects {
            checker.check(&format!("{method} {path}"), &obj, &schema, &mut problems);
            if complete {
                for prop in schema["properties"].as_object().unwrap().keys() {
                    if obj.get(prop).is_none() {
                        problems.push(format!("{method} {path}: missing property `{prop}`"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "schema problems:\n{}", problems.join("\n"));
}

/// A process type is no dyno: the dyno routes answer as the platform does for a name that is
/// no dyno (stop: 202 and nothing stops, as in the stuck-release incident; restart: 404), and
/// a type is restarted or stopped through the formation routes, which the Heroku CLI sends
/// with the 3.sdk variant (the schema has no link for them).
#[test]
fn a_process_type_is_restarted_through_the_formation_route_only() {
    let sim = Sim::start(world()).unwrap();
    let web_started = |sim: &Sim| -> Vec<std::time::SystemTime> {
        sim.with(|w| w.apps["acme"].dynos.iter().filter(|d| d.process_type == "web").map(|d| d.created_at).collect())
    };
    let before = web_started(&sim);
    let (status, body) = call(&sim, "DELETE", "/apps/acme/dynos/web", None);
    assert_eq!((status, body["message"].as_str()), (404, Some("Couldn't find that process.")));
    assert_eq!(web_started(&sim), before, "nothing restarted");

    let (status, _) = call(&sim, "DELETE", "/apps/acme/formations/web", None);
    assert_eq!(status, 404, "the formation route is served under the 3.sdk variant");
    assert_eq!(web_started(&sim), before);
    let sdk = "application/vnd.heroku+json; version=3.sdk";
    let (status, _) = call_accepting(&sim, "DELETE", "/apps/acme/formations/web", None, sdk);
    assert_eq!(status, 202);
    assert!(web_started(&sim).iter().zip(&before).all(|(after, b)| after > b), "every web dyno restarted");
    let (status, _) = call_accepting(&sim, "DELETE", "/apps/acme/formations/nope", None, sdk);
    assert_eq!(status, 404);

    let (status, _) = call(&sim, "POST", "/apps/acme/dynos/release/actions/stop", None);
    assert_eq!(status, 202, "the platform accepts a stop addressed to a type name");
    assert!(sim.with(|w| w.apps["acme"].dynos.iter().all(|d| d.gone_at.is_none())), "and stops nothing");
    let (status, _) = call_accepting(&sim, "POST", "/apps/acme/formations/release/actions/stop", None, sdk);
    assert_eq!(status, 202);
    assert!(sim.with(|w| w.apps["acme"].dynos.iter().any(|d| d.name == "release.2343" && d.gone_at.is_some())));
}

#[test]
fn the_checker_catches_wrong_names_and_types() {
    // A check that cannot fail proves nothing: feed it bad objects.
    let root = schema();
    let checker = Checker { root: root.clone() };
    let mut problems = Vec::new();
    let dyno = json!({"id": "not-a-uuid", "name": 3, "nickname": "x", "state": "up"});
    checker.check("dyno", &dyno, &root["definitions"]["dyno"], &mut problems);
    let text = problems.join("\n");
    assert!(text.contains("dyno.id: `not-a-uuid` is not a uuid"), "{text}");
    assert!(text.contains("dyno.name: is integer"), "{text}");
    assert!(text.contains("dyno.nickname: property not in the schema"), "{text}");
}

/// JSON Schema's `date-time` (RFC 3339 section 5.6), checked here on its own rather than with
/// the API client's parser: a format the simulator and the client got wrong alike must not pass.
fn is_date_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok()).unwrap_or(99);
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape || !(1..=12).contains(&num(5..7)) || !(1..=31).contains(&num(8..10)) || num(11..13) > 23 {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[test]
fn the_date_time_check_is_the_rfcs() {
    assert!(is_date_time("2026-12-06T06:00:01Z"));
    assert!(is_date_time("2026-12-06T06:00:01.123456+00:00"));
    for bad in [
        "2026-12-06 06:00:01Z",
        "2026-13-06T06:00:01Z",
        "2026-12-06T06:00:01",
        "2026-12-06T06:00:01.Z",
        "26-12-06T06:00:01Z",
    ] {
        assert!(!is_date_time(bad), "{bad}");
    }
}

/// The CLI's database resolver (`heroku pg:*`) resolves `DATABASE_URL` with
/// `POST /actions/addon-attachments/resolve` under 3.sdk, asking with `Accept-Inclusion:
/// addon:plan,config_vars` for what the schema does not list: the add-on's plan (it keeps
/// `heroku-postgresql:*` ones) and the config vars the attachment sets. Asked, those two come
/// and the rest stays in the schema; a name nothing is attached as is a 404 in the platform's
/// words.
#[test]
fn the_database_resolver_gets_the_plan_and_config_vars_it_asks_to_include() {
    let sim = Sim::start(world()).unwrap();
    let headers = "Accept: application/vnd.heroku+json; version=3.sdk\r\nAccept-Inclusion: addon:plan,config_vars\r\n";
    let resolve = |key: &str| {
        call_with(
            &sim,
            "POST",
            "/actions/addon-attachments/resolve",
            Some(json!({"app": "acme", "addon_attachment": key})),
            headers,
        )
    };
    for key in ["DATABASE_URL", "DATABASE"] {
        let (status, found) = resolve(key);
        assert_eq!(status, 200, "{key}: {found}");
        let mut attachment = found.as_array().unwrap()[0].clone();
        assert_eq!(attachment["addon"]["plan"]["name"], "heroku-postgresql:standard-0", "{attachment}");
        assert_eq!(attachment["config_vars"], json!(["DATABASE_URL"]), "{attachment}");
        let plan = attachment["addon"].as_object_mut().unwrap().remove("plan").unwrap();
        assert!(is_uuid(plan["id"].as_str().unwrap()), "{plan}");
        attachment.as_object_mut().unwrap().remove("config_vars");
        let root = schema();
        let mut problems = Vec::new();
        let definition = root["definitions"]["add-on-attachment"].clone();
        Checker { root }.check("resolve", &attachment, &definition, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }
    let (status, missing) = resolve("REDIS_URL");
    assert_eq!((status, missing["id"].as_str()), (404, Some("not_found")), "{missing}");
    assert_eq!(missing["message"], "Couldn't find that add on attachment.");
}
