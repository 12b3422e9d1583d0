//! What the guard settles before anything runs, all of it checkable without side effects: the
//! command can be started, the database URL is there, which URL the watch reads (the direct
//! one beside a pooled `DATABASE_URL`), and the names the command's sessions will carry.

use std::collections::BTreeMap;

use cli_kit::usage;
use pg_locks::{ConnectOptions, SslMode, MIGRATION_APP_PREFIX};

use crate::cli::Args;

/// The application_name the guard's own connection carries (never claimed as the child's).
pub const OWN_NAME: &str = "migrate-guard";

/// Everything settled before the start.
pub struct Setup {
    /// argv of the migration.
    pub argv: Vec<String>,
    /// `release.2343` (`$DYNO`), or `local.<pid>` outside a dyno.
    pub dyno: String,
    /// The application_name the command's sessions carry.
    pub session_name: String,
    /// The config var the command reads its database from.
    pub database_var: String,
    /// Its URL (a secret).
    pub url: String,
    /// The config vars, for the direct URL beside a pooled one.
    pub vars: BTreeMap<String, String>,
    /// `HEROKU_APP_NAME` when the dyno metadata labs feature provides it (for printed commands).
    pub app: Option<String>,
    /// `--plan`: the migration's lock plan.
    pub plan: Option<migration_policy::plan_file::PlanFile>,
}

