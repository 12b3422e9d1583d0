//! One-off dynos that really run: their command runs as a local process with the app's config
//! vars and the requested env, and an attached dyno is reached through a TLS rendezvous
//! endpoint speaking the platform's protocol (secret line, banner line, then the terminal).
//!
//! The rendezvous uses a certificate from a CA made at start-up; clients trust it through
//! `SSL_CERT_FILE` ([`Rendezvous::ca_pem`]). Nothing turns verification off.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::model::World;

/// One-off dynos between their request and their run.
#[derive(Debug, Clone, Default)]
pub struct OneOffs {
    /// Attached one-off dynos waiting for their client, by rendezvous secret.
    pub attach_jobs: std::collections::HashMap<String, Job>,
    /// Detached one-off dynos to start once the request is answered.
    pub detached: Vec<Job>,
    /// The rendezvous port, when one-off dynos can attach.
    pub rendezvous_port: Option<u16>,
}

/// What a one-off dyno runs.
#[derive(Debug, Clone)]
pub struct Job {
    /// App name.
    pub app: String,
    /// Dyno id.
    pub dyno_id: String,
    /// Dyno name (`run.1001`), exported as `DYNO`.
    pub dyno_name: String,
    /// The command line, run with `sh -c`.
    pub command: String,
    /// Config vars and the requested env.
    pub env: BTreeMap<String, String>,
    /// Working directory (the app's code).
    pub dir: Option<std::path::PathBuf>,
    /// The app's language runtime, and how the command reaches it.
    pub runtime: (Option<std::path::PathBuf>, crate::model::Runtime),
    /// On `cnb`: the launch layers' `bin/` directories the launcher puts on PATH.
    pub launch_layers: Vec<std::path::PathBuf>,
}

/// The rendezvous endpoint.
pub struct Rendezvous {
    port: u16,
    ca_pem: String,
    stop: Arc<AtomicBool>,
}

impl Rendezvous {
    /// Starts listening on 127.0.0.1 with a fresh CA and a certificate for 127.0.0.1/localhost.
    pub fn start(world: Arc<Mutex<World>>) -> std::io::Result<Rendezvous> {
        let (ca_pem, config) = tls_config().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        std::thread::Builder::new().name("rendezvous-accept".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (world, config) = (world.clone(), config.clone());
                let _ = std::thread::Builder::new()
                    .name("rendezvous-conn".into())
                    .spawn(move || serve(conn, config, world));
            }
        })?;
        Ok(Rendezvous { port, ca_pem, stop })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn tls_config() -> Result<(String, Arc<ServerConfig>), String> {
    let ca = crate::tls::TestCa::new("heroku-sim test CA")?;
    Ok((ca.pem(), ca.server_config()?))
}

/// The simulator's stand-in for the Cloud Native Buildpacks `launcher`, in a directory of its
/// own (put on a `cnb` one-off's PATH): it puts the app's runtime on PATH, then runs the rest
/// of its arguments, as the real launcher sets up the layers' environment.
fn launcher_dir() -> std::io::Result<std::path::PathBuf> {
    static DIR: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("heroku-sim-launcher-{}", std::process::id()));
        let script = "#!/bin/sh\n# heroku-sim: the CNB launcher's part that matters here, the app's runtime on PATH.\nif [ -n \"$HEROKU_SIM_APP_RUNTIME\" ]; then PATH=\"$HEROKU_SIM_APP_RUNTIME:$PATH\"; export PATH; fi\nunset HEROKU_SIM_APP_RUNTIME\nexec \"$@\"\n";
        let write = || -> std::io::Result<std::path::PathBuf> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(".launcher.tmp");
            std::fs::write(&tmp, script)?;
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            std::fs::rename(&tmp, dir.join("launcher"))?;
            Ok(dir.clone())
        };
        write().map_err(|e| e.to_string())
    })
    .clone()
    .map_err(std::io::Error::other)
}

/// What a dyno runs before its command, as the platform does at every dyno's start (Dev
/// Center "Buildpack API": `.profile.d/*.sh` in the slug are sourced, with `HOME` at the
/// slug's root, `/app`): how a classic buildpack puts what it installed on PATH.
const PROFILE_D: &str = "for f in \"$HOME\"/.profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done; unset f\n";

