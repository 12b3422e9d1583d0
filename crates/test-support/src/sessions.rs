//! Sessions that hold and wait for locks on a test cluster, and the incidents built from them.

use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::PgCluster;

/// A plain connection named `app`.
pub fn client(url: &str, app: &str) -> postgres::Client {
    let mut config = postgres::Config::from_str(url).expect("test URL parses");
    config.application_name(app);
    config.connect(postgres::NoTls).expect("test connection")
}

/// A statement running on its own connection in a thread; `pid` is its backend.
pub struct Running {
    /// Backend pid.
    pub pid: i32,
    handle: JoinHandle<Result<(), String>>,
}

impl Running {
    /// Waits for the statement; `Err` carries the server's message.
    pub fn finish(self) -> Result<(), String> {
        self.handle.join().expect("session thread")
    }

    /// Whether the statement has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Starts `sql` on a new session named `app`, returning once its pid is known.
pub fn spawn(url: &str, app: &str, sql: &str) -> Running {
    let (tx, rx) = mpsc::channel();
    let (url, app, sql) = (url.to_string(), app.to_string(), sql.to_string());
    let handle = std::thread::spawn(move || {
        let mut c = client(&url, &app);
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).expect("pid").get(0);
        tx.send(pid).expect("report pid");
        c.batch_execute(&sql)
            .map_err(|e| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
    });
    let pid = rx.recv_timeout(Duration::from_secs(20)).expect("session started");
    Running { pid, handle }
}

/// `n` of the site's queries (`web.0`, `web.1`, …) each running `sql`, all started before any
/// is waited for: how long until the last of them has run (they queue behind a lock the test
/// holds or lets the tool cut). Panics naming the query that failed.
pub fn queue_behind(url: &str, n: usize, sql: &str) -> Duration {
    let started = Instant::now();
    let queued: Vec<Running> = (0..n).map(|i| spawn(url, &format!("web.{i}"), sql)).collect();
    for q in queued {
        q.finish().unwrap_or_else(|e| panic!("a queued `{sql}` failed: {e}"));
    }
    started.elapsed()
}

/// The site's traffic in a thread: `send` on its own connection every `every`, with a counter,
/// until stopped (or dropped).
pub struct Workload {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Workload {
    /// Starts it on a session named `app`.
    pub fn start(
        url: &str,
        app: &str,
        every: Duration,
        mut send: impl FnMut(&mut postgres::Client, i32) + Send + 'static,
    ) -> Workload {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut c = client(url, app);
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                send(&mut c, n);
                std::thread::sleep(every);
            }
        });
        Workload { stop, handle: Some(handle) }
    }

    /// Stops it and waits for its last statement.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Polls `cond` (bounded, 30s) and panics naming `what` when it never holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// How many sessions wait on a lock right now.
pub fn lock_waiters(pg: &PgCluster) -> usize {
    pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A `COPY … TO stdout` run by psql as "Heroku Postgres Backups". With `drain` the output is
/// read slowly (a backup streaming to slow storage: the server spends its time in ClientWrite
/// but makes progress); without it nobody reads and the server waits in ClientWrite forever.
pub struct Backup {
    child: Child,
    /// The backup's backend pid.
    pub pid: i32,
}

impl Backup {
    /// Starts the backup of `table` and waits until it sits in ClientWrite.
    pub fn start(pg: &PgCluster, db: &str, table: &str, drain: bool) -> Backup {
        let mut child = Command::new(pg.psql_path())
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U", "postgres", "-d", db, "-c"])
            .arg(format!("COPY \"public\".\"{table}\" (\"id\", \"data\") TO stdout;"))
            .env("PGPASSWORD", crate::postgres::SUPERUSER_PASSWORD)
            .env("PGAPPNAME", "Heroku Postgres Backups")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql starts");
        if drain {
            let mut out = child.stdout.take().expect("piped");
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = vec![0u8; 8192];
                while matches!(out.read(&mut buf), Ok(n) if n > 0) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let mut pid = 0;
        wait_until("backup in ClientWrite", || {
            pid = pg
                .psql(db, "SELECT pid FROM pg_stat_activity WHERE application_name = 'Heroku Postgres Backups' AND wait_event = 'ClientWrite'")
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
                .unwrap_or(0);
            pid != 0
        });
        Backup { child, pid }
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `table` with at least `mb` megabytes of rows (`id`, `data`).
pub fn create_big_table(pg: &PgCluster, table: &str, mb: u64) {
    // Each row is about 260 bytes on disk.
    let rows = mb * 1024 * 1024 / 230;
    pg.psql(
        "postgres",
        &format!(
            "CREATE TABLE {table} AS SELECT g AS id, repeat(md5(g::text), 7) AS data FROM generate_series(1, {rows}) g"
        ),
    )
    .expect("big table");
}

/// The stuck release phase: a long reader holds `users`, `ALTER TABLE users ADD COLUMN`
/// waits behind it, and `queued` readers queue behind the ALTER.
pub struct StuckAlter {
    /// The long reader (root blocker).
    pub reader: Running,
    /// The waiting ALTER.
    pub alter: Running,
    /// The queries queued behind the ALTER.
    pub queued: Vec<Running>,
}

impl StuckAlter {
    /// Builds it on `postgres` of `pg` and waits until all are in place.
    pub fn start(pg: &PgCluster, queued: usize, alter_app: &str) -> StuckAlter {
        let url = pg.superuser_url("postgres");
        pg.psql(
            "postgres",
            "CREATE TABLE IF NOT EXISTS users AS SELECT g AS id, 'user' || g AS name FROM generate_series(1, 20000) g",
        )
        .expect("users");
        let reader = spawn(&url, "reporting", "SELECT count(*), pg_sleep(3600) FROM users");
        wait_until("reader holds users", || {
            pg.psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_locks WHERE pid = {} AND relation = 'users'::regclass AND granted",
                    reader.pid
                ),
            )
            .is_ok_and(|s| s == "1")
        });
        let alter = spawn(&url, alter_app, "ALTER TABLE users ADD COLUMN nickname text");
        wait_until("ALTER waits", || lock_waiters(pg) == 1);
        let queued: Vec<Running> =
            (0..queued).map(|i| spawn(&url, &format!("web.{}", i % 2 + 1), "SELECT count(*) FROM users")).collect();
        wait_until("queries queue behind the ALTER", || lock_waiters(pg) == queued.len() + 1);
        StuckAlter { reader, alter, queued }
    }
}

/// Connections held open until dropped (a database with no free slot).
pub struct HeldConnections(pub Vec<postgres::Client>);

/// Takes every connection slot of `pg`, the superuser's reserved ones included, and holds them.
pub fn take_every_slot(pg: &PgCluster) -> HeldConnections {
    let config: postgres::Config = pg.superuser_url("postgres").parse().expect("test URL parses");
    let mut held = Vec::new();
    while let Ok(c) = config.connect(postgres::NoTls) {
        held.push(c);
        assert!(held.len() < 500, "the cluster never ran out of connection slots");
    }
    HeldConnections(held)
}

/// A report named "reporting" holding `users` for `secs` seconds as the role of `url`, running
/// (its statement active) when this returns: the long reader of incident 000.
pub fn long_report(pg: &PgCluster, url: &str, secs: u32) -> Running {
    let reader = spawn(url, "reporting", &format!("SELECT count(*), pg_sleep({secs}) FROM users"));
    let active = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reporting' AND state = 'active'";
    wait_until("the report runs", || pg.psql("postgres", active).is_ok_and(|c| c == "1"));
    reader
}
