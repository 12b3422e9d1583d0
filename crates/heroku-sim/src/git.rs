//! `git push heroku main` as the platform answers it. Each app gets a bare repository whose
//! `pre-receive` hook asks the simulator to build the pushed commit, as the platform builds
//! inside its pre-receive: the push streams the build and then the release phase (`remote:`
//! lines), blocks until the release phase has ended, and exits 0 whether it succeeded or failed
//! — only a failed build rejects the push (a long-standing platform behaviour: CI goes green
//! on a failed release phase). The user's `git` is the client; the remote URL stays
//! `https://git.heroku.com/APP.git`, mapped onto the bare repository with git's own
//! `url.<base>.insteadOf`.
//!
//! The build reads the pushed tree's `Procfile` for the slug's process types and the commit
//! for its description. A tree without a Procfile is what no buildpack detects: the push is
//! rejected before any release exists. The slug's files are the simulator's `slug_dir`, as
//! for every other release.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::World;

/// The line that ends a build's stream and carries the hook's exit status.
pub const EXIT_MARKER: &str = "heroku-sim-build-exit: ";

/// What a pushed commit holds, as the build reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// The commit.
    pub commit: String,
    /// Its subject line.
    pub subject: String,
    /// The Procfile's process types (None: the tree has no Procfile).
    pub process_types: Option<Vec<(String, String)>>,
}

/// Where a pushed commit's objects are while its pre-receive hook runs: git keeps them in a
/// quarantine directory until the hook accepts the push.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// `GIT_OBJECT_DIRECTORY` of the hook.
    pub object_dir: Option<String>,
    /// `GIT_ALTERNATE_OBJECT_DIRECTORIES` of the hook.
    pub alternates: Option<String>,
}

/// Reads `commit` of the bare repository `git_dir`.
pub fn read_commit(git_dir: &Path, objects: &Objects, commit: &str) -> std::io::Result<Pushed> {
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.arg("--git-dir").arg(git_dir).args(args);
        if let Some(d) = objects.object_dir.as_deref().filter(|d| !d.is_empty()) {
            c.env("GIT_OBJECT_DIRECTORY", d);
        }
        if let Some(a) = objects.alternates.as_deref().filter(|a| !a.is_empty()) {
            c.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", a);
        }
        c.output()
    };
    let subject = git(&["log", "-1", "--format=%s", commit])?;
    if !subject.status.success() {
        return Err(std::io::Error::other(format!("no commit {commit}")));
    }
    let procfile = git(&["show", &format!("{commit}:Procfile")])?;
    Ok(Pushed {
        commit: commit.to_string(),
        subject: String::from_utf8_lossy(&subject.stdout).trim().to_string(),
        process_types: procfile.status.success().then(|| parse_procfile(&String::from_utf8_lossy(&procfile.stdout))),
    })
}

/// `type: command` lines, as the platform reads a Procfile (comments and blank lines skipped).
pub fn parse_procfile(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (name, command) = l.split_once(':')?;
            let name = name.trim();
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            (valid && !command.trim().is_empty()).then(|| (name.to_string(), command.trim().to_string()))
        })
        .collect()
}

/// Creates `root/APP.git` with the build hook pointed at the simulator at `sim_url`.
pub fn create_remote(root: &Path, app: &str, sim_url: &str, token: &str) -> std::io::Result<PathBuf> {
    let dir = root.join(format!("{app}.git"));
    if !dir.exists() {
        let out =
            Command::new("git").args(["init", "--quiet", "--bare", "--initial-branch=main"]).arg(&dir).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(String::from_utf8_lossy(&out.stderr).to_string()));
        }
    }
    let hook = dir.join("hooks/pre-receive");
    std::fs::write(&hook, hook_script(app, sim_url, token))?;
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(dir)
}

/// The hook: one build per push to main (or master), its lines printed as they come (git
/// shows them as `remote:` lines), its status from the last line.
fn hook_script(app: &str, sim_url: &str, token: &str) -> String {
    format!(
        r#"#!/bin/sh
# heroku-sim: the platform's build of a push (see heroku-sim's git module).
status_file=$(mktemp)
while read -r old new ref; do
  case "$ref" in
    refs/heads/main|refs/heads/master) ;;
    *) echo "Pushed to a branch other than main or master: not built."; continue ;;
  esac
  echo 1 > "$status_file"
  curl -sS -N -X POST -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \
    --data "{{\"commit\":\"$new\",\"git_dir\":\"$PWD\",\"object_dir\":\"$GIT_OBJECT_DIRECTORY\",\"alternates\":\"$GIT_ALTERNATE_OBJECT_DIRECTORIES\"}}" "{sim_url}/_sim/apps/{app}/builds" |
    while IFS= read -r line; do
      case "$line" in
        *"{marker}"*) echo "${{line##*: }}" > "$status_file" ;;
        *) printf '%s\n' "$line" ;;
      esac
    done
  status=$(cat "$status_file")
  if [ "${{status:-1}}" != 0 ]; then rm -f "$status_file"; exit "${{status:-1}}"; fi
