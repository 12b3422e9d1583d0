//! Typed Platform API resources: only what the tools need, named as the schema names them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3, ACCEPT_V3_SDK};
use crate::timestamp::parse_rfc3339;
use crate::Error;

/// `{ "id": …, "name": … }` references to apps and add-ons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
}

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

/// The release a dyno runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRef {
    /// UUID.
    pub id: String,
    /// v-number.
    pub version: u64,
}

/// A dyno (`GET /apps/{app}/dynos`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dyno {
    /// UUID; the only identity safe to act on.
    pub id: String,
    /// `web.1`, `release.2343`, `run.1828`. A name can later mean another dyno.
    pub name: String,
    /// Process type: `web`, `release`, `run`…
    #[serde(rename = "type")]
    pub process_type: String,
    /// `up`, `starting`, `crashed`, `down`, `idle`.
    pub state: String,
    /// The command it runs.
    pub command: String,
    /// Dyno size, e.g. `standard-1X`.
    #[serde(default)]
    pub size: Option<String>,
    /// When the dyno (re)started.
    pub created_at: String,
    /// Last state change.
    pub updated_at: String,
    /// Rendezvous URL of an attached one-off dyno.
    #[serde(default)]
    pub attach_url: Option<String>,
    /// The release it runs.
    #[serde(default)]
    pub release: Option<ReleaseRef>,
}

impl Dyno {
    /// `created_at` as a time; `None` when the API sent something unparseable.
    pub fn created_at_time(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.created_at)
    }

    /// How long it has been up at `now` (since it last started); `None` when `created_at`
    /// is unparseable or in the future of `now`.
    pub fn age(&self, now: SystemTime) -> Option<std::time::Duration> {
        now.duration_since(self.created_at_time()?).ok()
    }

    /// A one-off or release-phase dyno (`run.N`, `release.N`, and a detached one-off's type
    /// `run`): not part of the formation, and the kind that runs migrations.
    pub fn is_one_off(&self) -> bool {
        matches!(self.process_type.as_str(), "run" | "release")
    }
}

/// A process type's formation (`GET /apps/{app}/formation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formation {
    /// UUID.
    pub id: String,
    /// Process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// Number of dynos.
    pub quantity: u32,
    /// Dyno size.
    pub size: String,
    /// The command.
    pub command: String,
    /// Last change.
    pub updated_at: String,
}

/// One entry of a batch formation update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationUpdate {
    /// Process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// New quantity.
    pub quantity: u32,
}

/// `{ "id": … }` reference to a slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    /// UUID.
    pub id: String,
}

/// A release (`GET /apps/{app}/releases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// UUID.
    pub id: String,
    /// v-number.
    pub version: u64,
    /// What it did (`Deploy abc123`, `Set FOO config vars`…).
    pub description: String,
    /// `succeeded`, `pending`, `failed`.
    pub status: String,
    /// When it was created.
    pub created_at: String,
    /// Whether this is the app's current release.
    #[serde(default)]
    pub current: bool,
    /// The slug it runs, when it has one (Cedar).
    #[serde(default)]
    pub slug: Option<IdRef>,
    /// The OCI image it runs, when it has one (Fir: no slug). The published schema has no
    /// such field; the Heroku CLI reads it (commands/pipelines/diff.js, lib/buildpacks).
    #[serde(default)]
    pub oci_image: Option<IdRef>,
    /// Where the release command's output streams from, when the release ran a release phase
    /// (a secret URL: no API token is sent to it).
    #[serde(default)]
    pub output_stream_url: Option<String>,
}

/// An OCI image (`GET /apps/{app}/oci-images/{id}`, 3.sdk variant, an array as the Heroku CLI
/// reads it): what a Fir release runs instead of a slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciImage {
    /// UUID.
    pub id: String,
    /// The git commit it was built from.
    #[serde(default)]
    pub commit: Option<String>,
}

/// An app's place in a pipeline (`GET /apps/{app}/pipeline-couplings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineCoupling {
    /// UUID.
    pub id: String,
    /// The app (`{ "id": … }`).
    pub app: IdRef,
    /// The pipeline (`{ "id": … }`).
    pub pipeline: IdRef,
    /// `development`, `staging`, `production`…
    pub stage: String,
}

/// A pipeline promotion (`POST /pipeline-promotions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelinePromotion {
    /// UUID.
    pub id: String,
    /// `pending` or `completed`.
    pub status: String,
}

