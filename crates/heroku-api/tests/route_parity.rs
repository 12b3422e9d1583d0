//! Route parity: every request the client can send is a route the platform documents (a link
//! in the published schema) or one the pinned Heroku CLI sends itself. A route that is neither
//! is a guess about the platform, and the simulator would only be agreeing with us.
//!
//! The client's routes are read from its source (`Call::get(format!("/…"))` and
//! `Call { method: Method::X, path: format!("/…") }`), so a new route cannot escape the check.
//! The CLI's are read from its `dist/` files: a template like `/apps/${app}/formations/${type}`
//! counts for a method when the same file sends that method (`heroku.delete(…)`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

type Route = (String, String);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// `/apps/{}/dynos/{}`: every placeholder, whatever it held, becomes `{}`.
fn normalise(template: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek() == Some(&'{') && depth == 0 => {}
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out.trim_end_matches('/').to_string()
}

/// Every `.rs` file under `dir`, its subdirectories included (resources/ is one per resource).
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// (method, template) for every request the heroku-api crate builds.
fn client_routes() -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    let src = root().join("crates/heroku-api/src");
    for path in rust_files(&src) {
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let mut rest = code.as_str();
        while let Some(at) = rest.find("format!(\"/") {
            let before = &rest[..at];
            let start = at + "format!(\"".len();
            let end = start + rest[start..].find('"').unwrap();
            let template = normalise(&rest[start..end]);
            // The method is the nearest one named before the path in the same request.
            let get = before.rfind("Call::get(");
            let explicit = before.rfind("method: Method::");
            let method = match (get, explicit) {
                (Some(g), Some(m)) if g > m => "GET".to_string(),
                (_, Some(m)) => {
                    before[m + "method: Method::".len()..].chars().take_while(char::is_ascii_uppercase).collect()
                }
                (Some(_), None) => "GET".to_string(),
                (None, None) => panic!("{}: cannot tell the method of {template}", path.display()),
            };
            routes.insert((method, template));
            rest = &rest[end..];
        }
    }
    routes
}

/// Links of the published Platform API schema.
fn schema_routes() -> BTreeSet<Route> {
    let schema: Value = serde_json::from_str(&test_support::platform_schema::text()).unwrap();
    let mut routes = BTreeSet::new();
    for def in schema["definitions"].as_object().unwrap().values() {
        for link in def["links"].as_array().into_iter().flatten() {
            if let (Some(m), Some(h)) = (link["method"].as_str(), link["href"].as_str()) {
                routes.insert((m.to_ascii_uppercase(), normalise(h)));
            }
        }
    }
    routes
}

/// Routes the pinned Heroku CLI sends, read from its compiled JavaScript.
fn cli_routes() -> BTreeSet<Route> {
    let dist = root().join("tests/heroku-cli/node_modules/heroku/dist");
    assert!(dist.is_dir(), "{} is missing: scripts/test installs the pinned Heroku CLI", dist.display());
    let mut routes = BTreeSet::new();
    let mut dirs = vec![dist];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "js") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let methods: Vec<&str> = ["get", "post", "patch", "put", "delete"]
                .into_iter()
                .filter(|m| {
                    text.contains(&format!("heroku.{m}(")) || text.contains(&format!("method: '{}'", m.to_uppercase()))
                })
                .collect();
            let mut rest = text.as_str();
            while let Some(at) = rest.find("`/") {
                let start = at + 1;
                let Some(len) = rest[start..].find('`') else { break };
                let template = normalise(&rest[start..start + len]);
                for m in &methods {
                    routes.insert((m.to_uppercase(), template.clone()));
                }
                rest = &rest[start + len + 1..];
            }
        }
    }
    routes
}

#[test]
fn every_route_the_client_sends_is_in_the_schema_or_sent_by_the_heroku_cli() {
    let client = client_routes();
    assert!(client.len() >= 10, "the source scan found too few routes to be working: {client:?}");
    let schema = schema_routes();
    let cli = cli_routes();
    let unknown: Vec<String> =
        client.iter().filter(|r| !schema.contains(*r) && !cli.contains(*r)).map(|(m, t)| format!("{m} {t}")).collect();
    assert!(unknown.is_empty(), "routes neither in the schema nor sent by the pinned Heroku CLI: {unknown:?}");
}

#[test]
fn the_parity_check_can_fail() {
    // A check that cannot fail proves nothing: the readers must know the platform's routes and
    // must not know an invented one.
    let schema = schema_routes();
    let cli = cli_routes();
    let restart_type = ("DELETE".to_string(), "/apps/{}/formations/{}".to_string());
    assert!(!schema.contains(&restart_type), "the schema has no formation action routes");
    assert!(cli.contains(&restart_type), "ps:restart --process-type sends it");
    assert!(schema.contains(&("POST".to_string(), "/apps/{}/dynos/{}/actions/stop".to_string())));
    let invented = ("POST".to_string(), "/apps/{}/dynos/{}/actions/restart".to_string());
    assert!(!schema.contains(&invented) && !cli.contains(&invented));
    assert_eq!(normalise("/apps/${app}/formations/${encodeURIComponent(type)}"), "/apps/{}/formations/{}");
    assert_eq!(normalise("/apps/{(%23%2Fdefinitions%2Fapp%2Fdefinitions%2Fidentity)}/formation"), "/apps/{}/formation");
    assert!(client_routes().contains(&restart_type), "the client restarts a type through the formation route");
}
