//! migrate-guard as a deploy gets it: the tarball `scripts/package` makes, served over HTTP on
//! 127.0.0.1, installed by the project's buildpack run as the platform runs it — into a slug
//! (classic, Cedar) or a launch layer (Cloud Native Buildpacks, a `cnb` app on Fir) — and the
//! simulator pointed at the result, so its release phase finds `migrate-guard` on PATH.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use heroku_sim::World;

use crate::generation::Generation;
use crate::workspace_root;

/// `scripts/package --only migrate-guard --from <bin's dir> --out OUT`: the tarball and its sha256.
pub fn package(bin: &Path, out: &Path) -> anyhow::Result<(PathBuf, String)> {
    let from = bin.parent().ok_or_else(|| anyhow::anyhow!("{} has no directory", bin.display()))?;
    let o = Command::new(workspace_root().join("scripts/package"))
        .args(["--only", "migrate-guard", "--from"])
        .arg(from)
        .arg("--out")
        .arg(out)
        .output()?;
    anyhow::ensure!(o.status.success(), "scripts/package failed: {}", String::from_utf8_lossy(&o.stderr));
    let line = String::from_utf8_lossy(&o.stdout).to_string();
    let mut parts = line.split_whitespace();
    let path = PathBuf::from(parts.next().unwrap_or_default());
    let sha = parts.next().unwrap_or_default().to_string();
    anyhow::ensure!(sha.len() == 64, "scripts/package printed no sha256: {line}");
    Ok((path, sha))
}

/// Serves `file` at any path on 127.0.0.1 until the process ends; returns its URL and a
/// count of the requests.
pub fn serve(file: PathBuf) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let Ok(read) = conn.try_clone() else { continue };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = std::fs::read(&file).unwrap_or_default();
            let mut conn = conn;
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = conn.write_all(&body);
        }
    });
    Ok((format!("http://127.0.0.1:{port}/releases/migrate-guard.tar.gz"), hits))
}

/// The app's config vars as a buildpack reads them (one file per var).
pub fn env_dir(dir: &Path, vars: &[(&str, &str)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (k, v) in vars {
        std::fs::write(dir.join(k), v)?;
    }
    Ok(())
}

/// Builds the app under `dir` with the buildpack for generation `g` (classic into a slug on
/// Cedar, a CNB launch layer on Fir) from the tarball of `bin`, and points `world` at it.
pub fn install_migrate_guard(bin: &Path, world: &mut World, g: Generation, dir: &Path) -> anyhow::Result<()> {
    let (tarball, sha) = package(bin, &dir.join("dist"))?;
    let (url, _) = serve(tarball)?;
    let vars = [("MIGRATE_GUARD_URL", url.as_str()), ("MIGRATE_GUARD_SHA256", sha.as_str())];
    let slug = dir.join("slug");
    std::fs::create_dir_all(&slug)?;
    let bp = workspace_root().join("buildpack");
    let out = match g {
        Generation::Cedar => {
            env_dir(&dir.join("env"), &vars)?;
            Command::new(bp.join("bin/compile")).arg(&slug).arg(dir.join("cache")).arg(dir.join("env")).output()?
        }
        Generation::Fir => {
            let platform = dir.join("platform");
            env_dir(&platform.join("env"), &vars)?;
            let layers = dir.join("layers");
            let own = layers.join("heroku-deploy-safety_migrate-guard");
            std::fs::create_dir_all(&own)?;
            let plan = dir.join("plan.toml");
            std::fs::write(&plan, "")?;
            world.slug.layers_dir = Some(layers);
            Command::new(bp.join("bin/build"))
                .current_dir(&slug)
                .env("CNB_BUILDPACK_DIR", &bp)
                .env("CNB_PLATFORM_DIR", &platform)
                .env("CNB_BP_PLAN_PATH", &plan)
                .env("CNB_LAYERS_DIR", &own)
                .output()?
        }
    };
    anyhow::ensure!(
        out.status.success(),
        "the buildpack failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    world.slug.dir = Some(slug);
    Ok(())
}
