//! A throwaway PostgreSQL cluster: a copy of a data directory initialised once per server
//! build (under `target/pg-templates/`, or the system's temporary directory when the tests run
//! as root), started with pg_ctl on a free loopback port in a directory of its own (in memory
//! when the machine has `/dev/shm`: see [`clusters_dir`]), stopped and removed when dropped
//! (also when a test panics).
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI containers) the server
//! runs as `nobody` and its directory is handed to that user.
//!
//! `PG_BINDIR` picks the server (initdb, pg_ctl, postgres): scripts/test points it at each
//! supported major version in turn. A server-only directory (no psql) is fine: psql comes from
//! the system's PostgreSQL, which speaks to every server version, or, when the system has no
//! PostgreSQL client, from `sandbox-psql` (this crate's stand-in, built beside the tools).
//!
//! With no `PG_BINDIR` and no server on the system, the pinned server builds in
//! `tests/pg-versions` are used (what `scripts/demo` installs on a fresh machine).
//! `PG_IGNORE_SYSTEM=1` pretends the system has no PostgreSQL at all, server or client, so
//! scripts/test can keep that path tested on a machine that has one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};

/// The superuser's name in every test cluster.
pub const SUPERUSER: &str = "postgres";
/// The superuser's password in every test cluster.
pub const SUPERUSER_PASSWORD: &str = "test-superuser-pw";

/// A running throwaway cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    psql: PathBuf,
    port: u16,
    max_connections: u32,
    run_as: Option<(u32, u32)>,
}

impl PgCluster {
    /// Starts a cluster with room for 100 connections.
    pub fn start() -> anyhow::Result<PgCluster> {
        PgCluster::start_with_max_connections(100)
    }

    /// Starts a cluster with room for `max_connections` sessions (benchmarks need hundreds).
    pub fn start_with_max_connections(max_connections: u32) -> anyhow::Result<PgCluster> {
        PgCluster::start_from(&find_bindir()?, max_connections)
    }

