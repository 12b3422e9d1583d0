//! The shared conventions as a contract: exit codes (and their documentation), error mapping,
//! one-line redacted errors, confirmation without a terminal.

use cli_kit::{confirm_destructive, exit_for, fail, one_line, register_secret, Exit, Output, OutputArgs};

#[test]
fn docs_exit_code_table_matches_the_enum() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/exit-codes.md")).unwrap();
    let rows: Vec<(u8, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            Some((cells.first()?.parse().ok()?, cells.get(1)?.to_string()))
        })
        .collect();
    let expected: Vec<(u8, String)> = Exit::ALL.iter().map(|e| (e.code(), e.meaning().to_string())).collect();
    assert_eq!(rows, expected, "docs/exit-codes.md and cli_kit::Exit disagree");
}

#[test]
fn api_errors_map_to_the_contract() {
    let unauthorized =
        anyhow::Error::new(heroku_api::Error::Unauthorized { message: "Invalid credentials provided.".into() });
    assert_eq!(exit_for(&unauthorized), Exit::NotAuthenticated);
    let forbidden = anyhow::Error::new(heroku_api::Error::Forbidden { id: "two_factor".into(), message: "2fa".into() });
    assert_eq!(exit_for(&forbidden), Exit::NotAuthenticated);
    let missing = anyhow::Error::new(heroku_api::Error::NotFound { subject: "app `x`".into(), message: "gone".into() });
    assert_eq!(exit_for(&missing.context("looking up the app")), Exit::Usage);
    let api = anyhow::Error::new(heroku_api::Error::Api {
        status: 500,
        id: "x".into(),
        message: "boom".into(),
        request_id: None,
    });
    assert_eq!(exit_for(&api), Exit::Failed);
    assert_eq!(exit_for(&fail(Exit::NotVerified, "still running")), Exit::NotVerified);
    assert_eq!(exit_for(&anyhow::anyhow!("anything else")), Exit::Failed);
}

#[test]
fn errors_print_as_one_redacted_line() {
    register_secret("db-pass-77731");
    let err = anyhow::anyhow!("connection to postgres://app:db-pass-77731@db:5432/x refused\nretry later")
        .context("reading locks");
    let line = one_line(&err);
    assert_eq!(line, "reading locks: connection to postgres://app:***@db:5432/x refused retry later");
}

#[test]
fn confirmation_without_a_terminal_refuses_and_wrong_confirm_refuses() {
    // Under the test runner stdin is not a terminal, so no prompt can be shown.
    let out = Output::new(&OutputArgs::default());
    assert!(!out.can_prompt());
    let err = confirm_destructive(&out, "acme", None, "Stop?").unwrap_err();
    assert_eq!(exit_for(&err), Exit::Refused);
    assert!(err.to_string().contains("--confirm acme"), "{err}");
    let err = confirm_destructive(&out, "acme", Some("acme-staging"), "Stop?").unwrap_err();
    assert_eq!(exit_for(&err), Exit::Refused);
    assert!(err.to_string().contains("does not match"), "{err}");
    confirm_destructive(&out, "acme", Some("acme"), "Stop?").unwrap();
}

#[test]
fn json_mode_never_prompts() {
    let out = Output::new(&OutputArgs { json: true, ..OutputArgs::default() });
    assert!(!out.can_prompt());
    assert!(!out.can_animate());
}