done
rm -f "$status_file"
exit 0
"#,
        marker = EXIT_MARKER.trim_end()
    )
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds `commit` of `git_dir` for `app` and writes what the platform prints, then follows the
/// release phase to its end; the last line is [`EXIT_MARKER`] with the hook's status.
pub fn build(
    world: Arc<Mutex<World>>,
    app: &str,
    git_dir: &Path,
    objects: &Objects,
    commit: &str,
    out: &mut dyn Write,
) {
    let mut say = |line: &str| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let stack = lock(&world).apps.get(app).map(|a| a.stack.clone()).unwrap_or_default();
    say(&format!("-----> Building on the {} stack", if stack == "cnb" { "Heroku-24 (cnb)" } else { "Heroku-24" }));
    let pushed = match read_commit(git_dir, objects, commit) {
        Ok(p) => p,
        Err(e) => {
            say(&format!(" !     {e}"));
            return say(&format!("{EXIT_MARKER}1"));
        }
    };
    let Some(types) = pushed.process_types.clone() else {
        say(" !     No default language could be detected for this app.");
        say("       HINT: This occurs when Heroku cannot detect the buildpack to use for this application automatically.");
        say(" !     Push failed");
        return say(&format!("{EXIT_MARKER}1"));
    };
    say("-----> Discovering process types");
    let names: Vec<&str> = types.iter().map(|(t, _)| t.as_str()).collect();
    say(&format!("       Procfile declares types -> {}", names.join(", ")));
    say("-----> Compressing...");
    say("       Done: 1.2M");
    say("-----> Launching...");
    let has_release = types.iter().any(|(t, _)| t == "release");
    if has_release {
        say(" !     Release command declared: this new release will not be available until the command succeeds.");
    }
    let (version, output_id) = release(&world, app, &pushed, &types);
    say(&format!("       Released v{version}"));
    say(&format!("       https://{app}.herokuapp.com/ deployed to Heroku"));
    say("");
    say("Verifying deploy... done.");
    if let Some(id) = output_id {
        say("Running release command...");
        say("");
        let ok = stream_release_phase(&world, app, version, &id, &mut say);
        say(if ok { "Waiting for release.... done." } else { "Waiting for release.... failed." });
    }
    // The push succeeded: the release phase's outcome does not change its status.
    say(&format!("{EXIT_MARKER}0"));
}

/// Creates the slug and the release (its release phase starts at once); its version and the
/// release output's id.
fn release(world: &Arc<Mutex<World>>, app: &str, pushed: &Pushed, types: &[(String, String)]) -> (u64, Option<String>) {
    let mut w = lock(world);
    let now = Instant::now();
    w.tick(now);
    let refs: Vec<(&str, &str)> = types.iter().map(|(t, c)| (t.as_str(), c.as_str())).collect();
    let slug_id = w.add_slug(app, &pushed.commit, &pushed.subject, &refs);
    let slug = w.apps[app].slugs.iter().find(|s| s.id == slug_id).cloned().expect("just added");
    let short: String = pushed.commit.chars().take(8).collect();
    let version = w.release_slug(app, slug, format!("Deploy {short}"), now);
    for job in std::mem::take(&mut w.release_phases.to_start) {
        crate::release_phase::start(job, world.clone());
    }
    let output = w.apps[app].releases.iter().find(|r| r.version == version).and_then(|r| r.output_id.clone());
    (version, output)
}

/// Writes the release command's output as it comes until the phase ends; true when it succeeded.
fn stream_release_phase(
    world: &Arc<Mutex<World>>,
    app: &str,
    version: u64,
    output_id: &str,
    say: &mut dyn FnMut(&str),
) -> bool {
    let mut sent = 0;
    loop {
        let (text, done, status) = {
            let w = lock(world);
            let o = w.release_phases.outputs.get(output_id).cloned().unwrap_or_default();
            let status = w
                .apps
                .get(app)
                .and_then(|a| a.releases.iter().find(|r| r.version == version))
                .map(|r| r.status.clone());
            (o.text, o.done, status.unwrap_or_default())
        };
        for line in text[sent.min(text.len())..].lines() {
            say(line);
        }
        sent = text.len();
        if done && status != "pending" {
            return status == "succeeded";
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
