//! Which database a command is about, as the Heroku CLI resolves it: a config var or
//! attachment name of the app (`DATABASE_URL`, `HEROKU_POSTGRESQL_TEAL_URL`, `TEAL`, an add-on
//! name), or a URL given directly (`--database-url`, `DATABASE_URL`).

use heroku_api::{AddonAttachment, Client};
use pg_locks::{ConnectOptions, SslMode};

use crate::app::AppArgs;
use crate::error::usage;

/// The database flags shared by tools that read Postgres.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DatabaseArgs {
    /// Connect to this URL instead of resolving the app's database [env: DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// Where the URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// `--database-url`.
    Flag,
    /// The `DATABASE_URL` environment variable.
    Env,
    /// A config var of a Heroku app.
    App {
        /// The app.
        app: String,
        /// The config var, e.g. `DATABASE_URL`.
        config_var: String,
        /// The add-on behind it, when an attachment names it.
        addon: Option<String>,
    },
}

/// A database to connect to.
#[derive(Debug, Clone)]
pub struct ResolvedDatabase {
    /// The URL (a secret: never print it).
    pub url: String,
    /// Where it came from.
    pub source: DatabaseSource,
    /// The database name in the URL.
    pub dbname: String,
    /// The host in the URL.
    pub host: String,
}

impl ResolvedDatabase {
    /// Connection options: a URL from a Heroku app defaults to `sslmode=require`, as Heroku
    /// Postgres expects; a URL typed by the user defaults to libpq's `prefer`.
    pub fn connect_options(&self, application_name: &str) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.url.clone(), application_name);
        if let DatabaseSource::App { app, config_var, .. } = &self.source {
            o.default_sslmode = SslMode::Require;
            o.when_full = Some(ways_out_when_full(app, config_var));
        }
        o
    }

    /// The app, when the database came from one. (See [`ways_out_when_full`].)
    pub fn app(&self) -> Option<&str> {
        match &self.source {
            DatabaseSource::App { app, .. } => Some(app),
            _ => None,
        }
    }

    /// What `--confirm` must equal: the app, or the database name when there is no app.
    pub fn confirm_name(&self) -> &str {
        self.app().unwrap_or(&self.dbname)
    }

    /// `DATABASE_URL of acme (postgresql-teal-12345)` / `--database-url (db on host)`.
    pub fn describe(&self) -> String {
        match &self.source {
            DatabaseSource::App { app, config_var, addon } => match addon {
                Some(a) => format!("{config_var} of {app} ({a})"),
                None => format!("{config_var} of {app}"),
            },
            DatabaseSource::Flag => format!("--database-url (database {} on {})", self.dbname, self.host),
            DatabaseSource::Env => {
                format!("DATABASE_URL from the environment (database {} on {})", self.dbname, self.host)
            }
        }
    }

    /// The arguments that select this database again, for printed commands (no secrets). A
    /// URL given directly is named as `"$DATABASE_URL"` when that variable holds it, written
    /// out when it carries no password, and otherwise `"$DATABASE_URL"` with
    /// [`ResolvedDatabase::fill_in`] saying what to set.
    pub fn selector_args(&self) -> String {
        match &self.source {
            DatabaseSource::App { app, config_var, .. } if config_var == "DATABASE_URL" => format!("-a {app}"),
            DatabaseSource::App { app, config_var, .. } => format!("{config_var} -a {app}"),
            DatabaseSource::Flag | DatabaseSource::Env if self.env_holds_url() || self.has_password() => {
                "--database-url \"$DATABASE_URL\"".to_string()
            }
            DatabaseSource::Flag | DatabaseSource::Env => format!("--database-url {}", crate::shell::quote(&self.url)),
        }
    }

    /// What a printed command needs that it cannot show: `DATABASE_URL` set to the URL given
    /// to `--database-url`, when this shell's `DATABASE_URL` is not that URL and the URL holds
    /// a password (never printed). `None` when the printed command runs as it stands.
    pub fn fill_in(&self) -> Option<String> {
        let needs = matches!(self.source, DatabaseSource::Flag) && !self.env_holds_url() && self.has_password();
        needs.then(|| {
            "before running a printed command, set DATABASE_URL to the URL you gave --database-url (it holds a password, so it is not printed): export DATABASE_URL='postgres://…'".to_string()
        })
    }

    fn env_holds_url(&self) -> bool {
        std::env::var("DATABASE_URL").is_ok_and(|v| v == self.url)
    }

    fn has_password(&self) -> bool {
        pg_locks::parse_url(&self.url, SslMode::Prefer)
            .map(|p| p.config.get_password().is_some_and(|pw| !pw.is_empty()))
            .unwrap_or(true)
    }
}

