//! Whether a COMMAND a tool was given can be started, checked before anything changes: a typo
//! found after the site went into maintenance (or after a migration began) is found too late.

use std::path::{Path, PathBuf};

/// Where `program` would be found: a path with a `/` as it is, else the first executable file
/// of that name on PATH. None: it cannot be started.
pub fn resolve(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| executable(p))
}

/// A usage error (exit 2) unless `argv[0]` can be started; `then` says what was not done.
pub fn check_startable(argv: &[String], then: &str) -> anyhow::Result<()> {
    let Some(program) = argv.first().filter(|p| !p.trim().is_empty()) else {
        return Err(crate::usage(format!("the COMMAND after `--` is empty; {then}")));
    };
    if resolve(program).is_none() {
        return Err(crate::usage(format!(
            "cannot start `{}`: no executable of that name on PATH (or the path is not an executable file); {then}",
            crate::printable(program)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_on_path_or_by_its_path() {
        assert!(resolve("sh").is_some());
        assert!(resolve("/bin/sh").is_some());
        assert!(resolve("/nonexistent/cmd").is_none());
        assert!(resolve("surely-no-such-program-here").is_none());
        let e = check_startable(&["/nonexistent/cmd".into()], "nothing was changed").unwrap_err();
        assert_eq!(crate::exit_for(&e), crate::Exit::Usage);
        assert!(crate::one_line(&e).ends_with("nothing was changed"));
    }
}
