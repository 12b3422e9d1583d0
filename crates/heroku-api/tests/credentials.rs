//! Where the token comes from. One test, because it changes process-wide environment.

use heroku_api::{find_token, ApiHost, TokenSource};

#[test]
fn env_key_beats_netrc_netrc_is_read_and_nothing_means_heroku_login() {
    let home = tempfile::tempdir().unwrap();
    let netrc = home.path().join(".netrc");
    std::fs::write(&netrc, "machine api.heroku.com\n  login me@example.com\n  password netrc-token-1\nmachine 127.0.0.1\n  login me\n  password local-token\n").unwrap();
    std::env::set_var("HOME", home.path());
    std::env::remove_var("NETRC");

    std::env::set_var("HEROKU_API_KEY", "env-token-9");
    let (token, source) = find_token("api.heroku.com").unwrap();
    assert_eq!((token.expose(), source), ("env-token-9", TokenSource::EnvVar));

    std::env::remove_var("HEROKU_API_KEY");
    let (token, source) = find_token("api.heroku.com").unwrap();
    assert_eq!(token.expose(), "netrc-token-1");
    assert_eq!(source, TokenSource::Netrc(netrc.clone()));

    // The netrc machine is the API host, also for a simulator on loopback; like the Heroku CLI
    // we try host:port first, then the bare host.
    let host = ApiHost::from_heroku_host(Some("http://127.0.0.1:5000")).unwrap();
    assert_eq!(heroku_api::find_token_for(&host.netrc_machines()).unwrap().0.expose(), "local-token");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1:5000 login me password port-token\nmachine 127.0.0.1 login me password local-token\n",
    )
    .unwrap();
    assert_eq!(heroku_api::find_token_for(&host.netrc_machines()).unwrap().0.expose(), "port-token");

    std::fs::remove_file(&netrc).unwrap();
    let err = find_token("api.heroku.com").unwrap_err();
    assert!(err.is_auth());
    let msg = err.to_string();
    assert!(msg.contains("heroku login") && msg.contains("HEROKU_API_KEY"), "{msg}");
}