    /// Starts a cluster from the server binaries in `bindir` (a version other than the
    /// default, e.g. one of tests/pg-versions).
    pub fn start_from(bindir: &Path, max_connections: u32) -> anyhow::Result<PgCluster> {
        let bindir = bindir.to_path_buf();
        let psql = find_psql(&bindir)?;
        let run_as = if unsafe_geteuid() == 0 { Some(nobody()?) } else { None };
        let dir = tempfile::Builder::new()
            .prefix("pg-test-")
            .tempdir_in(clusters_dir())
            .context("creating the cluster directory")?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("handing the cluster directory to nobody")?;
        }
        let template = template_for(&bindir, run_as)?;
        let copied = Command::new("cp").arg("-a").arg(template.join("data")).arg(dir.path().join("data")).status()?;
        anyhow::ensure!(copied.success(), "copying the cluster template {} failed", template.display());
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            if launch(&bindir, dir.path(), port, max_connections, run_as)? {
                return Ok(PgCluster { dir, bindir, psql, port, max_connections, run_as });
            }
            last_err = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        }
        bail!("pg_ctl start failed 5 times; last server log:\n{last_err}")
    }

    /// Loads `pg_stat_statements` (as Heroku Postgres has it on production plans): preloaded by
    /// a restart on the same port, and created in database `db`. Statements run after this are
    /// counted.
    pub fn load_pg_stat_statements(&self, db: &str) -> anyhow::Result<()> {
        self.psql("postgres", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")?;
        let data = self.dir.path().join("data");
        let out = run(
            Command::new(self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
            self.run_as,
        )?;
        anyhow::ensure!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
        anyhow::ensure!(
            launch(&self.bindir, self.dir.path(), self.port, self.max_connections, self.run_as)?,
            "the server did not come back with pg_stat_statements preloaded"
        );
        self.psql(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
        Ok(())
    }

    /// A streaming replica of this cluster (a follower, in Heroku's words), in recovery and
    /// connected to this primary when this returns. Made from a cold copy of the primary's
    /// data directory (the primary stops for a moment), so no pg_basebackup of a matching
    /// version is needed: every supported server version can have one.
    pub fn start_follower(&self) -> anyhow::Result<PgCluster> {
        let data = self.dir.path().join("data");
        let ctl = |args: &[&str]| -> anyhow::Result<()> {
            let out = run(Command::new(self.bindir.join("pg_ctl")).arg("-D").arg(&data).args(args), self.run_as)?;
            anyhow::ensure!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Ok(())
        };
        ctl(&["-m", "fast", "-w", "-t", "60", "stop"])?;
        let dir = tempfile::Builder::new().prefix("pg-follower-").tempdir_in(clusters_dir())?;
        let copied = Command::new("cp").arg("-a").arg(&data).arg(dir.path().join("data")).status()?;
        anyhow::ensure!(copied.success(), "copying the primary's data directory failed");
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        anyhow::ensure!(
            launch(&self.bindir, self.dir.path(), self.port, self.max_connections, self.run_as)?,
            "the primary did not come back after the copy"
        );
        let fdata = dir.path().join("data");
        std::fs::write(fdata.join("standby.signal"), "")?;
        let mut auto = std::fs::read_to_string(fdata.join("postgresql.auto.conf")).unwrap_or_default();
        auto.push_str(&format!(
            "primary_conninfo = 'host=127.0.0.1 port={} user={SUPERUSER} password={SUPERUSER_PASSWORD} application_name=follower'\n",
            self.port
        ));
        std::fs::write(fdata.join("postgresql.auto.conf"), auto)?;
        if let Some((uid, gid)) = self.run_as {
            for f in ["standby.signal", "postgresql.auto.conf"] {
                std::os::unix::fs::chown(fdata.join(f), Some(uid), Some(gid))?;
            }
        }
        for _ in 0..5 {
            let port = free_port()?;
            if launch(&self.bindir, dir.path(), port, self.max_connections, self.run_as)? {
                let follower = PgCluster {
                    dir,
                    bindir: self.bindir.clone(),
                    psql: self.psql.clone(),
                    port,
                    max_connections: self.max_connections,
                    run_as: self.run_as,
                };
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while follower
                    .psql("postgres", "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver)")
                    .ok()
                    .as_deref()
                    != Some("t")
                {
                    anyhow::ensure!(
                        std::time::Instant::now() < deadline,
                        "the follower never streamed from the primary"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                return Ok(follower);
            }
        }
        bail!(
            "the follower did not start: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for the superuser on database `db`.
    pub fn superuser_url(&self, db: &str) -> String {
        self.url(SUPERUSER, SUPERUSER_PASSWORD, db)
    }

    /// A URL for `user`/`password` on database `db` (sslmode=disable: the test server has no TLS).
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgres://{user}:{password}@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// Runs SQL as the superuser and returns the rows as `psql -A -t` prints them (fields
    /// joined with `|`, one row per line, trimmed). A connection of its own, through the
    /// driver: no client binary is needed.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let mut client = self.connect(db)?;
        let messages = client.simple_query(sql).map_err(|e| {
            anyhow::anyhow!(
                "psql failed: {}",
                e.as_db_error().map(|d| d.message().to_string()).unwrap_or(e.to_string())
            )
        })?;
        let rows: Vec<String> = messages
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).unwrap_or("")).collect::<Vec<_>>().join("|"))
                }
                _ => None,
            })
            .collect();
        Ok(rows.join("\n").trim().to_string())
    }

    fn connect(&self, db: &str) -> anyhow::Result<postgres::Client> {
        let mut config = postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(SUPERUSER_PASSWORD)
            .dbname(db)
            .connect_timeout(std::time::Duration::from_secs(5));
        config.connect(postgres::NoTls).context("connecting to the test cluster")
    }

    /// Creates an ordinary login role (no superuser, no createrole) and returns its URL on `db`.
    pub fn create_role(&self, name: &str, password: &str, db: &str) -> anyhow::Result<String> {
        self.psql(
            "postgres",
            &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEROLE NOCREATEDB"),
        )?;
        self.psql(db, &format!("GRANT ALL ON SCHEMA public TO {name}"))?;
        Ok(self.url(name, password, db))
    }

    /// The directory holding the data, the log and the socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server binaries' directory.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The directory holding the psql of [`PgCluster::psql_path`].
    pub fn client_bindir(&self) -> &Path {
        self.psql.parent().unwrap_or(Path::new("/"))
    }

    /// The psql to talk to this cluster with: the server's own, the system's, or `sandbox-psql`.
    pub fn psql_path(&self) -> PathBuf {
        self.psql.clone()
    }

    /// The server's major version (12, 13, …), asked of the running server.
    pub fn server_major(&self) -> anyhow::Result<u32> {
        let num: u32 = self.psql("postgres", "SHOW server_version_num")?.parse().context("server_version_num")?;
        Ok(num / 10_000)
    }

    /// Whether the postmaster is accepting connections.
    pub fn is_running(&self) -> bool {
        self.connect("postgres").is_ok()
    }

    fn stop(&self) {
        let _ = run(
            Command::new(self.bindir.join("pg_ctl")).arg("-D").arg(self.dir.path().join("data")).args([
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ]),
            self.run_as,
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A freshly initialised data directory for the server in `bindir`, made once per server
/// build under `target/pg-templates/` and copied for each cluster: a copy takes a tenth of an
/// initdb, and the version matrix starts hundreds of clusters. Made in a directory of its own
/// and renamed into place, so concurrent test processes never see half of one.
fn template_for(bindir: &Path, run_as: Option<(u32, u32)>) -> anyhow::Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let initdb = bindir.join("initdb");
    let meta = std::fs::metadata(&initdb).with_context(|| format!("reading {}", initdb.display()))?;
    let mut key = std::collections::hash_map::DefaultHasher::new();
    (std::fs::canonicalize(bindir)?, meta.len(), meta.modified().ok(), run_as).hash(&mut key);
    let root = templates_dir(run_as);
    let done = root.join(format!("{:016x}", key.finish()));
    if done.join("data/PG_VERSION").is_file() {
        return Ok(done);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let making = tempfile::Builder::new().prefix("making-").tempdir_in(&root)?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(making.path(), Some(uid), Some(gid))
            .context("handing the template directory to nobody")?;
    }
    let pwfile = making.path().join("pw");
    std::fs::write(&pwfile, SUPERUSER_PASSWORD)?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
    }
    let out = run(
        Command::new(&initdb)
            .arg("-D")
            .arg(making.path().join("data"))
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display())),
        run_as,
    )?;
    if !out.status.success() {
        bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Another process may have finished first: its template is as good as this one.
    let making = making.keep();
    if std::fs::rename(&making, &done).is_err() {
        let _ = std::fs::remove_dir_all(&making);
    }
    anyhow::ensure!(done.join("data/PG_VERSION").is_file(), "no cluster template at {}", done.display());
    Ok(done)
}

