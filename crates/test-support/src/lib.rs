//! Test helpers: a throwaway PostgreSQL cluster ([`PgCluster`]) and the pinned, locally
//! installed Heroku CLI ([`heroku_cli`]).

pub mod acme;
pub mod app_repo;
pub mod buildpack;
pub mod docs;
pub mod generation;
pub mod heroku_cli;
pub mod pgbouncer;
pub mod platform_schema;
pub mod postgres;
pub mod pty;
pub mod registry;
pub mod sandbox;
pub mod sessions;
pub mod snapshot;
pub mod tool;

/// The snapshot engine behind [`assert_whole!`] (re-exported for the macro).
pub use insta;
pub use postgres::PgCluster;
/// Scratch directories for tests (re-exported so suites need no dependency of their own).
pub use tempfile;

/// The workspace root (where Cargo.lock lives).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).expect("crates/test-support is two levels below the root").to_path_buf()
}

/// Where cargo put the workspace's binaries (`target/debug`, or under `CARGO_TARGET_DIR`), for
/// the suites that run them as a user's shell would; panics, saying how to build them, when one
/// of `needed` is missing.
pub fn bin_dir(needed: &[&str]) -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug");
    for b in needed {
        assert!(
            dir.join(b).is_file(),
            "{} missing: run `cargo build --bins` (scripts/test does)",
            dir.join(b).display()
        );
    }
    dir
}
