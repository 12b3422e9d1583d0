//! The sandbox the demo and the runbook tests run in: heroku-sim with the app `acme` whose
//! DATABASE_URL is a throwaway PostgreSQL, the rendezvous CA trusted, and the environment a
//! tool (or the real Heroku CLI) needs to talk to both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use heroku_sim::{scenario, Sim};

use crate::PgCluster;

/// A running sandbox. Everything stops when it is dropped.
pub struct Sandbox {
    /// The simulator.
    pub sim: Sim,
    /// The database.
    pub pg: PgCluster,
    dir: tempfile::TempDir,
    bins: PathBuf,
}

impl Sandbox {
    /// Starts the `stuck-release` world (acme: web×2, worker×1, release.2343) with a
    /// `users` table in the database behind acme's DATABASE_URL. `bins` holds the tools.
    pub fn start(bins: &Path) -> anyhow::Result<Sandbox> {
        let pg = PgCluster::start()?;
        pg.psql(
            "postgres",
            "CREATE TABLE users AS SELECT g AS id, 'user' || g AS name FROM generate_series(1, 20000) g",
        )?;
        let mut world = scenario("stuck-release").expect("known scenario");
        world.timing.stop_delay = Duration::from_millis(500);
        world.timing.start_delay = Duration::from_millis(300);
        world.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
        let sim = Sim::start(world)?;
        let dir = tempfile::Builder::new().prefix("sandbox-").tempdir()?;
        sim.write_ca(&dir.path().join("sim-ca.pem"))?;
        std::fs::create_dir_all(dir.path().join("home"))?;
        Ok(Sandbox { sim, pg, dir, bins: bins.to_path_buf() })
    }

    /// A scratch directory that lives as long as the sandbox.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment for a tool or the Heroku CLI in the sandbox.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut path = vec![self.bins.clone()];
        if let Ok(h) = crate::heroku_cli::heroku_bin() {
            path.push(h.parent().expect("bin dir").to_path_buf());
        }
        path.push(self.pg.client_bindir().to_path_buf());
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        let home = self.dir.path().join("home");
        vec![
            ("HEROKU_HOST".into(), self.sim.url()),
            ("HEROKU_API_KEY".into(), self.sim.token()),
            ("SSL_CERT_FILE".into(), self.dir.path().join("sim-ca.pem").display().to_string()),
            ("NODE_EXTRA_CA_CERTS".into(), self.dir.path().join("sim-ca.pem").display().to_string()),
            ("HOME".into(), home.display().to_string()),
            ("XDG_STATE_HOME".into(), home.join(".local/state").display().to_string()),
            ("HEROKU_SKIP_NEW_VERSION_CHECK".into(), "true".into()),
            ("PATH".into(), std::env::join_paths(path).expect("PATH").to_string_lossy().into_owned()),
        ]
    }

    /// A shell command line run in the sandbox's environment.
    pub fn sh(&self, line: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(line).env_remove("HEROKU_APP").env_remove("DATABASE_URL");
        for (k, v) in self.env() {
            c.env(k, v);
        }
        c
    }

    /// A migration command the one-off dyno runs: psql against its DATABASE_URL.
    pub fn psql_migration(&self, sql: &str) -> String {
        crate::acme::psql_migration(&self.pg, sql)
    }

    /// A Rails-shaped git repository: returns (dir, deployed commit, code-only commit, migration commit).
    pub fn rails_repo(&self) -> anyhow::Result<(PathBuf, String, String, String)> {
        let dir = self.dir.path().join("repo");
        std::fs::create_dir_all(dir.join("db/migrate"))?;
        std::fs::create_dir_all(dir.join("app/models"))?;
        let git = |args: &[&str]| -> anyhow::Result<String> {
            let out = Command::new("git")
                .args(args)
                .current_dir(&dir)
                .env("GIT_AUTHOR_NAME", "demo")
                .env("GIT_AUTHOR_EMAIL", "demo@example.com")
                .env("GIT_COMMITTER_NAME", "demo")
                .env("GIT_COMMITTER_EMAIL", "demo@example.com")
                .output()?;
            anyhow::ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        git(&["init", "-q"])?;
        std::fs::write(dir.join("Gemfile"), "source 'https://rubygems.org'\n")?;
        // The app's migration command, as the slug would carry it: runs the pending
        // migration's SQL against DATABASE_URL through psql (PGOPTIONS and PGAPPNAME apply).
        std::fs::create_dir_all(dir.join("bin"))?;
        let rails = format!(
            "#!/bin/sh\n# Stand-in for `bin/rails db:migrate` in the sandbox.\necho \"== AddNickname: migrating ==\"\n{} \"$DATABASE_URL\" -X -q -v ON_ERROR_STOP=1 -c \"ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text\" || exit 1\necho \"== AddNickname: migrated ==\"\n",
            self.pg.psql_path().display()
        );
        std::fs::write(dir.join("bin/rails"), rails)?;
        std::fs::set_permissions(dir.join("bin/rails"), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::write(
            dir.join("Procfile"),
            "web: bundle exec puma\nworker: bundle exec sidekiq\nrelease: bin/rails db:migrate\n",
        )?;
        std::fs::write(dir.join("db/migrate/20260101_create_users.rb"), "class CreateUsers; end\n")?;
        git(&["add", "-A"])?;
        git(&["commit", "-qm", "deployed"])?;
        let deployed = git(&["rev-parse", "HEAD"])?;
        std::fs::write(dir.join("app/models/user.rb"), "class User; end\n")?;
        git(&["add", "-A"])?;
        git(&["commit", "-qm", "code only"])?;
        let code_only = git(&["rev-parse", "HEAD"])?;
        std::fs::write(dir.join("db/migrate/20261122_add_nickname.rb"), "class AddNickname; end\n")?;
        git(&["add", "-A"])?;
        git(&["commit", "-qm", "add a migration"])?;
        let migration = git(&["rev-parse", "HEAD"])?;
        // One-off dynos run in the app's code, as on the platform.
        let slug = dir.clone();
        self.sim.with(|w| w.slug.dir = Some(slug));
        Ok((dir, deployed, code_only, migration))
    }
}