/// Starts a job's process in its own process group, stdout and stderr piped.
pub fn spawn(job: &Job, stdin: Stdio) -> std::io::Result<Child> {
    let mut cmd = Command::new("/bin/sh");
    let script = if job.dir.is_some() { format!("{PROFILE_D}{}", job.command) } else { job.command.clone() };
    cmd.arg("-c").arg(script).env_clear();
    for key in ["HOME", "LANG", "TMPDIR", "SSL_CERT_FILE"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    let system_path = std::env::var_os("PATH").unwrap_or_default();
    let mut path: Vec<std::path::PathBuf> = Vec::new();
    // What the launcher puts on PATH on `cnb`: the launch layers, then the runtime.
    let launched: Vec<std::path::PathBuf> = job.launch_layers.iter().chain(job.runtime.0.iter()).cloned().collect();
    match job.runtime.1 {
        crate::model::Runtime::OnPath => path.extend(launched),
        crate::model::Runtime::ThroughLauncher => {
            path.push(launcher_dir()?);
            if !launched.is_empty() {
                cmd.env("HEROKU_SIM_APP_RUNTIME", std::env::join_paths(launched).map_err(std::io::Error::other)?);
            }
        }
    }
    path.extend(std::env::split_paths(&system_path));
    cmd.env("PATH", std::env::join_paths(path).map_err(std::io::Error::other)?);
    if let Some(dir) = &job.dir {
        cmd.current_dir(dir).env("HOME", dir);
    }
    cmd.envs(&job.env).env("DYNO", &job.dyno_name).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A session of its own, as a dyno is a container of its own: stopping the dyno reaches every
    // process in it, whatever process groups they make.
    // SAFETY: setsid is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Stops a job as the dyno manager stops a dyno: SIGTERM to every process of it (its session,
/// whatever process groups they made), then SIGKILL to whatever is left after `grace`.
pub fn kill_group(pid: u32, grace: Duration) {
    let signal_all = move |signal: libc::c_int| {
        let members = crate::session::members(pid);
        for p in &members {
            // SAFETY: signalling processes of a session we created.
            unsafe {
                libc::kill(*p, signal);
            }
        }
        !members.is_empty()
    };
    signal_all(libc::SIGTERM);
    std::thread::spawn(move || {
        let until = std::time::Instant::now() + grace;
        while !crate::session::members(pid).is_empty() {
            if std::time::Instant::now() >= until {
                signal_all(libc::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Reads a child's stdout and stderr line by line on two threads, handing each line to `on_line`.
pub(crate) fn read_lines(
    child: &mut Child,
    on_line: impl Fn(&str) + Clone + Send + 'static,
) -> Vec<std::thread::JoinHandle<()>> {
    [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| {
        let on_line = on_line.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                on_line(&line);
            }
        })
    })
    .collect()
}

/// A process's exit status as a shell reports it (128 + N after signal N; 1 when unknown).
pub(crate) fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))).unwrap_or(1)
}

/// Runs a detached job to completion in the background; the dyno goes away when it ends. Its
/// output and the platform's state changes go to the app's log, as on the platform:
/// `heroku[run.N]: Starting process with command …`, `State changed from starting to up`,
/// `app[run.N]: <each line>`, `Process exited with status N`, `State changed from up to
/// complete`.
pub fn run_detached(job: Job, world: Arc<Mutex<World>>) {
    std::thread::spawn(move || {
        let log = |source: &str, text: &str| {
            world.lock().unwrap_or_else(|e| e.into_inner()).log_line(&job.app, source, &job.dyno_name, text)
        };
        log("heroku", &format!("Starting process with command `{}`", job.command));
        let Ok(mut child) = spawn(&job, Stdio::null()) else {
            log("heroku", "Process exited with status 127");
            finish(&world, &job);
            return;
        };
        record_pid(&world, &job, child.id());
        log("heroku", "State changed from starting to up");
        let readers = read_lines(&mut child, {
            let (world, job) = (world.clone(), job.clone());
            move |line: &str| {
                world.lock().unwrap_or_else(|e| e.into_inner()).log_line(&job.app, "app", &job.dyno_name, line)
            }
        });
        let status = child.wait();
        for r in readers {
            let _ = r.join();
        }
        let code = exit_code(status);
        if code == 143 {
            log("heroku", "Stopping all processes with SIGTERM");
        }
        log("heroku", &format!("Process exited with status {code}"));
        log("heroku", "State changed from up to complete");
        finish(&world, &job);
    });
}

fn record_pid(world: &Arc<Mutex<World>>, job: &Job, pid: u32) {
    let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = w.apps.get_mut(&job.app).and_then(|a| a.dynos.iter_mut().find(|d| d.id == job.dyno_id)) {
        d.process = Some(pid);
        d.state = "up".into();
        d.up_at = None;
    }
}

fn ignores_stop(world: &Arc<Mutex<World>>, job: &Job) -> bool {
    let w = world.lock().unwrap_or_else(|e| e.into_inner());
    w.apps.get(&job.app).and_then(|a| a.dynos.iter().find(|d| d.id == job.dyno_id)).is_some_and(|d| d.ignores_stop)
}

fn finish(world: &Arc<Mutex<World>>, job: &Job) {
    let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = w.apps.get_mut(&job.app) {
        a.dynos.retain(|d| d.id != job.dyno_id);
    }
}

/// The child's stdout and stderr, each read on a thread into one channel, newlines as a
/// terminal writes them (the rendezvous turns `\n` into `\r\n` too).
fn relay_output(child: &mut std::process::Child) -> (mpsc::Receiver<Vec<u8>>, Vec<std::thread::JoinHandle<()>>) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut readers = Vec::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let chunk = String::from_utf8_lossy(&buf[..n]).replace('\n', "\r\n").into_bytes();
                if tx.send(chunk).is_err() {
                    break;
                }
            }
        }));
    }
    (rx, readers)
}

