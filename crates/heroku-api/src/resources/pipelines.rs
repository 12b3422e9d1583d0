//! Pipelines: couplings and promotions (how a Fir app is promoted).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{app_subject, IdRef};
use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3};
use crate::Error;

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

impl Client {
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
}
