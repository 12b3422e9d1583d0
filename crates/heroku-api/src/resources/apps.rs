//! Apps: the app itself (its generation and stack, the maintenance flag), its config vars and
//! its features (preboot).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::app_subject;
use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3, ACCEPT_V3_SDK};
use crate::Error;

/// An app (`GET /apps/{app}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// UUID.
    pub id: String,
    /// Unique name, e.g. `acme`.
    pub name: String,
    /// Whether maintenance mode is on.
    pub maintenance: bool,
    /// When the current release was created.
    #[serde(default)]
    pub released_at: Option<String>,
    /// The app's web address.
    #[serde(default)]
    pub web_url: Option<String>,
    /// The platform generation, read under the 3.sdk variant as the Heroku CLI reads it
    /// (lib/apps/generation.js: a string or `{ "name": … }`; the published schema has none).
    /// `None` when the API did not say: the app then behaves as Cedar, as the CLI assumes.
    #[serde(default, deserialize_with = "generation_like", skip_serializing_if = "Option::is_none")]
    pub generation: Option<Generation>,
    /// The stack (`heroku-24`, `cnb`…).
    #[serde(default)]
    pub stack: Option<StackRef>,
}

/// `{ "name": "heroku-24" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRef {
    /// Stack name.
    pub name: String,
}

/// The platform generation an app runs on. Behaviour differs (dyno names, one-off attach,
/// log sessions, release artifacts), so every report says which applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    /// The classic runtime: `web.1` names, rendezvous attach, slugs.
    #[default]
    Cedar,
    /// The Kubernetes-based runtime: pod names, SSH attach, OCI images.
    Fir,
}

/// Reads `"fir"`, `{ "name": "fir" }`, anything else as unknown (never an error: an app must
/// not become unreadable because the platform added a generation).
fn generation_like<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Generation>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    let name = match &v {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => o.get("name").and_then(Value::as_str),
        _ => None,
    };
    Ok(match name {
        Some(n) if n.contains("fir") => Some(Generation::Fir),
        Some(n) if n.contains("cedar") => Some(Generation::Cedar),
        _ => None,
    })
}

impl App {
    /// The generation whose behaviour applies (Cedar when the API did not say).
    pub fn generation(&self) -> Generation {
        self.generation.unwrap_or_default()
    }

    /// The stack's name, when the API gave one.
    pub fn stack_name(&self) -> Option<&str> {
        self.stack.as_ref().map(|s| s.name.as_str())
    }

    /// What a report says of the platform behaviour that applied.
    pub fn platform(&self) -> Platform {
        Platform { generation: self.generation(), stack: self.stack_name().map(str::to_string) }
    }
}

/// The platform an app runs on, as reports carry it (`--json` `platform`), so a reader knows
/// which platform behaviour applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// `cedar` or `fir`.
    pub generation: Generation,
    /// The stack (`heroku-24`, `cnb`), when the API gave one.
    pub stack: Option<String>,
}

impl Platform {
    /// A Fir app.
    pub fn is_fir(&self) -> bool {
        self.generation == Generation::Fir
    }

    /// On a Cloud Native Buildpacks stack a one-off command must start with `launcher`, or the
    /// app's runtime and PATH are not set up (the CLI prepends it: lib/run/helpers.js).
    pub fn is_cnb(&self) -> bool {
        self.stack.as_deref() == Some("cnb")
    }
}

impl std::fmt::Display for Platform {
    /// `Cedar (stack heroku-24)`, `Fir (stack cnb)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = match self.generation {
            Generation::Cedar => "Cedar",
            Generation::Fir => "Fir",
        };
        match &self.stack {
            Some(s) => write!(f, "{g} (stack {s})"),
            None => f.write_str(g),
        }
    }
}

impl Client {
    /// `GET /apps/{app}` under the 3.sdk variant, which also says the app's generation (as
    /// lib/apps/generation.js asks for it).
    pub fn app_info(&self, app: &str) -> Result<App, Error> {
        self.send(&Call { accept: ACCEPT_V3_SDK, ..Call::get(format!("/apps/{}", seg(app)), app_subject(app)) })
    }

    /// `PATCH /apps/{app}` with `{"maintenance": on}`. Setting an absolute value is safe to retry.
    pub fn set_maintenance(&self, app: &str, on: bool) -> Result<App, Error> {
        self.send(&Call {
            method: Method::PATCH,
            path: format!("/apps/{}", seg(app)),
            body: Some(json!({ "maintenance": on })),
            idempotency: Idempotency::Idempotent,
            subject: app_subject(app),
            accept: ACCEPT_V3,
        })
    }

    /// `GET /apps/{app}/config-vars`. Values are secrets: never print them.
    pub fn config_vars(&self, app: &str) -> Result<BTreeMap<String, String>, Error> {
        let raw: BTreeMap<String, Option<String>> =
            self.send(&Call::get(format!("/apps/{}/config-vars", seg(app)), app_subject(app)))?;
        Ok(raw.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    /// `GET /apps/{app}/features/{name}`: whether a feature (`preboot`) is on.
    pub fn app_feature(&self, app: &str, name: &str) -> Result<AppFeature, Error> {
        self.send(&Call::get(
            format!("/apps/{}/features/{}", seg(app), seg(name)),
            format!("feature `{name}` of {app}"),
        ))
    }
}

/// One app feature (`GET /apps/{app}/features/{name}`), as far as the tools read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFeature {
    /// `preboot`, …
    pub name: String,
    /// On or off.
    pub enabled: bool,
}
