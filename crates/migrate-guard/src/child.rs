//! The migration command as the guard's child: started without a shell (argv as given), with
//! `PGOPTIONS` and `PGAPPNAME` in its environment; its stdout and stderr relayed line by line
//! to the guard's own (so they reach the release output unchanged and in order per stream),
//! and read for what they say: a lock timeout, a pooler's refusal of the startup options.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use migration_policy::{is_lock_timeout, is_pooler_refusal};

/// What to start.
pub struct Launch<'a> {
    /// argv.
    pub argv: &'a [String],
    /// Extra environment (`PGOPTIONS`, `PGAPPNAME`).
    pub env: Vec<(String, String)>,
}

/// A running command.
pub struct Running {
    /// The process.
    pub child: Child,
    lock_timeout: Arc<AtomicBool>,
    pooler_refused: Arc<AtomicBool>,
    relays: Vec<JoinHandle<()>>,
}

/// What its output said, once it has ended.
pub struct Said {
    /// Postgres cancelled a statement for its lock timeout.
    pub lock_timeout: bool,
    /// A pooler refused the startup options.
    pub pooler_refused: bool,
}

/// Starts the command in a process group of its own, so the guard can end all of it (a
/// `sh -c` and the migration it runs) when it ends the command.
pub fn start(launch: &Launch) -> std::io::Result<Running> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&launch.argv[0]);
    cmd.args(&launch.argv[1..])
        .envs(launch.env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let lock_timeout = Arc::new(AtomicBool::new(false));
    let pooler_refused = Arc::new(AtomicBool::new(false));
    let mut relays = Vec::new();
    if let Some(out) = child.stdout.take() {
        relays.push(relay(out, std::io::stdout, lock_timeout.clone(), pooler_refused.clone()));
    }
    if let Some(err) = child.stderr.take() {
        relays.push(relay(err, std::io::stderr, lock_timeout.clone(), pooler_refused.clone()));
    }
    Ok(Running { child, lock_timeout, pooler_refused, relays })
}

fn relay<R: Read + Send + 'static, W: Write + 'static>(
    from: R,
    to: fn() -> W,
    lock_timeout: Arc<AtomicBool>,
    pooler_refused: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            if is_lock_timeout(&text) {
                lock_timeout.store(true, Ordering::SeqCst);
            }
            if is_pooler_refusal(&text) {
                pooler_refused.store(true, Ordering::SeqCst);
            }
            // A closed stdout must not end the relay: the command's output still has to be read.
            let mut w = to();
            let _ = w.write_all(&line).and_then(|_| w.flush());
            line.clear();
        }
    })
}

impl Running {
    /// Sends `signal` to the command's whole process group (it may already have had it from
    /// the dyno manager).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the process group our child leads.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), signal);
        }
    }

    /// Waits (up to `grace`) for the relays to drain after the process ended — a process it left
    /// behind may hold its output open — and says what the output showed.
    pub fn drain(self, grace: std::time::Duration) -> Said {
        let until = std::time::Instant::now() + grace;
        for r in self.relays {
            while !r.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        Said {
            lock_timeout: self.lock_timeout.load(Ordering::SeqCst),
            pooler_refused: self.pooler_refused.load(Ordering::SeqCst),
        }
    }
}
