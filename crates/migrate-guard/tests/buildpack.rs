//! The buildpack that puts migrate-guard on the dyno's PATH, run as the platforms run
//! buildpacks: the classic API (bin/detect BUILD_DIR, bin/compile BUILD_DIR CACHE_DIR ENV_DIR,
//! bin/release, then `.profile.d` sourced at dyno start with HOME at the slug) and the Cloud
//! Native Buildpacks API 0.10 (CNB_LAYERS_DIR, CNB_PLATFORM_DIR/env, CNB_BP_PLAN_PATH; a launch
//! layer whose bin/ the launcher puts on PATH). The tarball is what `scripts/package` makes,
//! served over HTTP on 127.0.0.1, selected with the app's MIGRATE_GUARD_URL/SHA256 config vars.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;

use test_support::tool::OutputExt;
use test_support::workspace_root;

const BIN: &str = env!("CARGO_BIN_EXE_migrate-guard");

fn package(out: &Path) -> (PathBuf, String) {
    test_support::buildpack::package(Path::new(BIN), out).unwrap()
}

fn serve(file: PathBuf) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    test_support::buildpack::serve(file).unwrap()
}

fn buildpack(script: &str) -> Command {
    let mut c = Command::new(workspace_root().join("buildpack/bin").join(script));
    c.env_remove("CNB_BUILD_PLAN_PATH").env_remove("CNB_LAYERS_DIR");
    c
}

fn config_vars(dir: &Path, vars: &[(&str, &str)]) {
    test_support::buildpack::env_dir(dir, vars).unwrap()
}

/// A shell as a dyno starts one: HOME at the slug, `.profile.d` sourced, PATH without the
/// build's tools.
fn in_dyno(slug: &Path, command: &str) -> Output {
    Command::new("/bin/bash")
        .arg("-c")
        .arg(format!("for f in \"$HOME\"/.profile.d/*.sh; do . \"$f\"; done; {command}"))
        .env_clear()
        .env("HOME", slug)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir(slug)
        .output()
        .unwrap()
}

#[test]
fn the_classic_buildpack_installs_the_pinned_tarball_verified_and_cached() {
    let tmp = test_support::tempfile::tempdir().unwrap();
    let (tarball, sha) = package(&tmp.path().join("dist"));
    let (url, hits) = serve(tarball);
    let (build, cache, env) = (tmp.path().join("app"), tmp.path().join("cache"), tmp.path().join("env"));
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(build.join("Procfile"), "release: migrate-guard -- ./bin/migrate\n").unwrap();
    config_vars(&env, &[("MIGRATE_GUARD_URL", &url), ("MIGRATE_GUARD_SHA256", &sha)]);

    let detect = buildpack("detect").arg(&build).output().unwrap();
    assert_eq!((detect.code(), detect.stdout_text().trim().to_string()), (0, "migrate-guard".into()));
    let compile = buildpack("compile").arg(&build).arg(&cache).arg(&env).output().unwrap();
    assert_eq!(compile.code(), 0, "{}", compile.dump());
    assert!(compile.stdout_text().contains("-----> Installing migrate-guard 0.1.0"), "{}", compile.dump());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let release = buildpack("release").arg(&build).output().unwrap();
    assert!(release.stdout_text().starts_with("---\n"), "{}", release.dump());

    let version = in_dyno(&build, "migrate-guard --version");
    assert_eq!(version.code(), 0, "{}", version.dump());
    assert!(version.stdout_text().starts_with("migrate-guard "), "{}", version.dump());
    // The installed binary refuses a release command without a database, as in a dyno.
    let bare = in_dyno(&build, "migrate-guard -- true");
    assert_eq!(bare.code(), 2, "{}", bare.dump());
    assert!(bare.stderr_text().contains("DATABASE_URL is not set in this dyno"), "{}", bare.dump());

    // A second build reuses the cached, verified tarball.
    let again = buildpack("compile").arg(&build).arg(&cache).arg(&env).output().unwrap();
    assert_eq!(again.code(), 0, "{}", again.dump());
    assert!(again.stdout_text().contains("using the cached tarball"), "{}", again.dump());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "nothing fetched again");
}

