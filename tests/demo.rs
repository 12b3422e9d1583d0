//! `scripts/demo --interactive` waits for Enter between steps (the non-interactive run is part
//! of scripts/test itself).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::sessions::wait_until;

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
    let mut stdout = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_until("the first pause", || seen.lock().unwrap().contains("(Enter to continue)"));
    let at_pause = seen.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(1)); // a paused demo prints nothing more
    assert_eq!(seen.lock().unwrap().len(), at_pause, "the demo went on without Enter");
    let mut stdin = child.stdin.take().unwrap();
    let mut presses = 0;
    while child.try_wait().unwrap().is_none() {
        let pauses = seen.lock().unwrap().matches("(Enter to continue)").count();
        if pauses > presses {
            stdin.write_all(b"\n").unwrap();
            presses += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(presses < 50, "too many pauses");
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", seen.lock().unwrap());
    assert!(presses >= 8, "paused between steps ({presses} times)");
    assert!(seen.lock().unwrap().contains("all 17 steps behaved as described"));
}
