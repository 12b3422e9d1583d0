//! Test helpers: a throwaway PostgreSQL cluster ([`PgCluster`]) and the pinned, locally
//! installed Heroku CLI ([`heroku_cli`]).

pub mod acme;
pub mod app_repo;
pub mod buildpack;
pub mod docs;
pub mod generation;
pub mod heroku_cli;
pub mod pgbouncer;
pub mod postgres;
pub mod pty;
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
