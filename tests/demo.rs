//! `scripts/demo --interactive` waits for Enter between steps (the non-interactive run is part
//! of scripts/test itself).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::sessions::wait_until;
use test_support::tool::LiveOutput;

#[test]
fn interactive_mode_pauses_until_enter() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| test_support::workspace_root().join("target"))
        .join("debug");
    assert!(target.join("demo").is_file(), "run `cargo build --bins` first (scripts/test does)");
    let mut child = Command::new(target.join("demo"))
        .args(["--interactive", target.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = LiveOutput::start(child.stdout.take().unwrap());
    wait_until("the first pause", || seen.text().contains("(Enter to continue)"));
    let at_pause = seen.text().len();
    std::thread::sleep(Duration::from_secs(1)); // a paused demo prints nothing more
    assert_eq!(seen.text().len(), at_pause, "the demo went on without Enter");
    let mut stdin = child.stdin.take().unwrap();
    let mut presses = 0;
    while child.try_wait().unwrap().is_none() {
        let pauses = seen.text().matches("(Enter to continue)").count();
        if pauses > presses {
            stdin.write_all(b"\n").unwrap();
            presses += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(presses < 50, "too many pauses");
    }
    let status = child.wait().unwrap();
    let text = seen.finish();
    assert!(status.success(), "{text}");
    assert!(presses >= 8, "paused between steps ({presses} times)");
    assert!(text.contains("all 24 steps behaved as described"), "{text}");
}
