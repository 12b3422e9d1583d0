//! The formation: process types and quantities, and restarts by type or of the whole app.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::app_subject;
use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3, ACCEPT_V3_SDK};
use crate::Error;

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

impl Client {
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
}
