//! Connecting with libpq's `sslmode` meanings over rustls.
//!
//! `disable` plain; `prefer` TLS if offered, no certificate check; `require` TLS, no
//! certificate check (libpq's meaning, and what Heroku Postgres expects); `verify-ca` TLS with
//! a trusted chain; `verify-full` also the host name. Roots: `sslrootcert` from the URL, else
//! the system's plus `SSL_CERT_FILE`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode as DriverSslMode;
use postgres::{Client, Config, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind};

/// libpq's TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it; certificate not checked.
    Prefer,
    /// TLS required; certificate not checked.
    Require,
    /// TLS required; chain checked, host name not.
    VerifyCa,
    /// TLS required; chain and host name checked.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling.
    pub fn parse(s: &str) -> Result<SslMode, Error> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"),
                ))
            }
        })
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `postgres://…` URL (or libpq key=value string).
    pub url: String,
    /// Used when the URL has no `sslmode`: `Prefer` for a URL the user typed, `Require` for
    /// one resolved from a Heroku app.
    pub default_sslmode: SslMode,
    /// `application_name` of this tool's session (so it can exclude itself and be found).
    pub application_name: String,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// `lock_timeout` of this tool's own session: it must never join a lock queue it came to
    /// inspect (a DDL holding the system catalogs would otherwise hang even the connection).
    pub lock_timeout: Duration,
    /// `statement_timeout` of this tool's own session.
    pub statement_timeout: Duration,
    /// The ways out when every connection slot is taken, worded for where this database came
    /// from (the app whose `pg:killall` would work, or none for a URL typed by hand).
    pub when_full: Option<String>,
}

impl ConnectOptions {
    /// Options for a URL typed by the user (`sslmode` defaults to prefer, as in libpq).
    pub fn new(url: impl Into<String>, application_name: &str) -> ConnectOptions {
        ConnectOptions {
            url: url.into(),
            default_sslmode: SslMode::Prefer,
            application_name: application_name.into(),
            connect_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(15),
            when_full: None,
        }
    }
}

/// A parsed URL with the TLS settings taken out (the driver does not know verify-*).
#[derive(Debug)]
pub struct ParsedUrl {
    /// Driver config.
    pub config: Config,
    /// The effective mode.
    pub sslmode: SslMode,
    /// `sslrootcert` path, if given.
    pub sslrootcert: Option<String>,
    /// Database name.
    pub dbname: String,
    /// Host (first), for messages.
    pub host: String,
}

/// Parses `url`, pulling out `sslmode` and `sslrootcert`.
pub fn parse_url(url: &str, default_sslmode: SslMode) -> Result<ParsedUrl, Error> {
    let mut sslmode = None;
    let mut sslrootcert = None;
    let cleaned = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.to_string()),
                Some(("sslrootcert", v)) => sslrootcert = Some(v.to_string()),
                _ => kept.push(pair),
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.to_string()),
                Some(("sslrootcert", v)) => sslrootcert = Some(v.to_string()),
                _ => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let config = Config::from_str(&cleaned).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!("malformed database URL ({e}); expected postgres://USER:PASSWORD@HOST:PORT/DBNAME"),
        )
    })?;
    if config.get_hosts().is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "malformed database URL: no host; expected postgres://USER:PASSWORD@HOST:PORT/DBNAME",
        ));
    }
    let sslmode = match sslmode {
        Some(s) => SslMode::parse(&s)?,
        None => default_sslmode,
    };
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let dbname = config.get_dbname().or(config.get_user()).unwrap_or("postgres").to_string();
    Ok(ParsedUrl { config, sslmode, sslrootcert, dbname, host })
}

/// A connection made by [`connect`]: the driver's client, and whether a connection pooler
/// sits between this tool and the server.
pub struct Conn {
    client: Client,
    pooled: Option<(Duration, Duration)>,
}

impl Conn {
    /// True when the server refused the startup options and the connection goes through a
    /// pooler (PgBouncer answers "unsupported startup parameter: options"): the lock view is
    /// still the server's, and this tool's timeouts are set per statement.
    pub fn through_pooler(&self) -> bool {
        self.pooled.is_some()
    }
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// What the inspection code runs on: a connection from [`connect`] or a plain driver client
/// (tests). A pooled connection carries timeouts the inspection must set per statement.
pub trait Connection {
    /// The driver's client.
    fn client(&mut self) -> &mut Client;
    /// `(lock_timeout, statement_timeout)` to set with `SET LOCAL` around each inspection
    /// query; `None` when the session already has them (startup options) or is a plain client.
    fn per_statement_timeouts(&self) -> Option<(Duration, Duration)> {
        None
    }
}

impl Connection for Client {
    fn client(&mut self) -> &mut Client {
        self
    }
}

impl Connection for Conn {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }
    fn per_statement_timeouts(&self) -> Option<(Duration, Duration)> {
        self.pooled
    }
}