impl Setup {
    /// Reads the environment and checks the command; errors are usage errors (exit 2) and
    /// nothing has started.
    pub fn prepare(args: &Args) -> anyhow::Result<Setup> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Setup::from_env(args, vars)
    }

    /// [`Setup::prepare`] over given variables.
    pub fn from_env(args: &Args, vars: BTreeMap<String, String>) -> anyhow::Result<Setup> {
        let Some(program) = args.command.first() else {
            return Err(usage(
                "no migration command after `--`: e.g. migrate-guard --lock-wait 5s -- bundle exec rake db:migrate",
            ));
        };
        if program.trim().is_empty() {
            return Err(usage("the migration command after `--` is empty; give the command and its arguments"));
        }
        if cli_kit::program::resolve(program).is_none() {
            return Err(usage(format!(
                "cannot start `{}`: no executable of that name on PATH (or the path is not an executable file); nothing was started",
                cli_kit::printable(program)
            )));
        }
        let var = args.database_var.trim();
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(usage(format!(
                "--database-var `{}`: give the name of a config var, e.g. DATABASE_URL",
                cli_kit::printable(var)
            )));
        }
        let url = match vars.get(var).map(|u| u.trim()).filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => {
                return Err(usage(format!(
                    "{var} is not set in this dyno: attach a database (heroku addons:create heroku-postgresql) or name the config var that holds its URL with --database-var VAR; nothing was started"
                )))
            }
        };
        cli_kit::register_url_password(&url);
        pg_locks::parse_url(&url, SslMode::Require)
            .map_err(|e| usage(format!("{var} is not a Postgres URL ({e}); nothing was started")))?;
        let dyno = vars.get("DYNO").cloned().unwrap_or_else(|| format!("local.{}", std::process::id()));
        // In a release dyno the platform stops the phase after one hour: a later deadline would
        // never act. (A one-off dyno has no such limit.)
        if dyno.starts_with("release.") && args.deadline > cli_kit::RELEASE_PHASE_LIMIT {
            return Err(usage(format!(
                "--deadline {}: past the platform's limit, which stops a release phase after 1h, so it would never act; use at most 60m; nothing was started",
                cli_kit::format_duration(args.deadline)
            )));
        }
        // A run that already names its sessions as a migration's (migrate-restart's one-off)
        // keeps that name, so the outside watch and this one claim the same sessions.
        let session_name = vars
            .get("PGAPPNAME")
            .filter(|n| n.starts_with(MIGRATION_APP_PREFIX) && n.len() > MIGRATION_APP_PREFIX.len())
            .cloned()
            .unwrap_or_else(|| format!("{MIGRATION_APP_PREFIX}{dyno}"));
        let plan = args.plan.as_deref().map(migration_policy::plan_file::read).transpose()?;
        Ok(Setup {
            plan,
            argv: args.command.clone(),
            dyno,
            session_name,
            database_var: var.to_string(),
            url,
            app: vars.get("HEROKU_APP_NAME").cloned(),
            vars,
        })
    }

    /// Connection options for `url` under the guard's own name. A dyno reaches Heroku Postgres
    /// with `sslmode=require`, as the platform's URLs expect; a URL may say otherwise.
    pub fn connect_options(&self, url: &str) -> ConnectOptions {
        let mut o = ConnectOptions::new(url.to_string(), OWN_NAME);
        o.default_sslmode = SslMode::Require;
        // Inside the dyno the app is known when the dyno metadata feature sets it.
        o.when_full = self.app.as_deref().map(|app| cli_kit::database::ways_out_when_full(app, &self.database_var));
        o
    }

    /// The direct URL's config var beside the command's, when the command's goes through a pooler.
    pub fn direct_var(&self) -> Option<&str> {
        cli_kit::database::direct_beside(&self.vars, &self.database_var)
    }

    /// `PGOPTIONS` for the command: what it already had, then the lock timeout.
    pub fn pgoptions(&self, lock_wait: std::time::Duration) -> String {
        let ours = migration_policy::pgoptions(lock_wait, None);
        match self.vars.get("PGOPTIONS").map(|s| s.trim()).filter(|s| !s.is_empty()) {
            Some(theirs) => format!("{theirs} {ours}"),
            None => ours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["migrate-guard"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(a: &Args, vars: BTreeMap<String, String>) -> String {
        let e = Setup::from_env(a, vars).err().expect("an error");
        assert_eq!(cli_kit::exit_for(&e), cli_kit::Exit::Usage);
        cli_kit::one_line(&e)
    }

    #[test]
    fn sessions_are_named_for_the_dyno_unless_already_a_migrations() {
        let a = args(&["--", "true"]);
        let s = Setup::from_env(&a, env(&[("DATABASE_URL", "postgres://u:pw@h/d"), ("DYNO", "release.7")])).unwrap();
        assert_eq!(s.session_name, "migrate-restart/release.7");
        let s = Setup::from_env(
            &a,
            env(&[("DATABASE_URL", "postgres://u:pw@h/d"), ("DYNO", "run.1"), ("PGAPPNAME", "migrate-restart/run.1")]),
        )
        .unwrap();
        assert_eq!(s.session_name, "migrate-restart/run.1");
        let s = Setup::from_env(
            &a,
            env(&[("DATABASE_URL", "postgres://u:pw@h/d"), ("DYNO", "run.1"), ("PGAPPNAME", "rails")]),
        )
        .unwrap();
        assert_eq!(s.session_name, "migrate-restart/run.1", "an app's own name is replaced: it proves nothing");
    }

    #[test]
    fn bad_input_is_one_usage_line() {
        let db = || env(&[("DATABASE_URL", "postgres://u:secretpw@h/d")]);
        assert!(err(&args(&[]), db()).contains("no migration command after `--`"));
        assert!(err(&args(&["--", ""]), db()).contains("is empty"));
        assert!(err(&args(&["--", "/nonexistent/migrate"]), db()).contains("cannot start `/nonexistent/migrate`"));
        assert!(err(&args(&["--", "true"]), env(&[])).contains("DATABASE_URL is not set in this dyno"));
        let named = args(&["--database-var", "PRIMARY_URL", "--", "true"]);
        assert!(err(&named, db()).contains("PRIMARY_URL is not set"));
        let e = err(&args(&["--", "true"]), env(&[("DATABASE_URL", "mysql://u:secretpw@h/d")]));
        assert!(e.contains("not a Postgres URL") && !e.contains("secretpw"), "{e}");
    }

    #[test]
    fn pgoptions_keep_what_the_app_set() {
        let a = args(&["--", "true"]);
        let s = Setup::from_env(&a, env(&[("DATABASE_URL", "postgres://h/d"), ("PGOPTIONS", "-c search_path=app")]))
            .unwrap();
        assert_eq!(s.pgoptions(std::time::Duration::from_secs(5)), "-c search_path=app -c lock_timeout=5000");
    }
}
