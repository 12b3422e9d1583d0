//! Extra trust roots: the certificates in `SSL_CERT_FILE`, added to the system's.
//!
//! Verification is never switched off; tests make their own CA and point `SSL_CERT_FILE` at it.

use crate::Error;

/// The certificates named by `SSL_CERT_FILE` (none when unset).
pub fn extra_roots() -> Result<Vec<reqwest::Certificate>, Error> {
    let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(&path).map_err(|e| {
        Error::Config(format!(
            "cannot read SSL_CERT_FILE {}: {e}; unset it or point it at a PEM file",
            path.to_string_lossy()
        ))
    })?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::Config(format!("SSL_CERT_FILE {} is not a PEM certificate bundle: {e}", path.to_string_lossy()))
    })
}
