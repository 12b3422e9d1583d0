//! Dynos: listing, one-off creation, stop and restart of one dyno by id.

use std::collections::BTreeMap;
use std::time::SystemTime;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::app_subject;
use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3};
use crate::timestamp::parse_rfc3339;
use crate::Error;

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

impl Client {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::parse_rfc3339;
    use serde_json::json;

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
