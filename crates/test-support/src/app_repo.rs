//! An app's git repository as a user has one: its `heroku` remote is the platform's URL
//! (`https://git.heroku.com/APP.git`), sent to heroku-sim's repository by git's own
//! `url.<base>.insteadOf`, so a real `git push heroku main` deploys to the simulator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use heroku_sim::Sim;

/// A repository with a `heroku` remote for `app` on `sim`.
pub struct AppRepo {
    dir: tempfile::TempDir,
}

impl AppRepo {
    /// A repository with one commit holding `Procfile` (none when `procfile` is None).
    pub fn new(sim: &Sim, app: &str, procfile: Option<&str>) -> anyhow::Result<AppRepo> {
        let repo = AppRepo { dir: tempfile::tempdir()? };
        repo.git(&["init", "--quiet", "--initial-branch=main"])?;
        std::fs::write(repo.path().join("app.rb"), "puts 'hello'\n")?;
        if let Some(p) = procfile {
            std::fs::write(repo.path().join("Procfile"), p)?;
        }
        repo.git(&["add", "."])?;
        repo.git(&["commit", "--quiet", "-m", "add users.nickname"])?;
        sim.git_remote(app)?;
        let (key, value) = sim.git_insteadof();
        repo.git(&["config", &key, &value])?;
        repo.git(&["remote", "add", "heroku", &format!("https://git.heroku.com/{app}.git")])?;
        Ok(repo)
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `git ARGS` in the repository with a fixed identity and no user or system config.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path());
        c
    }

    /// Runs `git ARGS`; an error when it fails.
    pub fn git(&self, args: &[&str]) -> anyhow::Result<Output> {
        let out = self.command(args).output()?;
        anyhow::ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(out)
    }

    /// Replaces the Procfile and commits.
    pub fn commit_procfile(&self, procfile: &str) -> anyhow::Result<()> {
        std::fs::write(self.path().join("Procfile"), procfile)?;
        self.git(&["commit", "--quiet", "-am", "change the Procfile"])?;
        Ok(())
    }

    /// The HEAD commit.
    pub fn head(&self) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&self.git(&["rev-parse", "HEAD"])?.stdout).trim().to_string())
    }

    /// The directory, for a tool run from it.
    pub fn dir(&self) -> PathBuf {
        self.path().to_path_buf()
    }
}
