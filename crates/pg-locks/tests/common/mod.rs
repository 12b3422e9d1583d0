//! Sessions that hold and wait for locks on a real throwaway PostgreSQL.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pg_locks::{Client, Snapshot};
use test_support::PgCluster;

pub fn client(url: &str, app: &str) -> Client {
    let mut config = postgres::Config::from_str(url).unwrap();
    config.application_name(app);
    config.connect(postgres::NoTls).unwrap()
}

/// A statement running on its own connection in a thread; `pid` is its backend.
pub struct Running {
    pub pid: i32,
    pub handle: JoinHandle<Result<(), String>>,
}

impl Running {
    pub fn finish(self) -> Result<(), String> {
        self.handle.join().unwrap()
    }
}

/// Starts `setup` then `sql` on a new session named `app`, returning once the pid is known.
pub fn spawn(url: &str, app: &str, setup: &[&str], sql: &str) -> Running {
    let (tx, rx) = mpsc::channel();
    let (url, app, sql) = (url.to_string(), app.to_string(), sql.to_string());
    let setup: Vec<String> = setup.iter().map(|s| s.to_string()).collect();
    let handle = std::thread::spawn(move || {
        let mut c = client(&url, &app);
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        for s in &setup {
            c.batch_execute(s).unwrap();
        }
        tx.send(pid).unwrap();
        c.batch_execute(&sql)
            .map_err(|e| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
    });
    let pid = rx.recv_timeout(Duration::from_secs(20)).expect("session started");
    Running { pid, handle }
}

/// Polls snapshots (bounded) until `cond` holds.
pub fn wait_for(c: &mut Client, what: &str, cond: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = Snapshot::take(c).unwrap();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `COPY … TO stdout` run by psql as "Heroku Postgres Backups". With `drain` the output is
/// read slowly (a backup streaming to slow storage: the server spends its time in ClientWrite
/// but makes progress); without it nobody reads and the server waits in ClientWrite forever.
pub struct StalledBackup {
    pub child: Child,
}

impl StalledBackup {
    pub fn start(pg: &PgCluster, db: &str, table: &str, drain: bool) -> StalledBackup {
        let child = Command::new(pg.bindir().join("psql"))
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U", "postgres", "-d", db, "-c"])
            .arg(format!("COPY \"public\".\"{table}\" (\"id\", \"data\") TO stdout;"))
            .env("PGPASSWORD", "test-superuser-pw")
            .env("PGAPPNAME", "Heroku Postgres Backups")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = child;
        if drain {
            let mut out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = vec![0u8; 8192];
                while matches!(out.read(&mut buf), Ok(n) if n > 0) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        StalledBackup { child }
    }
}

impl Drop for StalledBackup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
