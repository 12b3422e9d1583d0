//! Where the Platform API lives: `HEROKU_HOST` with the Heroku CLI's meaning.

use crate::Error;

/// The default API base URL when `HEROKU_HOST` is unset or empty.
pub const DEFAULT_API_URL: &str = "https://api.heroku.com";

/// A validated API base URL (scheme, host, optional port; no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiHost {
    base_url: String,
    host: String,
    authority: String,
}

impl ApiHost {
    /// Resolves the API base URL from the value of `HEROKU_HOST`.
    ///
    /// - unset or empty: `https://api.heroku.com`;
    /// - a value starting with `http://` or `https://`: used as the base URL as-is;
    /// - any other value `h`: `https://api.h` (what the Heroku CLI does for e.g. `HEROKU_HOST=heroku.com`).
    ///
    /// Plain `http://` is refused unless the host is loopback: the token travels in a header.
    pub fn from_heroku_host(value: Option<&str>) -> Result<Self, Error> {
        let value = value.map(str::trim).unwrap_or("");
        let base = if value.is_empty() {
            DEFAULT_API_URL.to_string()
        } else if value.starts_with("http://") || value.starts_with("https://") {
            value.trim_end_matches('/').to_string()
        } else if let Some((scheme, _)) = value.split_once("://") {
            return Err(Error::Config(format!(
                "HEROKU_HOST `{value}` uses the scheme `{scheme}`; the Platform API speaks https (or http to 127.0.0.1): set HEROKU_HOST to a host name like heroku.com or to https://host[:port]"
            )));
        } else {
            let bare = value.trim_end_matches('/');
            // `127.0.0.1:5000` would become `https://api.127.0.0.1:5000`: an address is not a
            // host name to put `api.` before.
            let host_part = bare.rsplit_once(':').map(|(h, _)| h).unwrap_or(bare);
            if bare.contains('@')
                || host_part.parse::<std::net::IpAddr>().is_ok()
                || bare.contains(':')
                || bare.contains('/')
            {
                return Err(Error::Config(format!(
                    "HEROKU_HOST `{}` is not a host name: give one like heroku.com (the API is then https://api.heroku.com), or a URL like http://127.0.0.1:PORT for a local API",
                    if bare.contains('@') { "…@…".to_string() } else { bare.to_string() }
                )));
            }
            format!("https://api.{bare}")
        };
        Self::parse(&base)
    }

    /// Reads `HEROKU_HOST` from the environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_heroku_host(std::env::var("HEROKU_HOST").ok().as_deref())
    }

    fn parse(base: &str) -> Result<Self, Error> {
        let (scheme, rest) = base.split_once("://").ok_or_else(|| {
            Error::Config(format!("HEROKU_HOST `{base}` is not a URL; use a host name or http(s)://host[:port]"))
        })?;
        let authority = rest.split('/').next().unwrap_or("");
        // Credentials in the URL would be sent to the API and shown in messages: refused, and
        // never echoed.
        if authority.contains('@') {
            return Err(Error::Config(format!(
                "HEROKU_HOST carries credentials ({scheme}://…@…): the token goes in HEROKU_API_KEY or ~/.netrc (heroku login); remove them from HEROKU_HOST"
            )));
        }
        let host = host_of_authority(authority);
        if host.is_empty() {
            return Err(Error::Config(format!("HEROKU_HOST `{base}` has no host name")));
        }
        if scheme == "http" && !is_loopback(&host) {
            return Err(Error::Config(format!(
                "refusing plain http to {host}: the API token would travel unencrypted; use https:// (http is allowed only to 127.0.0.1, ::1 or localhost)"
            )));
        }
        let authority = authority.rsplit('@').next().unwrap_or(authority).to_ascii_lowercase();
        Ok(ApiHost { base_url: base.to_string(), host, authority })
    }

    /// The base URL, e.g. `https://api.heroku.com`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The host name alone (no port), which is also the `~/.netrc` machine name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host with its port when the URL has one, e.g. `api.heroku.com` or `127.0.0.1:5000`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The netrc machine names to try, as `heroku login` writes them: the URL's host with its
    /// port when it has one (what the Heroku CLI uses for an http(s) HEROKU_HOST), then the
    /// bare host.
    pub fn netrc_machines(&self) -> Vec<&str> {
        if self.authority != self.host {
            vec![self.authority.as_str(), self.host.as_str()]
        } else {
            vec![self.host.as_str()]
        }
    }

    /// True when the base URL is plain http (only ever loopback).
    pub fn is_plain_http(&self) -> bool {
        self.base_url.starts_with("http://")
    }
}