/// Where the templates live: under `target/` (`target/pg-templates`); when the server runs as
/// `nobody` (tests run as root), in the system's temporary directory instead, which `nobody`
/// can reach whatever the checkout's permissions (a clone under a private temporary directory
/// is not traversable by anyone else).
fn templates_dir(run_as: Option<(u32, u32)>) -> PathBuf {
    match run_as {
        Some(_) => std::env::temp_dir().join("heroku-deploy-safety-pg-templates"),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join("target"))
            .join("pg-templates"),
    }
}

/// Where each cluster's directory is made: in memory (`/dev/shm`) when the machine has it. A
/// cluster is a copy of about a thousand files, and creating a file on the test machines'
/// disk costs about a millisecond (a copy took 0.7 s there, 0.06 s in memory); the version
/// matrix makes hundreds. `PG_TEST_CLUSTERS_DIR` chooses another place.
pub fn clusters_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_TEST_CLUSTERS_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = std::fs::metadata(shm).map(|m| m.is_dir() && !m.permissions().readonly()).unwrap_or(false);
    if writable && tempfile::Builder::new().prefix("pg-probe-").tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn run(cmd: &mut Command, run_as: Option<(u32, u32)>) -> anyhow::Result<Output> {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        // Also out of the test's own directory, which `nobody` may not be allowed to enter.
        cmd.uid(uid).gid(gid).env("HOME", "/tmp").current_dir("/");
    }
    cmd.output().with_context(|| format!("running {:?}", cmd.get_program()))
}

