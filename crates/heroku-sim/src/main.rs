//! `heroku-sim`: the Platform API simulator as a process, for the demo, the real Heroku CLI
//! tests and the runbooks. Prints its URL on the first line of stdout, then serves until killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: heroku-sim [--scenario NAME] [--port N] [--token TOKEN] [--database-url URL]
                  [--latency-ms N] [--stop-delay-ms N] [--start-delay-ms N] [--rate-limit-every N]
                  [--page-size N] [--fail-503 N[:PATH]] [--reset N[:PATH]] [--ca-file PATH] [--list]

Serves a simulated Heroku Platform API on 127.0.0.1 and prints its URL on the first line of
stdout. The token is sim-token unless --token says otherwise. --database-url attaches that
PostgreSQL to every app of the scenario as its DATABASE_URL (a local server without TLS needs
?sslmode=disable in the URL). One-off dynos run their command locally; attach through the TLS
rendezvous after pointing SSL_CERT_FILE at the CA written by --ca-file. --list names the
scenarios (default stuck-release). To rehearse a flaky API: --fail-503 N answers the next N
requests (those whose path contains PATH, with N:PATH) with 503, --reset N resets their
connection without an answer; --rate-limit-every N answers every Nth request with 429.
Use it with: HEROKU_HOST=<url> HEROKU_API_KEY=sim-token heroku ps -a acme";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("heroku-sim: {msg}");
            ExitCode::from(2)
        }
    }
}

/// The command line, read.
#[derive(Default)]
struct Flags {
    scenario: Option<String>,
    port: u16,
    token: Option<String>,
    latency: Option<u64>,
    stop_delay: Option<u64>,
    start_delay: Option<u64>,
    rate_limit_every: Option<u32>,
    page_size: Option<usize>,
    ca_file: Option<String>,
    database_url: Option<String>,
    faults: Vec<(heroku_sim::FaultKind, u32, Option<String>)>,
}

/// `N` or `N:PATH`: how many requests, and only those whose path contains PATH.
fn fault_spec(name: &str, v: &str) -> Result<(u32, Option<String>), String> {
    let (n, path) = match v.split_once(':') {
        Some((n, p)) => (n, Some(p.to_string()).filter(|p| !p.is_empty())),
        None => (v, None),
    };
    let n: u32 = n.parse().map_err(|_| format!("{name}: `{v}` is not N or N:PATH (e.g. 3 or 3:/dynos)"))?;
    Ok((n, path))
}

/// Reads the arguments; `Ok(None)` when `--help` or `--list` has answered.
fn parse_flags() -> Result<Option<Flags>, String> {
    let mut args = std::env::args().skip(1);
    let mut f = Flags::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        let num = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: `{v}` is not a whole number"));
        match arg.as_str() {
            "--scenario" => f.scenario = Some(value("--scenario")?),
            "--port" => {
                let v = value("--port")?;
                f.port = v
                    .parse::<u16>()
                    .map_err(|_| format!("--port: `{v}` is not a port (0 to 65535; 0 picks a free one)"))?
            }
            "--token" => f.token = Some(value("--token")?),
            "--database-url" => f.database_url = Some(value("--database-url")?),
            "--latency-ms" => f.latency = Some(num("--latency-ms", value("--latency-ms")?)?),
            "--stop-delay-ms" => f.stop_delay = Some(num("--stop-delay-ms", value("--stop-delay-ms")?)?),
            "--start-delay-ms" => f.start_delay = Some(num("--start-delay-ms", value("--start-delay-ms")?)?),
            "--rate-limit-every" => {
                f.rate_limit_every = Some(num("--rate-limit-every", value("--rate-limit-every")?)? as u32)
            }
            "--ca-file" => f.ca_file = Some(value("--ca-file")?),
            "--page-size" => f.page_size = Some(num("--page-size", value("--page-size")?)? as usize),
            "--fail-503" => {
                let (n, path) = fault_spec("--fail-503", &value("--fail-503")?)?;
                f.faults.push((heroku_sim::FaultKind::ServiceUnavailable, n, path));
            }
            "--reset" => {
                let (n, path) = fault_spec("--reset", &value("--reset")?)?;
                f.faults.push((heroku_sim::FaultKind::Reset, n, path));
            }
            "--list" => {
                for (name, about) in heroku_sim::SCENARIOS {
                    println!("{name:<14} {about}");
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Some(f))
}

fn run() -> Result<(), String> {
    let Some(flags) = parse_flags()? else { return Ok(()) };
    let Flags {
        scenario,
        port,
        token,
        latency,
        stop_delay,
        start_delay,
        rate_limit_every,
        page_size,
        ca_file,
        database_url,
        faults,
    } = flags;
    let scenario = scenario.unwrap_or_else(|| "stuck-release".to_string());
    let mut world = heroku_sim::scenario(&scenario).ok_or_else(|| {
        let names: Vec<&str> = heroku_sim::SCENARIOS.iter().map(|(n, _)| *n).collect();
        format!("unknown scenario `{scenario}`; known: {}", names.join(", "))
    })?;
    if let Some(t) = token {
        world.account.token = t;
    }
    if let Some(url) = &database_url {
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err("--database-url: expected postgres://USER:PASSWORD@HOST:PORT/DBNAME".into());
        }
        world.attach_database_everywhere(url);
    }
    if let Some(ms) = latency {
        world.faults.latency = Duration::from_millis(ms);
    }
    if let Some(ms) = stop_delay {
        world.timing.stop_delay = Duration::from_millis(ms);
    }
    if let Some(ms) = start_delay {
        world.timing.start_delay = Duration::from_millis(ms);
    }
    world.faults.rate_limit_every = rate_limit_every;
    if let Some(n) = page_size {
        world.faults.page_size = n;
    }
    let sim = heroku_sim::Sim::start_on(world, port).map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    for (kind, n, path) in faults {
        sim.add_fault(kind, None, path.as_deref(), n);
    }
    if let Some(path) = ca_file {
        sim.write_ca(std::path::Path::new(&path)).map_err(|e| format!("cannot write --ca-file {path}: {e}"))?;
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", sim.url());
    let _ = out.flush();
    let (token, apps, has_database) =
        sim.with(|w| (w.account.token.clone(), w.apps.keys().cloned().collect::<Vec<_>>(), database_url.is_some()));
    eprintln!("heroku-sim: scenario {scenario} (apps: {}) on {}", apps.join(", "), sim.url());
    eprintln!("heroku-sim: use it with: export HEROKU_HOST={} HEROKU_API_KEY={token}", sim.url());
    if !has_database && !apps.is_empty() {
        eprintln!("heroku-sim: the apps have no database: pass --database-url URL for pg-blockers and the migration tools to read one");
    }
    loop {
        std::thread::park();
    }
}
