//! One trust store for every connection: the API client trusts the system's roots *and*
//! `SSL_CERT_FILE`, like the rendezvous and Postgres do (tls-roots).
//!
//! reqwest's own root loading reads `SSL_CERT_FILE` instead of the system's roots; with it, a
//! user who sets `SSL_CERT_FILE` for a corporate proxy CA could no longer reach an API whose
//! certificate chains to a system root. To show that with a CA the *system* trusts, the client
//! runs in a private mount namespace (`unshare -Urm`) where the system bundle is replaced by one
//! holding a test CA — nothing on the machine changes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use heroku_sim::tls::TestCa;

/// The system bundle tls-roots reads on Debian (what `ca-certificates` installs).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Set in the child: the URL to call.
const CHILD_URL: &str = "TRUST_STORE_TEST_URL";

/// An HTTPS server answering every request with an app; returns its base URL.
fn https_app_server(ca: &TestCa) -> String {
    let config = ca.server_config().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(tls) = rustls::ServerConnection::new(Arc::clone(&config)) else { return };
                let mut stream = rustls::StreamOwned::new(tls, conn);
                let mut reader = BufReader::new(&mut stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let body = r#"{"id":"01234567-89ab-cdef-0123-456789abcdef","name":"acme","maintenance":false}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.flush();
                stream.conn.send_close_notify();
                let _ = stream.flush();
            });
        }
    });
    format!("https://localhost:{port}")
}

/// Runs the child test in a mount namespace whose system bundle is `system_pem`, with
/// `SSL_CERT_FILE` at `env_pem`; true when it reached the server.
fn call_in_namespace(url: &str, system_pem: &str, env_pem: &str) -> (bool, String) {
    assert!(Path::new(SYSTEM_BUNDLE).is_file(), "{SYSTEM_BUNDLE} is missing: install ca-certificates");
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("system.pem");
    let env = dir.path().join("env.pem");
    std::fs::write(&system, system_pem).unwrap();
    std::fs::write(&env, env_pem).unwrap();
    let out = Command::new("unshare")
        .args(["-Urm", "sh", "-c", "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"", "sh"])
        .arg(&system)
        .arg(SYSTEM_BUNDLE)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child_calls_the_api", "--ignored", "--nocapture"])
        .env(CHILD_URL, url)
        .env("SSL_CERT_FILE", &env)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("unshare runs (util-linux)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("unshare:") && !text.contains("mount:"), "the namespace could not be set up:\n{text}");
    (out.status.success(), text)
}

#[test]
fn the_api_client_trusts_system_roots_while_ssl_cert_file_is_set() {
    let system_ca = TestCa::new("stand-in system root").unwrap();
    let extra_ca = TestCa::new("SSL_CERT_FILE root").unwrap();
    let url = https_app_server(&system_ca);
    let (ok, text) = call_in_namespace(&url, &system_ca.pem(), &extra_ca.pem());
    assert!(ok, "a certificate chaining to a system root must verify with SSL_CERT_FILE set:\n{text}");
    assert!(text.contains("reached acme"), "{text}");
}

#[test]
fn the_api_client_trusts_ssl_cert_file_and_nothing_unknown() {
    let system_ca = TestCa::new("stand-in system root").unwrap();
    let extra_ca = TestCa::new("SSL_CERT_FILE root").unwrap();
    let stranger = TestCa::new("nobody trusts this").unwrap();
    let (ok, text) = call_in_namespace(&https_app_server(&extra_ca), &system_ca.pem(), &extra_ca.pem());
    assert!(ok, "SSL_CERT_FILE is trusted too:\n{text}");
    let (ok, text) = call_in_namespace(&https_app_server(&stranger), &system_ca.pem(), &extra_ca.pem());
    assert!(!ok, "an unknown CA must fail verification:\n{text}");
    assert!(text.contains("certificate"), "the failure names the certificate:\n{text}");
}

/// Run by the tests above inside their namespace; does nothing on its own.
#[test]
#[ignore = "run by the trust-store tests inside a mount namespace"]
fn child_calls_the_api() {
    let url = std::env::var(CHILD_URL).expect("run by the trust-store tests");
    let host = heroku_api::ApiHost::from_heroku_host(Some(&url)).unwrap();
    let client = heroku_api::ClientBuilder::new(host, heroku_api::Token::new("t"), "trust-store-test", "0")
        .retry_policy(heroku_api::RetryPolicy { max_attempts: 1, ..Default::default() })
        .build()
        .unwrap();
    match client.app_info("acme") {
        Ok(app) => println!("reached {}", app.name),
        Err(e) => panic!("call failed: {e}"),
    }
}
