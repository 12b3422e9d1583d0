//! A real PgBouncer in front of a throwaway cluster, as Heroku's connection pooling and the
//! pgbouncer buildpack put one in front of Heroku Postgres: transaction pooling by default, no
//! `ignore_startup_parameters` (so the `options` startup parameter — `PGOPTIONS` — is refused
//! with "unsupported startup parameter: options"), and a small pool, so a server connection is
//! shared between clients and anything a session leaves on it shows.
//!
//! The binary: `PGBOUNCER` when set, else `pgbouncer` on PATH or in /usr/sbin (Debian's package;
//! scripts/test installs it when missing). Like PostgreSQL it refuses to run as root; then it
//! runs as `nobody`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::postgres::{free_port, nobody, unsafe_geteuid, SUPERUSER, SUPERUSER_PASSWORD};
use crate::PgCluster;

/// A running PgBouncer; stopped when dropped.
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// Where the pgbouncer binary is.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("PGBOUNCER") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
        .context("pgbouncer not found: scripts/test installs it (apt-get install pgbouncer), or set PGBOUNCER")
}

impl PgBouncer {
    /// Starts PgBouncer on a free port in front of `pg`, pooling `pool_mode` (`transaction`,
    /// `session`) with `pool_size` server connections per database, and waits until it accepts.
    /// A pool of one shares a server connection between every client (what shows a setting
    /// left on it); a pool smaller than the clients that hold a connection queues the rest in
    /// the pooler, as an exhausted pool does.
    pub fn start(pg: &PgCluster, pool_mode: &str, pool_size: u32) -> anyhow::Result<PgBouncer> {
        let bin = binary()?;
        let dir = tempfile::Builder::new().prefix("pgbouncer-").tempdir()?;
        let port = free_port()?;
        let ini = dir.path().join("pgbouncer.ini");
        // Clients authenticate to the pooler without a password check; the pooler logs in to the
        // server as the superuser (the server checks that password).
        std::fs::write(dir.path().join("userlist.txt"), format!("\"{SUPERUSER}\" \"\"\n"))?;
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={} user={SUPERUSER} password={SUPERUSER_PASSWORD}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n\
                 max_client_conn = 200\nlogfile = {}\npidfile = {}\nserver_login_retry = 1\n",
                pg.port(),
                dir.path().join("userlist.txt").display(),
                dir.path().join("pgbouncer.log").display(),
                dir.path().join("pgbouncer.pid").display(),
            ),
        )?;
        let mut cmd = Command::new(&bin);
        cmd.arg(&ini).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        if unsafe_geteuid() == 0 {
            use std::os::unix::process::CommandExt;
            let (uid, gid) = nobody()?;
            for f in [dir.path().to_path_buf(), ini.clone(), dir.path().join("userlist.txt")] {
                std::os::unix::fs::chown(&f, Some(uid), Some(gid))?;
            }
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let bouncer = PgBouncer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("pgbouncer did not listen on {port}: {}", bouncer.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(bouncer)
    }

    /// The pooler's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` through the pooler (what `DATABASE_CONNECTION_POOL_URL` is).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