/// Finds the server binaries: `PG_BINDIR`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, `initdb` on PATH, then the pinned builds of tests/pg-versions.
pub fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR").map(PathBuf::from) {
        if has_server(&dir) {
            return Ok(dir);
        }
        bail!("PG_BINDIR={} has no initdb/pg_ctl", dir.display());
    }
    system_bindirs().into_iter().chain(pinned_bindirs()).find(|p| has_server(p)).context(
        "no PostgreSQL server binaries found (initdb, pg_ctl): run scripts/test or scripts/demo, which install them, or set PG_BINDIR",
    )
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// The pinned server builds scripts/test and scripts/demo install from npm, newest first.
pub fn pinned_bindirs() -> Vec<PathBuf> {
    let modules = crate::workspace_root().join("tests/pg-versions/node_modules");
    ["pg17", "pg16", "pg14", "pg13", "pg12"].iter().map(|v| modules.join(v).join("native/bin")).collect()
}

/// Finds psql: beside the server if it ships one, the system's, else the `sandbox-psql`
/// stand-in built beside the running binary.
pub fn find_psql(server: &Path) -> anyhow::Result<PathBuf> {
    let real =
        std::iter::once(server.to_path_buf()).chain(system_bindirs()).map(|d| d.join("psql")).find(|p| p.is_file());
    real.or_else(sandbox_psql).context(
        "no psql found and no sandbox-psql beside this binary: build the workspace's binaries (cargo build --bins)",
    )
}

/// `sandbox-psql` in the directory of the running binary or its parent (tests run from
/// `target/debug/deps`, the demo from `target/debug`).
fn sandbox_psql() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().skip(1).take(2).map(|d| d.join("sandbox-psql")).find(|p| p.is_file())
}

/// Where the system's PostgreSQL binaries may be, best first: `pg_config --bindir`, each
/// `/usr/lib/postgresql/*/bin` newest first (Debian), then every PATH entry. None at all with
/// `PG_IGNORE_SYSTEM=1`.
fn system_bindirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if std::env::var_os("PG_IGNORE_SYSTEM").is_some_and(|v| v == "1") {
        return dirs;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versioned.sort();
    dirs.extend(versioned.into_iter().rev().map(|(_, p)| p));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// Starts the server of the cluster in `dir` (its `data`) on `port`; false when it did not come up.
fn launch(
    bindir: &Path,
    dir: &Path,
    port: u16,
    max_connections: u32,
    run_as: Option<(u32, u32)>,
) -> anyhow::Result<bool> {
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections={max_connections} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB",
        dir.display()
    );
    let out = run(
        Command::new(bindir.join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]),
        run_as,
    )?;
    Ok(out.status.success())
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub(crate) fn nobody() -> anyhow::Result<(u32, u32)> {
    let name = std::ffi::CString::new("nobody").expect("no NUL");
    // SAFETY: getpwnam returns NULL or a pointer to static storage valid until the next call;
    // we copy the two fields out immediately.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!("running as root and there is no `nobody` user for PostgreSQL to run as");
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}
