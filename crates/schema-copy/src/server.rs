//! A throwaway local PostgreSQL server for the scratch copy: initialised in a temporary
//! directory, listening on 127.0.0.1 only, on a free port, with a random superuser password;
//! stopped and removed when dropped.
//!
//! The server binaries come from this machine and must be of production's major version (a
//! dump of a newer server's schema may use what an older one lacks; the lock levels of some
//! statements changed between versions): `PG_BINDIR` when set (and nothing else), else Debian's
//! `/usr/lib/postgresql/MAJOR/bin`, Homebrew's and Postgres.app's directory of that major, then
//! `pg_config --bindir`, then `initdb` on PATH. PostgreSQL refuses to run as root: as root, the
//! server runs as `nobody`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The superuser of the scratch server.
const SUPERUSER: &str = "postgres";

/// A running scratch server.
pub struct ScratchServer {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    password: String,
    run_as: Option<(u32, u32)>,
    stopped: bool,
}

/// The major version a server directory's `initdb` is (`initdb (PostgreSQL) 15.4` → 15).
fn major_of(bindir: &Path) -> Option<u32> {
    let out = Command::new(bindir.join("initdb")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split("(PostgreSQL)").nth(1)?.trim_start();
    version.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() && dir.join("postgres").is_file()
}

/// Where this machine has the server binaries of `major`, or what was looked at. `PG_BINDIR`,
/// when set, is the only place looked at: the user chose that server.
pub fn find_bindir(major: u32) -> Result<PathBuf, String> {
    let candidates = match std::env::var_os("PG_BINDIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let mut candidates = where_servers_live(major);
            if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output() {
                let d = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if !d.is_empty() {
                    candidates.push(PathBuf::from(d));
                }
            }
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path));
            }
            candidates
        }
    };
    let mut seen = Vec::new();
    for dir in candidates {
        if !has_server(&dir) {
            continue;
        }
        match major_of(&dir) {
            Some(m) if m == major => return Ok(dir),
            Some(m) => seen.push(format!("{} ({m})", dir.display())),
            None => seen.push(format!("{} (version unknown)", dir.display())),
        }
    }
    let found = if seen.is_empty() { "no PostgreSQL server binaries".to_string() } else { seen.join(", ") };
    Err(format!(
        "no PostgreSQL {major} server on this machine (found: {found}): install PostgreSQL {major}'s server or set PG_BINDIR to its bin directory"
    ))
}

/// Where a server of `major` is installed, by the installers that keep one directory per major
/// version: Debian's and Ubuntu's packages, Homebrew's `postgresql@N` (Apple silicon, then
/// Intel) and Postgres.app. The directories of other systems are simply absent.
fn where_servers_live(major: u32) -> Vec<PathBuf> {
    [
        format!("/usr/lib/postgresql/{major}/bin"),
        format!("/opt/homebrew/opt/postgresql@{major}/bin"),
        format!("/usr/local/opt/postgresql@{major}/bin"),
        format!("/Applications/Postgres.app/Contents/Versions/{major}/bin"),
    ]
    .map(PathBuf::from)
    .to_vec()
}

fn random_password() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn nobody() -> std::io::Result<(u32, u32)> {
    let name = std::ffi::CString::new("nobody").expect("no NUL");
    // SAFETY: getpwnam returns NULL or a pointer to static storage valid until the next call;
    // the two fields are copied out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(std::io::Error::other("running as root and there is no `nobody` user for PostgreSQL to run as"));
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn run(cmd: &mut Command, run_as: Option<(u32, u32)>) -> std::io::Result<Output> {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp").current_dir("/");
    }
    cmd.stdin(Stdio::null()).output()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ScratchServer {
    /// Initialises and starts a server from `bindir`.
    pub fn start(bindir: &Path) -> std::io::Result<ScratchServer> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = if root { Some(nobody()?) } else { None };
        let dir = tempfile::Builder::new().prefix("migrate-restart-scratch-").tempdir()?;
        let password = random_password()?;
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password)?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let init = run(
            Command::new(bindir.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
                .arg(format!("--pwfile={}", pwfile.display())),
            run_as,
        )?;
        let _ = std::fs::remove_file(&pwfile);
        if !init.status.success() {
            return Err(std::io::Error::other(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr).trim()
            )));
        }
        let mut server = ScratchServer { dir, bindir: bindir.to_path_buf(), port: 0, password, run_as, stopped: true };
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port()?;
            let opts = format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.port,
                server.dir.path().display()
            );
            let started = run(
                Command::new(bindir.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(server.dir.path().join("server.log"))
                    .args(["-w", "-t", "60", "-o", &opts, "start"]),
                run_as,
            )?;
            if started.status.success() {
                server.stopped = false;
                return Ok(server);
            }
            last = std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
        }
        Err(std::io::Error::other(format!("the scratch server did not start: {}", last.trim())))
    }

    /// The URL of its `postgres` database (the password in it: keep it out of output).
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}:{}@127.0.0.1:{}/postgres?sslmode=disable", self.password, self.port)
    }

    /// What the server has written to its log so far.
    pub fn log(&self) -> std::io::Result<String> {
        Ok(String::from_utf8_lossy(&std::fs::read(self.dir.path().join("server.log"))?).into_owned())
    }

    /// Its superuser password (to register for redaction).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Stops it at once (its data is thrown away).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
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

impl Drop for ScratchServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn a_major_is_looked_for_where_debian_homebrew_and_postgres_app_install_it() {
        let dirs = super::where_servers_live(16);
        let expected = [
            "/usr/lib/postgresql/16/bin",
            "/opt/homebrew/opt/postgresql@16/bin",
            "/usr/local/opt/postgresql@16/bin",
            "/Applications/Postgres.app/Contents/Versions/16/bin",
        ]
        .map(PathBuf::from);
        assert_eq!(dirs, expected);
    }

    #[test]
    fn pg_bindir_is_the_only_place_looked_at_when_set() {
        // Every major the machine may have elsewhere: none of them is taken instead.
        let empty = tempfile::tempdir().unwrap();
        std::env::set_var("PG_BINDIR", empty.path());
        for major in 12..=17 {
            let refused = super::find_bindir(major).unwrap_err();
            assert!(refused.contains("found: no PostgreSQL server binaries"), "{refused}");
        }
    }
}