/// Resolves the database: `--database-url`; else an explicitly named app's config var (via
/// the API); else `DATABASE_URL` from the environment; else the repo's `heroku` remote's app.
pub fn resolve_database(
    name: Option<&str>,
    db: &DatabaseArgs,
    app: &AppArgs,
    api: impl FnOnce() -> anyhow::Result<Client>,
) -> anyhow::Result<ResolvedDatabase> {
    if let Some(url) = &db.database_url {
        if name.is_some() {
            return Err(usage("give either a DATABASE name (with -a APP) or --database-url, not both"));
        }
        crate::redact::register_url_password(url);
        return direct(url, DatabaseSource::Flag);
    }
    let env_url = std::env::var("DATABASE_URL").ok().filter(|s| !s.trim().is_empty());
    if app.is_explicit() || env_url.is_none() || name.is_some() {
        let app_name = app.resolve().map_err(|e| {
            if env_url.is_none() && !app.is_explicit() {
                usage(format!("{e}; or pass --database-url URL (or set DATABASE_URL) for any Postgres"))
            } else {
                e
            }
        })?;
        return from_app(&api()?, &app_name, name.unwrap_or("DATABASE_URL"));
    }
    let url = env_url.expect("checked above");
    crate::redact::register_url_password(&url);
    direct(&url, DatabaseSource::Env)
}

/// The database in config var `var` of `app`, from config vars already fetched (no API call).
/// `None` when the var is missing or not a Postgres URL.
pub fn from_config_vars(
    app: &str,
    vars: &std::collections::BTreeMap<String, String>,
    var: &str,
) -> Option<ResolvedDatabase> {
    let url = vars.get(var).filter(|u| is_postgres_url(u))?;
    crate::redact::register_url_password(url);
    let parsed = pg_locks::parse_url(url, SslMode::Require).ok()?;
    Some(ResolvedDatabase {
        url: url.clone(),
        source: DatabaseSource::App { app: app.to_string(), config_var: var.to_string(), addon: None },
        dbname: parsed.dbname,
        host: parsed.host,
    })
}

/// Another Postgres URL among the config vars than `used`, not a pooler's (its name has
/// no POOL) and not the same URL: the direct one beside a pooled `DATABASE_URL`.
pub fn direct_beside<'a>(vars: &'a std::collections::BTreeMap<String, String>, used: &str) -> Option<&'a str> {
    let used_value = vars.get(used);
    vars.iter()
        .filter(|(k, v)| {
            k.as_str() != used
                && !k.contains("POOL")
                && (v.starts_with("postgres://") || v.starts_with("postgresql://"))
                && Some(*v) != used_value
        })
        .map(|(k, _)| k.as_str())
        .next()
}

/// The database from `--database-url` when given.
pub fn from_flag(db: &DatabaseArgs) -> anyhow::Result<Option<ResolvedDatabase>> {
    match &db.database_url {
        Some(url) => {
            crate::redact::register_url_password(url);
            direct(url, DatabaseSource::Flag).map(Some)
        }
        None => Ok(None),
    }
}

