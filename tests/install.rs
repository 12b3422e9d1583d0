//! scripts/install puts the binaries, completions and man pages under a prefix and links the
//! plugin into the Heroku CLI on PATH.

use std::process::Command;

use test_support::heroku_cli::{heroku_bin, text};

#[test]
fn install_into_a_prefix_and_link_the_plugin() {
    let root = test_support::workspace_root();
    let home = tempfile::tempdir().unwrap();
    let prefix = home.path().join("prefix");
    let heroku_dir = heroku_bin().unwrap().parent().unwrap().to_path_buf();
    let path =
        std::env::join_paths([heroku_dir].into_iter().chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())))
            .unwrap();
    let out = Command::new(root.join("scripts/install"))
        .args(["--debug", "--prefix", prefix.to_str().unwrap()])
        .env("HOME", home.path())
        .env("PATH", &path)
        .env("HEROKU_SKIP_NEW_VERSION_CHECK", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for t in ["safe-ps-kill", "pg-blockers", "migrate-restart", "maintenance-window"] {
        assert!(prefix.join("bin").join(t).is_file(), "{t} not installed");
        assert!(prefix.join("share/bash-completion/completions").join(t).is_file(), "{t} bash completion");
        assert!(prefix.join("share/zsh/site-functions").join(format!("_{t}")).is_file(), "{t} zsh completion");
        assert!(prefix.join("share/man/man1").join(format!("{t}.1")).is_file(), "{t} man page");
    }
    let version = Command::new(prefix.join("bin/pg-blockers")).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("pg-blockers "), "{}", text(&version));
    let plugins = Command::new(heroku_bin().unwrap())
        .arg("plugins")
        .env("HOME", home.path())
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&plugins.stdout).contains("heroku-deploy-safety"),
        "plugin linked: {}",
        text(&plugins)
    );
}
