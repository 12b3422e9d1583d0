//! `check`'s wording: dynos that booted before the schema last changed.

use cli_kit::output::{count, one};
use cli_kit::{Line, Render, Tone};

/// `check`: dynos that booted before the schema last changed.
#[derive(Debug)]
pub enum Checking<'a> {
    /// When the schema last changed, and by what account.
    SchemaChanged { at: String, ago: String, source: &'a str },
    /// Every dyno booted after it.
    NoStaleDynos { app: &'a str },
    /// Dynos booted before it.
    StaleDynos { app: &'a str, dynos: Vec<(&'a str, &'a str, String)> },
    /// The database's migration times could not be read.
    MigrationTimesUnread { error: String },
}

impl Render for Checking<'_> {
    fn lines(&self) -> Vec<Line> {
        use Tone::*;
        match self {
            Checking::SchemaChanged { at, ago, source } => {
                one(Say, format!("Schema last changed {at} ({ago} ago), per {source}."))
            }
            Checking::NoStaleDynos { app } => one(Ok, format!("Every dyno of {app} booted after that.")),
            Checking::StaleDynos { app, dynos } => {
                let mut lines =
                    one(Bad, format!("{} booted before it and may hold a stale schema:", count(dynos.len(), "dyno")));
                lines.extend(
                    dynos.iter().map(|(name, state, age)| Line::new(Say, format!("  {name}  {state}  up {age}"))),
                );
                lines.push(Line::new(
                    Say,
                    format!("Fix: heroku ps:restart -a {app}   (or migrate-restart -a {app} for the next migration)"),
                ));
                lines
            }
            Checking::MigrationTimesUnread { error } => {
                one(Warn, format!("could not read migration times from the database: {error}"))
            }
        }
    }
}