/// `--database-url` when given, else the app's `DATABASE_URL` among `vars` (already read):
/// the database a tool checks beside its work on the app. `Ok(None)` when the app has none.
pub fn from_flag_or_app(
    db: &DatabaseArgs,
    app: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<Option<ResolvedDatabase>> {
    Ok(match from_flag(db)? {
        Some(d) => Some(d),
        None => from_config_vars(app, vars, "DATABASE_URL"),
    })
}

fn direct(url: &str, source: DatabaseSource) -> anyhow::Result<ResolvedDatabase> {
    let parsed = pg_locks::parse_url(url, SslMode::Prefer)?;
    Ok(ResolvedDatabase { url: url.to_string(), source, dbname: parsed.dbname, host: parsed.host })
}

/// Finds `name` among the app's config vars and attachments. Reads both at once.
pub fn from_app(client: &Client, app: &str, name: &str) -> anyhow::Result<ResolvedDatabase> {
    let (vars, attachments) = std::thread::scope(|s| {
        let att = s.spawn(|| client.addon_attachments(app));
        let vars = client.config_vars(app);
        (vars, crate::join(att))
    });
    let vars = vars?;
    // Attachments only help name things; a failure to list them must not stop the tool.
    let attachments = attachments.unwrap_or_default();
    for v in vars.values() {
        crate::redact::register_url_password(v);
    }
    let upper = name.trim().to_ascii_uppercase().replace('-', "_");
    let mut candidates = vec![upper.clone(), format!("{upper}_URL"), format!("HEROKU_POSTGRESQL_{upper}_URL")];
    // An add-on name: its attachment, preferring DATABASE when it is attached more than once.
    let mut by_addon: Vec<&AddonAttachment> =
        attachments.iter().filter(|a| a.addon.name.eq_ignore_ascii_case(name.trim())).collect();
    by_addon.sort_by_key(|a| (a.name != "DATABASE", a.name.clone()));
    if let Some(a) = by_addon.first() {
        candidates.insert(0, format!("{}_URL", a.name));
    }
    for key in candidates {
        if let Some(url) = vars.get(&key).filter(|u| is_postgres_url(u)) {
            let parsed = pg_locks::parse_url(url, SslMode::Require)?;
            let addon = addon_for(&attachments, &key);
            return Ok(ResolvedDatabase {
                url: url.clone(),
                source: DatabaseSource::App { app: app.to_string(), config_var: key, addon },
                dbname: parsed.dbname,
                host: parsed.host,
            });
        }
    }
    let known: Vec<String> = vars
        .iter()
        .filter(|(_, v)| is_postgres_url(v))
        .map(|(k, _)| match addon_for(&attachments, k) {
            Some(a) => format!("{k} ({a})"),
            None => k.clone(),
        })
        .collect();
    let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
    Err(usage(format!("no database `{name}` on {app}; its databases: {known}")))
}

fn addon_for(attachments: &[AddonAttachment], config_var: &str) -> Option<String> {
    let att = config_var.strip_suffix("_URL")?;
    attachments.iter().find(|a| a.name == att).map(|a| a.addon.name.clone())
}

fn is_postgres_url(v: &str) -> bool {
    v.starts_with("postgres://") || v.starts_with("postgresql://")
}

/// The ways out when every connection slot of an app's database is taken, as commands that run
/// as printed: `pg:killall` goes through Heroku's Data API, so it works with no free slot.
pub fn ways_out_when_full(app: &str, config_var: &str) -> String {
    let which = if config_var == "DATABASE_URL" { String::new() } else { format!(" {config_var}") };
    format!(
        "`heroku pg:killall{which} -a {app}` ends every connection (the app's included, which reconnects), scaling web and workers down frees theirs (`heroku ps:scale worker=0 -a {app}`), or wait for connections to close"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(url: &str) -> ResolvedDatabase {
        direct(url, DatabaseSource::Flag).expect("a valid URL")
    }

    /// A printed command runs as it stands: a URL without a password is written out (quoted
    /// for the shell); one with a password is `"$DATABASE_URL"` with what to set said beside it.
    /// (Run where DATABASE_URL is not the URL under test, as every test process here is.)
    #[test]
    fn a_url_given_by_flag_is_written_out_only_without_a_password() {
        let plain = flag("postgres://reporter@127.0.0.1:5432/app?sslmode=disable&connect_timeout=5");
        assert_eq!(
            plain.selector_args(),
            "--database-url 'postgres://reporter@127.0.0.1:5432/app?sslmode=disable&connect_timeout=5'"
        );
        assert_eq!(plain.fill_in(), None);
        let secret = flag("postgres://u:hunter2@127.0.0.1:5432/app");
        assert_eq!(secret.selector_args(), "--database-url \"$DATABASE_URL\"");
        let note = secret.fill_in().expect("says what to set");
        assert!(note.contains("set DATABASE_URL to the URL you gave --database-url") && !note.contains("hunter2"));
    }
}
