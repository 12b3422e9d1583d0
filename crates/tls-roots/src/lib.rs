//! Trusted roots for every TLS connection the tools make (the Platform API, the rendezvous,
//! and `sslmode=verify-*` Postgres): one store, the system's certificates plus those in
//! `SSL_CERT_FILE`. There is deliberately no way to switch verification off; tests trust
//! their own CA through `SSL_CERT_FILE`.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// System bundles, read in addition to what rustls-native-certs finds (which reads only
/// `SSL_CERT_FILE` when that is set, where we want both).
const SYSTEM_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The one crypto provider used everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Adds every certificate of a PEM file; `Err` when it cannot be read.
pub fn add_pem_file(store: &mut RootCertStore, path: &str) -> Result<usize, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read certificate file {path}: {e}"))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        if store.add(cert).is_ok() {
            added += 1;
        }
    }
    Ok(added)
}

/// The system's roots plus `SSL_CERT_FILE`. An unreadable `SSL_CERT_FILE` is an error: the
/// user asked for it, so silently ignoring it would be wrong.
pub fn system_and_env() -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = store.add(cert);
    }
    for bundle in SYSTEM_BUNDLES {
        if std::path::Path::new(bundle).is_file() {
            let _ = add_pem_file(&mut store, bundle);
        }
    }
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        let path = path.to_string_lossy();
        let added = add_pem_file(&mut store, &path).map_err(|e| format!("SSL_CERT_FILE: {e}"))?;
        if added == 0 {
            return Err(format!("SSL_CERT_FILE {path} holds no PEM certificate; unset it or point it at a PEM bundle"));
        }
    }
    Ok(store)
}

/// A client configuration that trusts [`system_and_env`], for the API client (through
/// reqwest), the rendezvous and log streams alike — so no connection trusts a different set.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    let roots = system_and_env()?;
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