fn host_of_authority(authority: &str) -> String {
    let without_user = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = without_user.strip_prefix('[') {
        // [::1]:port
        return rest.split(']').next().unwrap_or("").to_string();
    }
    without_user.split(':').next().unwrap_or("").to_ascii_lowercase()
}

/// True for names and addresses that never leave the machine.
pub fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod bad_host_tests {
    use super::*;

    #[test]
    fn an_address_or_credentials_in_heroku_host_are_refused_without_echoing_a_password() {
        let e = ApiHost::from_heroku_host(Some("127.0.0.1:56001")).unwrap_err().to_string();
        assert!(e.contains("`127.0.0.1:56001` is not a host name") && e.contains("http://127.0.0.1:PORT"), "{e}");
        assert!(ApiHost::from_heroku_host(Some("localhost:5000")).is_err());
        for v in ["https://user:hunter2@api.example.com", "user:hunter2@example.com"] {
            let e = ApiHost::from_heroku_host(Some(v)).unwrap_err().to_string();
            assert!(!e.contains("hunter2") && !e.contains("user:"), "{e}");
        }
        assert_eq!(ApiHost::from_heroku_host(Some("heroku.com")).unwrap().base_url(), "https://api.heroku.com");
        assert_eq!(
            ApiHost::from_heroku_host(Some("http://127.0.0.1:5000")).unwrap().base_url(),
            "http://127.0.0.1:5000"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_api_heroku_com() {
        let h = ApiHost::from_heroku_host(None).unwrap();
        assert_eq!(h.base_url(), "https://api.heroku.com");
        assert_eq!(h.host(), "api.heroku.com");
        assert_eq!(ApiHost::from_heroku_host(Some("")).unwrap().base_url(), DEFAULT_API_URL);
    }

    #[test]
    fn bare_host_gets_api_prefix_and_https() {
        let h = ApiHost::from_heroku_host(Some("heroku-staging.com")).unwrap();
        assert_eq!(h.base_url(), "https://api.heroku-staging.com");
        assert_eq!(h.host(), "api.heroku-staging.com");
    }

    #[test]
    fn url_values_are_used_as_is() {
        let h = ApiHost::from_heroku_host(Some("https://example.test:8443/")).unwrap();
        assert_eq!(h.base_url(), "https://example.test:8443");
        assert_eq!(h.host(), "example.test");
        let h = ApiHost::from_heroku_host(Some("http://127.0.0.1:5000")).unwrap();
        assert_eq!(h.base_url(), "http://127.0.0.1:5000");
        assert!(h.is_plain_http());
        assert_eq!(h.netrc_machines(), vec!["127.0.0.1:5000", "127.0.0.1"]);
        assert_eq!(ApiHost::from_heroku_host(None).unwrap().netrc_machines(), vec!["api.heroku.com"]);
        assert!(ApiHost::from_heroku_host(Some("http://[::1]:80")).is_ok());
        assert!(ApiHost::from_heroku_host(Some("http://localhost:80")).is_ok());
    }

    #[test]
    fn another_scheme_is_a_configuration_error_naming_the_variable() {
        for value in ["ftp://x", "postgres://db.example.com", "HTTPS-ish://x"] {
            let err = ApiHost::from_heroku_host(Some(value)).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{value}: {err:?}");
            assert!(err.to_string().starts_with(&format!("HEROKU_HOST `{value}` uses the scheme")), "{err}");
        }
    }

    #[test]
    fn plain_http_refused_to_a_non_loopback_host() {
        let err = ApiHost::from_heroku_host(Some("http://api.example.com")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("refusing plain http to api.example.com"), "{msg}");
        assert!(ApiHost::from_heroku_host(Some("http://10.0.0.1:80")).is_err());
        assert!(ApiHost::from_heroku_host(Some("http://127.0.0.1.evil.com")).is_err());
    }
}