#[test]
fn a_tarball_whose_sha256_differs_from_the_pin_is_refused_and_nothing_installed() {
    let tmp = test_support::tempfile::tempdir().unwrap();
    let (tarball, _) = package(&tmp.path().join("dist"));
    let (url, _) = serve(tarball);
    let (build, cache, env) = (tmp.path().join("app"), tmp.path().join("cache"), tmp.path().join("env"));
    std::fs::create_dir_all(&build).unwrap();
    let wrong = "ab".repeat(32);
    config_vars(&env, &[("MIGRATE_GUARD_URL", &url), ("MIGRATE_GUARD_SHA256", &wrong)]);
    let out = buildpack("compile").arg(&build).arg(&cache).arg(&env).output().unwrap();
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stdout_text().contains(&format!("not the pinned {wrong}: refusing to install it")), "{}", out.dump());
    assert!(!build.join(".heroku/migrate-guard/bin/migrate-guard").exists());
    // A URL without its checksum is refused before anything is fetched.
    config_vars(&env, &[("MIGRATE_GUARD_SHA256", "")]);
    std::fs::remove_file(env.join("MIGRATE_GUARD_SHA256")).unwrap();
    let out = buildpack("compile").arg(&build).arg(&cache).arg(&env).output().unwrap();
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stdout_text().contains("MIGRATE_GUARD_URL is set without MIGRATE_GUARD_SHA256"), "{}", out.dump());
}

#[test]
fn the_cloud_native_buildpack_puts_migrate_guard_in_a_launch_layer() {
    let tmp = test_support::tempfile::tempdir().unwrap();
    let (tarball, sha) = package(&tmp.path().join("dist"));
    let (url, hits) = serve(tarball);
    let layers = tmp.path().join("layers/heroku-deploy-safety_migrate-guard");
    let platform = tmp.path().join("platform");
    let app = tmp.path().join("workspace");
    std::fs::create_dir_all(&layers).unwrap();
    std::fs::create_dir_all(&app).unwrap();
    config_vars(&platform.join("env"), &[("MIGRATE_GUARD_URL", &url), ("MIGRATE_GUARD_SHA256", &sha)]);
    let plan = tmp.path().join("plan.toml");
    std::fs::write(&plan, "").unwrap();
    let cnb = |script: &str| {
        let mut c = buildpack(script);
        c.current_dir(&app)
            .env("CNB_BUILDPACK_DIR", workspace_root().join("buildpack"))
            .env("CNB_PLATFORM_DIR", &platform)
            .env("CNB_BUILD_PLAN_PATH", &plan)
            .env("CNB_BP_PLAN_PATH", &plan)
            .env("CNB_LAYERS_DIR", &layers);
        c
    };
    let detect = cnb("detect").output().unwrap();
    assert_eq!(detect.code(), 0, "{}", detect.dump());
    let build = cnb("build").output().unwrap();
    assert_eq!(build.code(), 0, "{}", build.dump());
    let toml = std::fs::read_to_string(layers.join("migrate-guard.toml")).unwrap();
    assert!(toml.contains("[types]\nlaunch = true\ncache = true"), "{toml}");
    assert!(toml.contains(&format!("sha256 = \"{sha}\"")), "{toml}");
    let installed = layers.join("migrate-guard/bin/migrate-guard");
    let v = Command::new(&installed).arg("--version").output().unwrap();
    assert!(v.stdout_text().starts_with("migrate-guard "), "{}", v.dump());
    // The layer is cached: a rebuild reuses it.
    let again = cnb("build").output().unwrap();
    assert!(again.stdout_text().contains("using the cached tarball"), "{}", again.dump());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// The heroku-22 stack has glibc 2.35: the binary may need no newer symbol version.
#[test]
fn the_binary_needs_no_glibc_newer_than_the_heroku_22_stack() {
    let out = Command::new("objdump").arg("-T").arg(BIN).output().expect("objdump (binutils)");
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    let newest = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let v: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            Some((parts.next()?, parts.next().unwrap_or(0)))
        })
        .max()
        .expect("a glibc-linked binary");
    assert!(newest <= (2, 35), "needs GLIBC_{}.{}", newest.0, newest.1);
}

/// The pin the buildpack installs by default: a version and 64 hex digits.
#[test]
fn the_buildpack_pins_a_version_and_a_sha256() {
    let env = std::fs::read_to_string(workspace_root().join("buildpack/release.env")).unwrap();
    let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_string();
    assert_eq!(get("MIGRATE_GUARD_VERSION"), env!("CARGO_PKG_VERSION"));
    let sha = get("MIGRATE_GUARD_SHA256");
    assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()), "{sha}");
    assert!(get("MIGRATE_GUARD_URL")
        .ends_with(&format!("migrate-guard-{}-x86_64-unknown-linux-gnu.tar.gz", env!("CARGO_PKG_VERSION"))));
}
