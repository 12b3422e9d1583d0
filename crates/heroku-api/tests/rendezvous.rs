//! Attaching to a one-off dyno through the simulator's TLS rendezvous: the banner, live output,
//! stdin, the exit-status marker, certificate verification and bad secrets. One test, because
//! trusting the simulator's CA means setting SSL_CERT_FILE for the whole process.

use std::io::{Read, Write};
use std::time::Duration;

use heroku_api::rendezvous::{attach, with_exit_marker, AttachUrl, OutputScanner};
use heroku_api::{ApiHost, ClientBuilder, DynoCreate, Token};
use heroku_sim::{Sim, World};

fn run_to_end(stream: &mut heroku_api::rendezvous::Rendezvous) -> (Vec<String>, Option<i32>) {
    let mut scanner = OutputScanner::default();
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        lines.extend(scanner.feed(&buf[..n]));
    }
    lines.extend(scanner.finish());
    (lines, scanner.exit_status)
}

#[test]
fn attach_runs_the_command_with_the_apps_env_and_returns_its_status() {
    let mut w = World::default();
    w.add_app("acme");
    w.set_config_var("acme", "GREETING", "hello");
    let sim = Sim::start(w).unwrap();
    let client =
        ClientBuilder::new(ApiHost::from_heroku_host(Some(&sim.url())).unwrap(), Token::new(sim.token()), "t", "1")
            .build()
            .unwrap();
    let create = |command: &str| {
        let spec = DynoCreate {
            command: with_exit_marker(command),
            attach: true,
            env: [("EXTRA".to_string(), "x1".to_string())].into(),
            ..Default::default()
        };
        client.create_dyno("acme", &spec).unwrap()
    };

    // Before the CA is trusted, the certificate is refused: verification is never skipped.
    let dyno = create("echo never");
    let url = AttachUrl::parse(dyno.attach_url.as_deref().unwrap()).unwrap();
    let err = attach(&url, Duration::from_secs(5)).unwrap_err().to_string();
    assert!(err.contains("TLS") && err.to_lowercase().contains("certificate"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    sim.write_ca(&ca).unwrap();
    std::env::set_var("SSL_CERT_FILE", &ca);

    let dyno = create("echo \"$GREETING from $DYNO with $EXTRA\"; echo oops >&2; exit 3");
    let mut stream =
        attach(&AttachUrl::parse(dyno.attach_url.as_deref().unwrap()).unwrap(), Duration::from_secs(5)).unwrap();
    assert_eq!(stream.banner, "rendezvous");
    let (lines, status) = run_to_end(&mut stream);
    assert!(lines.contains(&format!("hello from {} with x1", dyno.name)), "{lines:?}");
    assert!(lines.contains(&"oops".to_string()), "stderr is on the stream too: {lines:?}");
    assert!(!lines.iter().any(|l| l.contains("heroku-command-exit-status")), "the marker is never shown");
    assert_eq!(status, Some(3));
    test_support_wait(|| !sim.dyno_names("acme").contains(&dyno.name));

    // stdin reaches the command; EOF (0x04) closes it.
    let dyno = create("read line; echo \"got $line\"");
    let mut stream =
        attach(&AttachUrl::parse(dyno.attach_url.as_deref().unwrap()).unwrap(), Duration::from_secs(5)).unwrap();
    stream.write_all(b"abc\n").unwrap();
    stream.send_eof().unwrap();
    let (lines, status) = run_to_end(&mut stream);
    assert_eq!((lines, status), (vec!["got abc".to_string()], Some(0)));

    // A wrong (or reused) secret gets no banner.
    let mut bad = AttachUrl::parse(dyno.attach_url.as_deref().unwrap()).unwrap();
    bad.secret = "not-the-secret".into();
    let err = attach(&bad, Duration::from_secs(5)).unwrap_err().to_string();
    assert!(err.contains("before its banner"), "{err}");

    // A Fir app's attached one-off is reached over SSH (its attach_url is https, as
    // lib/run/dyno.js `_useSSH` reads it): the client refuses the URL in one line, and the
    // rendezvous does not know its secret either.
    sim.with(|w| w.make_fir("acme", true));
    let dyno = create("echo never");
    let url = dyno.attach_url.clone().unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let err = AttachUrl::parse(&url).unwrap_err().to_string();
    assert!(err.contains("not a rendezvous URL (wrong scheme)"), "{err}");
    let mut through_rendezvous = AttachUrl::parse(&url.replacen("https://", "rendezvous://", 1)).unwrap();
    through_rendezvous.secret = url.rsplit('/').next().unwrap().to_string();
    let err = attach(&through_rendezvous, Duration::from_secs(5)).unwrap_err().to_string();
    assert!(err.contains("before its banner"), "the rendezvous refuses a Fir dyno: {err}");
}

fn test_support_wait(mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "condition never held");
        std::thread::sleep(Duration::from_millis(20));
    }
}