/// One target of a promotion (`GET /pipeline-promotions/{id}/promotion-targets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionTarget {
    /// The target app (`{ "id": … }`).
    pub app: IdRef,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    /// The release made on the target, once made.
    #[serde(default)]
    pub release: Option<IdRef>,
    /// Why it failed.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// A slug (`GET /apps/{app}/slugs/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slug {
    /// UUID.
    pub id: String,
    /// The git commit it was built from.
    #[serde(default)]
    pub commit: Option<String>,
    /// That commit's message.
    #[serde(default)]
    pub commit_description: Option<String>,
    /// Procfile entries.
    #[serde(default)]
    pub process_types: BTreeMap<String, String>,
    /// When it was built.
    pub created_at: String,
}

/// An add-on attachment (`GET /apps/{app}/addon-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonAttachment {
    /// UUID.
    pub id: String,
    /// Attachment name, e.g. `DATABASE` or `HEROKU_POSTGRESQL_TEAL`; its config var is `{name}_URL`.
    pub name: String,
    /// The add-on attached.
    pub addon: AddonRef,
    /// The app it is attached to.
    pub app: NamedRef,
}

/// The add-on an attachment points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonRef {
    /// UUID.
    pub id: String,
    /// Globally unique add-on name, e.g. `postgresql-teal-12345`.
    pub name: String,
    /// The app billed for it.
    pub app: NamedRef,
}

/// What a one-off dyno should run (`POST /apps/{app}/dynos`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DynoCreate {
    /// The command line.
    pub command: String,
    /// Extra environment for this dyno only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Ask for a rendezvous `attach_url`.
    pub attach: bool,
    /// Dyno size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Process type (default `run`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    /// Seconds before the platform stops it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u64>,
}

