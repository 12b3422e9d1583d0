//! Typed Platform API resources: only what the tools need, named as the schema names them, one
//! module per resource, each with the calls that read or change it.

mod addons;
mod apps;
mod dynos;
mod formation;
mod pipelines;
mod releases;

pub use addons::*;
pub use apps::*;
pub use dynos::*;
pub use formation::*;
pub use pipelines::*;
pub use releases::*;

use serde::{Deserialize, Serialize};

/// `{ "id": …, "name": … }` references to apps and add-ons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
}

/// `{ "id": … }` reference to a slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    /// UUID.
    pub id: String,
}

fn app_subject(app: &str) -> String {
    format!("app `{app}`")
}
