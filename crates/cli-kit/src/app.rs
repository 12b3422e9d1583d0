//! Which app a command is about: `-a/--app`, `HEROKU_APP`, `-r/--remote`, or the repo's `heroku` remote.

use std::process::Command;

use crate::error::usage;

/// The app flags every tool takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AppArgs {
    /// App to act on [env: HEROKU_APP]
    #[arg(short = 'a', long, value_name = "APP")]
    pub app: Option<String>,
    /// Git remote whose URL names the app (default: the `heroku` remote)
    #[arg(short = 'r', long, value_name = "REMOTE")]
    pub remote: Option<String>,
}

impl AppArgs {
    /// True when the user named an app (flag, `HEROKU_APP` or `-r`), as opposed to one that
    /// would only come from the repo's `heroku` remote.
    pub fn is_explicit(&self) -> bool {
        self.app.is_some() || self.remote.is_some() || std::env::var("HEROKU_APP").is_ok_and(|s| !s.trim().is_empty())
    }

    /// Resolves and validates the app name, in the order the README's conventions give (and the
    /// Heroku CLI uses): `-a`, `HEROKU_APP`, `-r REMOTE`, the repository's `heroku` remote.
    pub fn resolve(&self) -> anyhow::Result<String> {
        let env_app = std::env::var("HEROKU_APP").ok().filter(|s| !s.trim().is_empty());
        let name = if let Some(a) = &self.app {
            a.clone()
        } else if let Some(a) = env_app {
            a
        } else if let Some(remote) = &self.remote {
            app_from_remote(remote)?.ok_or_else(|| {
                usage(format!("git remote `{remote}` does not exist or is not a Heroku git URL; pass -a APP"))
            })?
        } else if let Some(a) = app_from_remote("heroku")? {
            a
        } else {
            return Err(usage(
                "no app specified: pass -a APP, set HEROKU_APP, pass -r REMOTE, or run inside a git repo with a `heroku` remote",
            ));
        };
        validate_app_name(&name)?;
        Ok(name)
    }
}

/// Heroku app names: lower-case letters, digits and dashes, starting with a letter, 3–30 long.
/// App UUIDs are accepted too.
pub fn validate_app_name(name: &str) -> anyhow::Result<()> {
    let b = name.as_bytes();
    let is_name = (3..=30).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    let is_uuid = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    if is_name || is_uuid {
        Ok(())
    } else {
        Err(usage(format!(
            "`{name}` is not a valid app name: use 3-30 lower-case letters, digits and dashes, starting with a letter"
        )))
    }
}

/// The app named by a git remote's URL, `None` when the remote is missing or not Heroku's.
pub fn app_from_remote(remote: &str) -> anyhow::Result<Option<String>> {
    let out = Command::new("git").args(["config", "--get", &format!("remote.{remote}.url")]).output();
    let Ok(out) = out else { return Ok(None) };
    if !out.status.success() {
        return Ok(None);
    }
    Ok(app_from_git_url(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `https://git.heroku.com/acme.git`, `ssh://git@heroku.com/acme.git`, `git@heroku.com:acme.git` → `acme`.
pub fn app_from_git_url(url: &str) -> Option<String> {
    let rest = if let Some(r) =
        url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).or_else(|| url.strip_prefix("ssh://"))
    {
        r
    } else {
        url
    };
    let rest = rest.rsplit_once('@').map(|x| x.1).unwrap_or(rest);
    let (host, path) = rest.split_once(['/', ':'])?;
    let host = host.split(':').next().unwrap_or(host);
    if !(host == "heroku.com" || host.ends_with(".heroku.com") || host.starts_with("git.")) {
        return None;
    }
    // `ssh://git@heroku.com:22/acme.git` leaves a port before the name.
    let path = path.rsplit('/').next().unwrap_or(path);
    let name = path.strip_suffix(".git").unwrap_or(path);
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heroku_git_urls() {
        assert_eq!(app_from_git_url("https://git.heroku.com/acme.git").as_deref(), Some("acme"));
        assert_eq!(app_from_git_url("git@heroku.com:acme-prod.git").as_deref(), Some("acme-prod"));
        assert_eq!(app_from_git_url("ssh://git@heroku.com/acme.git").as_deref(), Some("acme"));
        assert_eq!(app_from_git_url("https://github.com/acme/acme.git"), None);
    }

    #[test]
    fn validates_names() {
        assert!(validate_app_name("acme").is_ok());
        assert!(validate_app_name("acme-staging-2").is_ok());
        assert!(validate_app_name("3f1c9a0e-0000-4000-8000-00000000a001").is_ok());
        for bad in ["Acme", "a", "acme_prod", "-acme", "acme-", "acme/../x", ""] {
            let err = validate_app_name(bad).unwrap_err();
            assert_eq!(crate::error::exit_for(&err), crate::Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn flag_beats_env_and_remote_and_all_missing_is_a_usage_error() {
        // The environment is process-wide; keep every env-touching assertion in this one test.
        let dir = tempfile::tempdir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        std::env::remove_var("HEROKU_APP");
        let args = AppArgs { app: Some("from-flag".into()), remote: None };
        std::env::set_var("HEROKU_APP", "from-env");
        assert_eq!(args.resolve().unwrap(), "from-flag");
        assert_eq!(AppArgs::default().resolve().unwrap(), "from-env");
        std::env::remove_var("HEROKU_APP");
        let err = AppArgs::default().resolve().unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::Exit::Usage);
        assert!(err.to_string().contains("-a APP"), "{err}");
        let ok = Command::new("git").args(["init", "-q"]).status().unwrap().success()
            && Command::new("git")
                .args(["remote", "add", "heroku", "https://git.heroku.com/from-remote.git"])
                .status()
                .unwrap()
                .success()
            && Command::new("git")
                .args(["remote", "add", "staging", "git@heroku.com:from-staging.git"])
                .status()
                .unwrap()
                .success();
        assert!(ok, "git setup failed");
        assert_eq!(AppArgs::default().resolve().unwrap(), "from-remote");
        assert_eq!(AppArgs { app: None, remote: Some("staging".into()) }.resolve().unwrap(), "from-staging");
        assert!(AppArgs { app: None, remote: Some("nope".into()) }.resolve().is_err());
    }
}
