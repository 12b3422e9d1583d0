//! Releases, the slugs and OCI images they run.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{app_subject, IdRef};
use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3, ACCEPT_V3_SDK};
use crate::Error;

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

impl Client {
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
}