fn app_subject(app: &str) -> String {
    format!("app `{app}`")
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

    /// `GET /apps/{app}/dynos`, every page.
    pub fn dynos(&self, app: &str) -> Result<Vec<Dyno>, Error> {
        self.list(&Call::get(format!("/apps/{}/dynos", seg(app)), app_subject(app)), Some("id ..; max=1000".into()))
    }

    /// `GET /apps/{app}/dynos/{dyno}` by id or name.
    pub fn dyno_info(&self, app: &str, dyno: &str) -> Result<Dyno, Error> {
        self.send(&Call::get(format!("/apps/{}/dynos/{}", seg(app), seg(dyno)), format!("dyno `{dyno}` of {app}")))
    }

    /// `POST /apps/{app}/dynos`: a one-off dyno. Never retried after an ambiguous failure: a second
    /// POST would start a second copy of the command.
    pub fn create_dyno(&self, app: &str, spec: &DynoCreate) -> Result<Dyno, Error> {
        self.send(&Call {
            method: Method::POST,
            path: format!("/apps/{}/dynos", seg(app)),
            body: Some(serde_json::to_value(spec).unwrap_or(Value::Null)),
            idempotency: Idempotency::NotIdempotent,
            subject: app_subject(app),
            accept: ACCEPT_V3,
        })
    }

    /// `POST /apps/{app}/dynos/{id}/actions/stop`. Pass the dyno's id: the platform answers 202
    /// to a stop addressed to a process-type name and stops nothing.
    pub fn stop_dyno(&self, app: &str, dyno_id: &str) -> Result<(), Error> {
        self.send_ignore_body(&Call {
            method: Method::POST,
            path: format!("/apps/{}/dynos/{}/actions/stop", seg(app), seg(dyno_id)),
            body: None,
            idempotency: Idempotency::Idempotent,
            subject: format!("dyno `{dyno_id}` of {app}"),
            accept: ACCEPT_V3,
        })
    }

    /// Stops a dyno by id; `Ok(false)` when it no longer exists (a 404). Callers verify by
    /// listing, so "already gone" is an answer, not an error.
    pub fn stop_dyno_if_present(&self, app: &str, dyno_id: &str) -> Result<bool, Error> {
        match self.stop_dyno(app, dyno_id) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /apps/{app}/dynos/{id}`: restart one dyno.
    pub fn restart_dyno(&self, app: &str, dyno_id: &str) -> Result<(), Error> {
        self.send_ignore_body(&Call {
            method: Method::DELETE,
            path: format!("/apps/{}/dynos/{}", seg(app), seg(dyno_id)),
            body: None,
            idempotency: Idempotency::Idempotent,
            subject: format!("dyno `{dyno_id}` of {app}"),
            accept: ACCEPT_V3,
        })
    }

    /// `DELETE /apps/{app}/formations/{type}` (3.sdk variant): restart every dyno of a
    /// process type, as `heroku ps:restart --process-type` does. The dyno route takes a dyno's
    /// id or name only; a type there is no dyno.
    pub fn restart_process_type(&self, app: &str, process_type: &str) -> Result<(), Error> {
        self.send_ignore_body(&Call {
            method: Method::DELETE,
            path: format!("/apps/{}/formations/{}", seg(app), seg(process_type)),
            body: None,
            idempotency: Idempotency::Idempotent,
            subject: format!("process type `{process_type}` of {app}"),
            accept: ACCEPT_V3_SDK,
        })
    }

    /// `DELETE /apps/{app}/dynos`: restart all dynos.
    pub fn restart_all(&self, app: &str) -> Result<(), Error> {
        self.send_ignore_body(&Call {
            method: Method::DELETE,
            path: format!("/apps/{}/dynos", seg(app)),
            body: None,
            idempotency: Idempotency::Idempotent,
            subject: app_subject(app),
            accept: ACCEPT_V3,
        })
    }

    /// `GET /apps/{app}/formation`.
    pub fn formation(&self, app: &str) -> Result<Vec<Formation>, Error> {
        self.list(&Call::get(format!("/apps/{}/formation", seg(app)), app_subject(app)), None)
    }

    /// `PATCH /apps/{app}/formation`: set several quantities in one request. Absolute
    /// quantities make it safe to retry.
    pub fn update_formation(&self, app: &str, updates: &[FormationUpdate]) -> Result<Vec<Formation>, Error> {
        self.send(&Call {
            method: Method::PATCH,
            path: format!("/apps/{}/formation", seg(app)),
            body: Some(json!({ "updates": updates })),
            idempotency: Idempotency::Idempotent,
            subject: app_subject(app),
            accept: ACCEPT_V3,
        })
    }

    /// `GET /apps/{app}/releases`, newest first, every page. Every release read goes under the
    /// 3.sdk variant, which also carries a Fir release's `oci_image` (as the CLI reads it).
    pub fn releases(&self, app: &str) -> Result<Vec<Release>, Error> {
        self.list(
            &Call { accept: ACCEPT_V3_SDK, ..Call::get(format!("/apps/{}/releases", seg(app)), app_subject(app)) },
            Some("version ..; order=desc, max=1000".into()),
        )
    }

    /// The newest release only (one request, one item).
    pub fn latest_release(&self, app: &str) -> Result<Option<Release>, Error> {
        let call =
            Call { accept: ACCEPT_V3_SDK, ..Call::get(format!("/apps/{}/releases", seg(app)), app_subject(app)) };
        let page: Vec<Release> = self.first_page(&call, "version ..; order=desc, max=1")?;
        Ok(page.into_iter().next())
    }

    /// The `n` newest releases, newest first (one request; the Heroku CLI reads releases the
    /// same way: `Range: version ..; max=10, order=desc`).
    pub fn recent_releases(&self, app: &str, n: usize) -> Result<Vec<Release>, Error> {
        let call =
            Call { accept: ACCEPT_V3_SDK, ..Call::get(format!("/apps/{}/releases", seg(app)), app_subject(app)) };
        self.first_page(&call, &format!("version ..; order=desc, max={n}"))
    }

    /// `GET /apps/{app}/releases/{id or version}`.
    pub fn release_info(&self, app: &str, release: &str) -> Result<Release, Error> {
        self.send(&Call {
            accept: ACCEPT_V3_SDK,
            ..Call::get(
                format!("/apps/{}/releases/{}", seg(app), seg(release)),
                format!("release `{release}` of {app}"),
            )
        })
    }

    /// `POST /apps/{app}/releases` from an existing slug. Not retried after an ambiguous failure.
    pub fn create_release(&self, app: &str, slug_id: &str, description: &str) -> Result<Release, Error> {
        self.send(&Call {
            method: Method::POST,
            path: format!("/apps/{}/releases", seg(app)),
            body: Some(json!({ "slug": slug_id, "description": description })),
            idempotency: Idempotency::NotIdempotent,
            subject: app_subject(app),
            accept: ACCEPT_V3,
        })
    }

    /// `GET /apps/{app}/slugs/{id}`.
    pub fn slug_info(&self, app: &str, slug_id: &str) -> Result<Slug, Error> {
        self.send(&Call::get(
            format!("/apps/{}/slugs/{}", seg(app), seg(slug_id)),
            format!("slug `{slug_id}` of {app}"),
        ))
    }

    /// `GET /apps/{app}/oci-images/{id}` (3.sdk): the image a Fir release runs. The platform
    /// answers an array (the Heroku CLI reads its first element); `None` when it is empty.
    pub fn oci_image_info(&self, app: &str, image_id: &str) -> Result<Option<OciImage>, Error> {
        let images: Vec<OciImage> = self.send(&Call {
            accept: ACCEPT_V3_SDK,
            ..Call::get(
                format!("/apps/{}/oci-images/{}", seg(app), seg(image_id)),
                format!("OCI image `{image_id}` of {app}"),
            )
        })?;
        Ok(images.into_iter().next())
    }

    /// `GET /apps/{app}/pipeline-couplings`: the app's pipeline and stage; `None` when it is in
    /// no pipeline.
    pub fn pipeline_coupling(&self, app: &str) -> Result<Option<PipelineCoupling>, Error> {
        match self.send(&Call::get(format!("/apps/{}/pipeline-couplings", seg(app)), app_subject(app))) {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /pipeline-promotions`: the source's current release (slug or OCI image) becomes a
    /// new release of the target, as `heroku pipelines:promote` does. Never retried after an
    /// ambiguous failure: a second promotion would make a second release.
    pub fn create_pipeline_promotion(
        &self,
        pipeline_id: &str,
        source_app_id: &str,
        target_app_id: &str,
    ) -> Result<PipelinePromotion, Error> {
        self.send(&Call {
            method: Method::POST,
            // `format!` so the route-parity test reads this route like every other.
            #[allow(clippy::useless_format)]
            path: format!("/pipeline-promotions"),
            body: Some(json!({
                "pipeline": { "id": pipeline_id },
                "source": { "app": { "id": source_app_id } },
                "targets": [{ "app": { "id": target_app_id } }],
            })),
            idempotency: Idempotency::NotIdempotent,
            subject: format!("pipeline `{pipeline_id}`"),
            accept: ACCEPT_V3,
        })
    }

    /// `GET /pipeline-promotions/{id}/promotion-targets`.
    pub fn promotion_targets(&self, promotion_id: &str) -> Result<Vec<PromotionTarget>, Error> {
        self.send(&Call::get(
            format!("/pipeline-promotions/{}/promotion-targets", seg(promotion_id)),
            format!("pipeline promotion `{promotion_id}`"),
        ))
    }

    /// `GET /apps/{app}/config-vars`. Values are secrets: never print them.
    pub fn config_vars(&self, app: &str) -> Result<BTreeMap<String, String>, Error> {
        let raw: BTreeMap<String, Option<String>> =
            self.send(&Call::get(format!("/apps/{}/config-vars", seg(app)), app_subject(app)))?;
        Ok(raw.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    /// `GET /apps/{app}/addon-attachments`, every page.
    pub fn addon_attachments(&self, app: &str) -> Result<Vec<AddonAttachment>, Error> {
        self.list(&Call::get(format!("/apps/{}/addon-attachments", seg(app)), app_subject(app)), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dyno(process_type: &str, name: &str, created_at: &str) -> Dyno {
        serde_json::from_value(json!({
            "id": "01234567-89ab-cdef-0123-456789abcdef", "name": name, "type": process_type, "state": "up",
            "command": "x", "created_at": created_at, "updated_at": created_at
        }))
        .unwrap()
    }

    #[test]
    fn age_and_one_off() {
        let d = dyno("release", "release.2343", "2026-11-22T06:00:00Z");
        let now = parse_rfc3339("2026-11-22T06:20:14Z").unwrap();
        assert_eq!(d.age(now), Some(std::time::Duration::from_secs(20 * 60 + 14)));
        assert_eq!(d.age(parse_rfc3339("2026-11-22T05:00:00Z").unwrap()), None, "a boot in the future has no age");
        assert_eq!(dyno("web", "web.1", "garbage").age(now), None);
        assert!(d.is_one_off() && dyno("run", "run.1001", "").is_one_off());
        assert!(!dyno("web", "web.1", "").is_one_off() && !dyno("worker", "worker.1", "").is_one_off());
    }
}