/// Output to the client and its input to the command until the command's output ends or the
/// client goes; a client that hangs up stops the dyno (unless it ignores being stopped).
fn relay(
    tls: &mut StreamOwned<ServerConnection, TcpStream>,
    rx: &mpsc::Receiver<Vec<u8>>,
    child: &mut std::process::Child,
    world: &Arc<Mutex<World>>,
    job: &Job,
) {
    let mut stdin = child.stdin.take();
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(20)));
    let mut input = [0u8; 1024];
    loop {
        // Output first, so nothing is lost when the process ends.
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(chunk) => {
                    if tls.write_all(&chunk).and_then(|_| tls.flush()).is_err() {
                        closed = true;
                        break;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            break;
        }
        match tls.read(&mut input) {
            Ok(0) => {
                // The client hung up: the platform ends the dyno, unless it is one that
                // ignores being stopped (fault), which then runs on, still listed, as the
                // "killed" release dyno did.
                if !ignores_stop(world, job) {
                    kill_group(child.id(), world.lock().unwrap_or_else(|e| e.into_inner()).timing.kill_grace);
                }
                break;
            }
            Ok(n) => {
                let data = &input[..n];
                if let Some(pos) = data.iter().position(|b| *b == 0x04) {
                    if let Some(s) = stdin.as_mut() {
                        let _ = s.write_all(&data[..pos]);
                    }
                    stdin = None;
                } else if let Some(s) = stdin.as_mut() {
                    let _ = s.write_all(data);
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                if !ignores_stop(world, job) {
                    kill_group(child.id(), world.lock().unwrap_or_else(|e| e.into_inner()).timing.kill_grace);
                }
                break;
            }
        }
    }
}

/// A lingering close: stop writing, then drain until the client hangs up, so unread input
/// does not turn the close into a reset that could discard output the client has not read.
fn linger_close(tls: &mut StreamOwned<ServerConnection, TcpStream>) {
    let _ = tls.sock.shutdown(std::net::Shutdown::Write);
    let _ = tls.sock.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 1024];
    while matches!(tls.sock.read(&mut sink), Ok(n) if n > 0) {}
}

fn serve(tcp: TcpStream, config: Arc<ServerConfig>, world: Arc<Mutex<World>>) {
    let Ok(conn) = ServerConnection::new(config) else { return };
    let mut tls = StreamOwned::new(conn, tcp);
    let mut line = String::new();
    {
        let mut reader = BufReader::new(&mut tls);
        if reader.read_line(&mut line).is_err() {
            return;
        }
    }
    let secret = line.trim_end().split('?').next().unwrap_or("").to_string();
    let (job, boot) = {
        let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
        (w.one_offs.attach_jobs.remove(&secret), w.timing.start_delay)
    };
    let Some(job) = job else {
        // Unknown or already used secret: close without a banner, as the platform does.
        return;
    };
    if tls.write_all(b"rendezvous\r\n").and_then(|_| tls.flush()).is_err() {
        finish(&world, &job);
        return;
    }
    // The dyno boots before its command runs (platform time, as for any starting dyno); a
    // client sends its stdin EOF in this window, as the Heroku CLI does.
    std::thread::sleep(boot);
    let Ok(mut child) = spawn(&job, Stdio::piped()) else {
        let _ = tls.write_all(format!("bash: {}: command not found\r\n", job.command).as_bytes());
        finish(&world, &job);
        return;
    };
    record_pid(&world, &job, child.id());
    let (rx, readers) = relay_output(&mut child);
    relay(&mut tls, &rx, &mut child, &world, &job);
    let _ = child.wait();
    for r in readers {
        let _ = r.join();
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    finish(&world, &job);
    linger_close(&mut tls);
}
