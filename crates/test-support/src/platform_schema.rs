//! The published Heroku Platform API schema the simulator and the client are held to.
//!
//! The project keeps a copy (`tests/heroku-platform-api/schema.json`) so the suites run where
//! only the repository is, as on GitHub's runners. Where `../shared` is beside the checkout
//! (every `.ci/run`), the copy must be byte-identical to the one there: it is never edited
//! by hand, only replaced.

use std::path::{Path, PathBuf};

/// The schema's text; panics if the copy differs from `../shared`'s.
pub fn text() -> String {
    let copy = workspace().join("tests/heroku-platform-api/schema.json");
    let text = std::fs::read_to_string(&copy).unwrap_or_else(|e| panic!("read {}: {e}", copy.display()));
    let published = workspace().join("../shared/heroku-platform-api/schema.json");
    if let Ok(beside) = std::fs::read_to_string(&published) {
        assert!(
            beside == text,
            "{} differs from {}: copy the published schema over it",
            copy.display(),
            published.display()
        );
    }
    text
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