/// Connects with `statement_timeout` and `lock_timeout` sent as startup options, so they
/// hold from the first catalog read of the connection on. A pooler that refuses startup
/// options (PgBouncer: "unsupported startup parameter") gets a connection without them, and
/// the timeouts are then set with `SET LOCAL` inside each inspection query's own transaction:
/// a session-level `SET` through a transaction-mode pooler would stay on the server connection
/// and reach whichever client (the app) gets it next.
pub fn connect(opts: &ConnectOptions) -> Result<Conn, Error> {
    let timeouts = format!(
        "-c lock_timeout={} -c statement_timeout={}",
        opts.lock_timeout.as_millis(),
        opts.statement_timeout.as_millis()
    );
    match connect_with(opts, Some(&timeouts)) {
        Err(e) if e.message.contains("unsupported startup parameter") => {
            Ok(Conn { client: connect_with(opts, None)?, pooled: Some((opts.lock_timeout, opts.statement_timeout)) })
        }
        Ok(client) => Ok(Conn { client, pooled: None }),
        Err(e) => Err(e),
    }
}

fn connect_with(opts: &ConnectOptions, options: Option<&str>) -> Result<Client, Error> {
    let parsed = parse_url(&opts.url, opts.default_sslmode)?;
    let mut config = parsed.config.clone();
    config.application_name(&opts.application_name).connect_timeout(opts.connect_timeout);
    if let Some(o) = options {
        config.options(o);
    }
    let context = format!("cannot connect to database {} on {}", parsed.dbname, parsed.host);
    let result = match parsed.sslmode {
        SslMode::Disable => config.ssl_mode(DriverSslMode::Disable).connect(NoTls),
        mode => {
            let tls = tls_config(mode, parsed.sslrootcert.as_deref())?;
            let driver_mode = if mode == SslMode::Prefer { DriverSslMode::Prefer } else { DriverSslMode::Require };
            config.ssl_mode(driver_mode).connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        }
    };
    result.map_err(|e| {
        let mut err = Error::from_driver(&context, e);
        if err.message.contains("(SQLSTATE 53300)") {
            let ways_out = opts.when_full.as_deref().unwrap_or(
                "close connections from the clients that hold them, or, for an app's Heroku Postgres, `heroku pg:killall -a APP` (it ends every connection, the app's included)",
            );
            err.message = format!("{}: {ways_out}; nothing was changed", err.message);
        }
        if err.message.contains("server does not support TLS")
            || err.message.contains("TLS") && parsed.sslmode != SslMode::Disable
        {
            err.message.push_str(
                &format!(" (sslmode={:?}; add ?sslmode=disable only for a local server without TLS)", parsed.sslmode)
                    .to_lowercase(),
            );
        }
        err
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    tls_roots::provider()
}

fn tls_config(mode: SslMode, rootcert: Option<&str>) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Unreachable, format!("TLS setup: {e}")))?;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(EncryptOnly)).with_no_client_auth()
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(root_store(rootcert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| Error::new(ErrorKind::Unreachable, format!("TLS setup: {e}")))?;
            if mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(webpki))).with_no_client_auth()
            }
        }
    };
    Ok(config)
}

/// `sslrootcert` alone when given (libpq's meaning), else the system's roots plus `SSL_CERT_FILE`.
fn root_store(rootcert: Option<&str>) -> Result<RootCertStore, Error> {
    match rootcert {
        Some(path) => {
            let mut store = RootCertStore::empty();
            tls_roots::add_pem_file(&mut store, path).map_err(|e| Error::new(ErrorKind::Usage, e))?;
            Ok(store)
        }
        None => tls_roots::system_and_env().map_err(|e| Error::new(ErrorKind::Usage, e)),
    }
}

/// `sslmode=require`/`prefer`: encrypted, certificate not checked (libpq's meaning);
/// handshake signatures are still verified.
#[derive(Debug)]
struct EncryptOnly;

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must be trusted; the name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_comes_out_of_the_url_and_defaults_apply() {
        let p =
            parse_url("postgres://u:pw@db.example.com:5433/app?sslmode=verify-full&connect_timeout=3", SslMode::Prefer)
                .unwrap();
        assert_eq!(p.sslmode, SslMode::VerifyFull);
        assert_eq!((p.dbname.as_str(), p.host.as_str()), ("app", "db.example.com"));
        let p = parse_url("postgres://u:pw@db.example.com/app", SslMode::Require).unwrap();
        assert_eq!(p.sslmode, SslMode::Require);
        let p = parse_url("host=h dbname=d user=u sslmode=disable", SslMode::Require).unwrap();
        assert_eq!(p.sslmode, SslMode::Disable);
    }

    #[test]
    fn malformed_urls_are_usage_errors_without_the_password() {
        for bad in
            ["postgres://u:secretpw@host:notaport/db", "postgres://u:secretpw@h/db?sslmode=sometimes", "nonsense"]
        {
            let err = parse_url(bad, SslMode::Prefer).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Usage, "{bad}");
            assert!(!err.message.contains("secretpw"), "{}", err.message);
        }
    }
}
