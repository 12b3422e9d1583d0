//! `heroku-sim --scenario stuck-release --port 0` prints its URL, and the real Heroku CLI
//! lists release.2343 from it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use test_support::heroku_cli::{text, HerokuCli};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args`: the process (killed on drop) and the URL it printed first.
fn start_sim(args: &[&str]) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heroku-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = KillOnDrop(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    (guard, url.trim().to_string())
}

#[test]
fn the_binary_prints_its_url_and_the_heroku_cli_sees_release_2343() {
    let (_guard, url) = start_sim(&["--scenario", "stuck-release", "--port", "0", "--token", "bin-token"]);
    let url = url.as_str();
    assert!(url.starts_with("http://127.0.0.1:"), "first line is the URL: {url:?}");
    let cli = HerokuCli::new(url, "bin-token");
    let out = cli.run(&["ps", "-a", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("release.2343: up"), "{}", text(&out));
}

#[test]
fn an_unknown_scenario_is_a_usage_error_naming_the_known_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_heroku-sim")).args(["--scenario", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scenario `nope`") && err.contains("stuck-release"), "{err}");
}

#[test]
fn a_port_out_of_range_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_heroku-sim")).args(["--port", "121586"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port: `121586` is not a port (0 to 65535"));
}

#[test]
fn help_names_the_token_and_a_database_url_becomes_every_apps_database() {
    let out = Command::new(env!("CARGO_BIN_EXE_heroku-sim")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("The token is sim-token") && help.contains("--database-url URL"), "{help}");

    let url = "postgres://u:pw@127.0.0.1:5432/app?sslmode=disable";
    let mut child = Command::new(env!("CARGO_BIN_EXE_heroku-sim"))
        .args(["--scenario", "backup-6am", "--port", "0", "--database-url", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = KillOnDrop(child);
    let mut sim_url = String::new();
    BufReader::new(stdout).read_line(&mut sim_url).unwrap();
    let mut said = String::new();
    let mut err = BufReader::new(stderr);
    err.read_line(&mut said).unwrap();
    err.read_line(&mut said).unwrap();
    assert!(said.contains(&format!("export HEROKU_HOST={} HEROKU_API_KEY=sim-token", sim_url.trim())), "{said}");
    let cli = HerokuCli::new(sim_url.trim(), "sim-token");
    let out = cli.run(&["config:get", "DATABASE_URL", "-a", "acme"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url, "{}", text(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_heroku-sim")).args(["--database-url", "mysql://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database-url: expected postgres://"));
}

/// The flaky-API flags a user rehearses with: `--fail-503 N[:PATH]` and `--reset N[:PATH]`
/// (the docs and tests use both), seen by the real Heroku CLI.
#[test]
fn fault_flags_answer_503_and_reset_the_connection() {
    let (_guard, url) =
        start_sim(&["--port", "0", "--fail-503", "1:/apps/acme/dynos", "--reset", "1:/apps/acme/formation"]);
    // One plain HTTP/1.1 request: its status code, or "000" when the connection gave no answer.
    let authority = url.trim().trim_start_matches("http://").to_string();
    let get = |path: &str| -> String {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&authority).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer sim-token\r\nAccept: application/vnd.heroku+json; version=3\r\nConnection: close\r\n\r\n"
        );
        let _ = c.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        answer.split(' ').nth(1).filter(|_| answer.starts_with("HTTP/")).unwrap_or("000").to_string()
    };
    assert_eq!(get("/apps/acme/dynos"), "503");
    assert_eq!(get("/apps/acme/dynos"), "200", "only the next one");
    assert_eq!(get("/apps/acme/formation"), "000", "no answer at all");
    assert_eq!(get("/apps/acme/formation"), "200");
    let out = Command::new(env!("CARGO_BIN_EXE_heroku-sim")).args(["--fail-503", "soon"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fail-503: `soon` is not N or N:PATH"));
}
