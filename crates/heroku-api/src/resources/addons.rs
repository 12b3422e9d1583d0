//! Add-on attachments (which database a config var names).

use serde::{Deserialize, Serialize};

use super::{app_subject, NamedRef};
use crate::client::{seg, Call, Client};
use crate::Error;

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

impl Client {
    /// `GET /apps/{app}/addon-attachments`, every page.
    pub fn addon_attachments(&self, app: &str) -> Result<Vec<AddonAttachment>, Error> {
        self.list(&Call::get(format!("/apps/{}/addon-attachments", seg(app)), app_subject(app)), None)
    }
}
