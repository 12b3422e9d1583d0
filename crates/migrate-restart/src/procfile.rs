//! The migration command: `--command`, else the `release:` line of ./Procfile.

use std::path::Path;

use cli_kit::usage;

/// The `release:` entry of a Procfile's text.
pub fn release_line(procfile: &str) -> Option<String> {
    procfile.lines().find_map(|l| {
        let (name, cmd) = l.split_once(':')?;
        (name.trim() == "release" && !l.trim_start().starts_with('#'))
            .then(|| cmd.trim().to_string())
            .filter(|c| !c.is_empty())
    })
}

/// Picks the command or says where it looked.
pub fn command(flag: Option<&str>, dir: &Path) -> anyhow::Result<String> {
    if let Some(c) = flag {
        if c.trim().is_empty() {
            return Err(usage("--command is empty; give the migration command, e.g. --command 'bin/rails db:migrate'"));
        }
        return Ok(c.to_string());
    }
    let path = dir.join("Procfile");
    match std::fs::read_to_string(&path) {
        Ok(text) => release_line(&text).ok_or_else(|| {
            usage(format!("no migration command: {} has no `release:` line; pass --command CMD", path.display()))
        }),
        Err(_) => Err(usage("no migration command: pass --command CMD or run where a Procfile has a `release:` line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_release_line() {
        let p = "web: bundle exec puma\n# release: old\nrelease: bundle exec rake db:migrate\nworker: sidekiq\n";
        assert_eq!(release_line(p).as_deref(), Some("bundle exec rake db:migrate"));
        assert_eq!(release_line("web: x\n"), None);
        assert_eq!(release_line("release:\n"), None);
    }
}
