//! `scripts/demo --interactive` waits for Enter between steps (the non-interactive run is part
//! of scripts/test itself).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::sessions::wait_until;
use test_support::tool::LiveOutput;

#[test]
fn interactive_mode_pauses_until_enter() {
    let target = test_support::bin_dir(&["demo"]);
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

/// `scripts/demo` says each phase in a line and, on a terminal, shows cargo's own build
/// progress instead of 90 silent seconds; off a terminal (CI logs) the build is quiet. A
/// stand-in `cargo` records how it was called, and a stand-in demo ends the run.
#[test]
fn the_demo_script_shows_its_phases_and_the_builds_progress_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("stubs");
    let target = dir.path().join("target");
    std::fs::create_dir_all(&stubs).unwrap();
    std::fs::create_dir_all(target.join("debug")).unwrap();
    let calls = dir.path().join("cargo-calls");
    let write_exe = |path: std::path::PathBuf, body: String| {
        std::fs::write(&path, body).unwrap();
        let mut p = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&path, p).unwrap();
    };
    write_exe(stubs.join("cargo"), format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()));
    write_exe(target.join("debug/demo"), "#!/bin/sh\necho the-demo-ran\n".into());
    let script = test_support::workspace_root().join("scripts/demo");
    let command = |c: &mut Command| {
        c.env("PATH", format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap_or_default()))
            .env("CARGO_TARGET_DIR", &target)
            .env("PG_BINDIR", "/nonexistent-but-given");
    };

    let mut on_terminal = Command::new(&script);
    command(&mut on_terminal);
    let mut pty = test_support::pty::PtySession::spawn(on_terminal);
    pty.expect("the-demo-ran", Duration::from_secs(30));
    assert!(pty.wait(Duration::from_secs(10)).success());
    let screen = pty.screen();
    let building = screen.find("==> Building the tools").expect("a line per phase");
    let starting = screen.find("==> Starting the sandbox").expect("a line per phase");
    assert!(building < starting, "{screen}");
    let args = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(args.trim(), "build --locked --bins", "cargo's own progress on a terminal");

    std::fs::remove_file(&calls).unwrap();
    let mut off_terminal = Command::new(&script);
    command(&mut off_terminal);
    let out = off_terminal.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("==> Building the tools") && text.contains("the-demo-ran"), "{text}");
    assert_eq!(std::fs::read_to_string(&calls).unwrap().trim(), "build --quiet --locked --bins", "quiet for logs");
}
