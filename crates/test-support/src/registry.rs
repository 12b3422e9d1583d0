//! A real npm registry (verdaccio, pinned in tests/registry) on 127.0.0.1 for the install
//! tests and the install benchmark: it serves the plugin's platform packages and the
//! PostgreSQL builds the plan fetches, published to it by the caller.

use std::process::Command;

use crate::heroku_cli::text;

/// A real npm registry (verdaccio, pinned in tests/registry) on 127.0.0.1, stopped on drop.
pub struct Registry {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts it on a free port and waits until it listens.
    pub fn start() -> Registry {
        let root = crate::workspace_root().join("tests/registry/node_modules/verdaccio/bin/verdaccio");
        assert!(root.is_file(), "run `npm ci --prefix tests/registry` (scripts/test does)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.path().join("config.yaml");
        // Only these two scopes are served here; everything else comes from the registry npm
        // is configured with, as on a user's machine.
        std::fs::write(
            &config,
            format!(
                "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 10\nuplinks: {{}}\npackages:\n  '@heroku-deploy-safety/*':\n    access: $all\n    publish: $authenticated\n  '@embedded-postgres/*':\n    access: $all\n    publish: $authenticated\nmax_body_size: 500mb\nlog: {{ type: stdout, format: pretty, level: warn }}\n",
                storage = dir.path().join("storage").display(),
                htpasswd = dir.path().join("htpasswd").display()
            ),
        )
        .unwrap();
        let child = Command::new("node")
            .arg(&root)
            .args(["--config", config.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        crate::sessions::wait_until("the registry listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Registry { child, url, _dir: dir }
    }

    /// A publisher's token: verdaccio's user registration (what `npm adduser` sends).
    pub fn token(&self) -> String {
        let script = format!(
            "fetch('{}-/user/org.couchdb.user:ci', {{method: 'PUT', headers: {{'content-type': 'application/json'}}, body: JSON.stringify({{name: 'ci', password: 'ci-password-1'}})}}).then(r => r.json()).then(j => console.log(j.token))",
            self.url
        );
        let out = Command::new("node").args(["-e", &script]).output().unwrap();
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!token.is_empty() && token != "undefined", "no token: {}", text(&out));
        token
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
