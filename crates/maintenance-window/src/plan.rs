//! Is a window needed? The diff between the running slug's commit and the target, limited to
//! the paths whose change needs the app down (migrations).

use std::path::Path;
use std::process::Command;

use cli_kit::usage;
use heroku_api::Client;
use serde::{Deserialize, Serialize};

use crate::cli::DiffArgs;

/// The decision and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Base commit.
    pub base: String,
    /// Where the base came from.
    pub base_source: String,
    /// Target ref as given, and the commit it names.
    pub target: String,
    /// Pathspecs used.
    pub pathspecs: Vec<String>,
    /// What the repository looks like (`rails`, `django`, `given`).
    pub kind: String,
    /// Files that changed under the pathspecs.
    pub files: Vec<String>,
    /// A window is needed.
    pub needed: bool,
    /// The app's current release version, when the base came from it (saves a second lookup).
    pub release_version: Option<u64>,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("git").args(args).current_dir(dir).output().map_err(|e| usage(format!("cannot run git: {e}")))
}

/// Each given pathspec must name something in the base or the target tree: a typo
/// (`db/migrat`) or a broken glob would otherwise read as "nothing changed, no window needed"
/// and run the deploy step with the site up.
/// Matched with `git diff`'s own pathspec semantics (globs, `**`, `:(glob)` magic), the ones
/// the decision uses: the tree's files are listed as a diff from the empty tree.
fn check_pathspecs_match(root: &Path, pathspecs: &[String], base: &str, target: &str) -> anyhow::Result<()> {
    let empty = git(root, &["hash-object", "-t", "tree", "/dev/null"])?;
    let empty = String::from_utf8_lossy(&empty.stdout).trim().to_string();
    for spec in pathspecs {
        let mut matched = false;
        for tree in [base, target] {
            let out = git(root, &["diff", "--name-only", "--no-renames", &empty, tree, "--", spec])?;
            if !out.status.success() {
                let why = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default().to_string();
                return Err(usage(format!(
                    "--if-changed {}: git cannot read this pathspec ({}); nothing was changed",
                    cli_kit::printable(spec),
                    cli_kit::printable(why.trim_start_matches("fatal: "))
                )));
            }
            matched |= !out.stdout.is_empty();
        }
        if !matched {
            return Err(usage(format!(
                "--if-changed {}: matches no file in {base} or {target}; check the path (a typo would mean \"no window needed\"); nothing was changed",
                cli_kit::printable(spec)
            )));
        }
    }
    Ok(())
}

/// Default pathspecs by what the repository is.
pub fn default_pathspecs(dir: &Path) -> Option<(&'static str, Vec<String>)> {
    if dir.join("manage.py").is_file() {
        return Some(("django", vec![":(glob)**/migrations/**".to_string()]));
    }
    if dir.join("db/migrate").is_dir() || dir.join("config/application.rb").is_file() || dir.join("Gemfile").is_file() {
        return Some(("rails", vec!["db/migrate".into(), "db/schema.rb".into(), "db/structure.sql".into()]));
    }
    None
}

/// Decides. Reads the app's current release and slug only when `--base` is not given.
pub fn decide(client: &Client, app: &str, diff: &DiffArgs, dir: &Path) -> anyhow::Result<Decision> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if !top.status.success() {
        return Err(usage(format!("{} is not a git repository: run maintenance-window from the app's checkout (the diff decides whether a window is needed)", dir.display())));
    }
    let root = std::path::PathBuf::from(String::from_utf8_lossy(&top.stdout).trim());
    let (kind, pathspecs) = if !diff.if_changed.is_empty() {
        ("given".to_string(), diff.if_changed.clone())
    } else {
        let (k, p) = default_pathspecs(&root).ok_or_else(|| {
            usage("cannot tell what changes need a window: this is neither a Rails nor a Django app; pass --if-changed PATHSPEC…")
        })?;
        (k.to_string(), p)
    };
    let (base, base_source, release_version) = match &diff.base {
        Some(b) => (b.clone(), "--base".to_string(), None),
        None => {
            // What runs now: the current release, not the newest (a release phase may be running
            // or have failed).
            let release = release_phase::current_release(client, app)?
                .ok_or_else(|| usage(format!("{app} has no release yet; pass --base REF")))?;
            // Cedar: the release's slug records the commit. Fir: the release runs an OCI image,
            // which records it (as `heroku pipelines:diff` reads it).
            let (commit, what) = match (&release.slug, &release.oci_image) {
                (Some(slug), _) => (client.slug_info(app, &slug.id)?.commit, "slug"),
                (None, Some(image)) => (client.oci_image_info(app, &image.id)?.and_then(|i| i.commit), "OCI image"),
                (None, None) => {
                    return Err(usage(format!(
                        "{app}'s current release v{} has neither a slug nor an OCI image; pass --base REF",
                        release.version
                    )))
                }
            };
            let commit = commit.filter(|c| !c.is_empty()).ok_or_else(|| {
                usage(format!("the {what} of {app}'s v{} records no commit; pass --base REF", release.version))
            })?;
            (commit, format!("the {what} of {app}'s current release v{}", release.version), Some(release.version))
        }
    };
    for (r, what) in [(&base, "base"), (&diff.target, "target")] {
        let ok = git(&root, &["rev-parse", "--verify", "--quiet", &format!("{r}^{{commit}}")])?;
        if !ok.status.success() {
            let source = if what == "base" { base_source.as_str() } else { "--target" };
            // It may be there and not be a commit (`HEAD:README` names a file).
            let kind = git(&root, &["cat-file", "-t", r])?;
            let kind = String::from_utf8_lossy(&kind.stdout).trim().to_string();
            return Err(usage(if kind.is_empty() {
                format!("{what} commit {r} ({source}) is not in this repository: run `git fetch` (or pass --base REF)")
            } else {
                format!("{what} {r} ({source}) is a {kind}, not a commit: give a commit, branch or tag")
            }));
        }
    }
    if kind == "given" {
        check_pathspecs_match(&root, &pathspecs, &base, &diff.target)?;
    }
    let mut args = vec!["diff".to_string(), "--name-only".into(), format!("{base}..{}", diff.target), "--".into()];
    args.extend(pathspecs.iter().cloned());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = git(&root, &arg_refs)?;
    if !out.status.success() {
        return Err(usage(format!("git diff failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let files: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
    Ok(Decision {
        needed: !files.is_empty(),
        base,
        base_source,
        target: diff.target.clone(),
        pathspecs,
        kind,
        files,
        release_version,
    })
}
