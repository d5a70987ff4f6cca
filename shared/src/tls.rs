//! One TLS stack for the process: rustls with the `ring` provider, trusting the operating system's
//! root certificates, read once.
//!
//! The process's one HTTP client ([`crate::http`]: every AWS SDK client and the custom-resource
//! response PUT) takes its configuration from [`client_config`], and nothing reads the roots before the
//! first request: a cold start loads no certificate (an event that makes no HTTPS call, e.g. a compliant
//! detective-control event, never does). The roots come from the system bundle file alone
//! (`SSL_CERT_FILE`, else the distribution's, e.g. `/etc/pki/tls/certs/ca-bundle.crt` on Amazon Linux
//! 2023); a directory of hashed certificates is read only when no bundle file exists. The SDK's default
//! would read the bundle and then every file of the certificate directory, once per client. Certificates
//! rustls cannot use are left out, not fatal.

use std::sync::{Arc, LazyLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The trusted roots, parsed once.
static ROOTS: LazyLock<Arc<RootCertStore>> = LazyLock::new(|| {
    let roots = roots_from_pem(&system_pem());
    if roots.is_empty() {
        tracing::error!(
            "no trusted root certificates found (set SSL_CERT_FILE): HTTPS calls will fail"
        );
    }
    roots
});

/// The system's root certificates, as PEM.
fn system_pem() -> Vec<u8> {
    let probe = openssl_probe::probe();
    match &probe.cert_file {
        Some(file) => std::fs::read(file).unwrap_or_else(|e| {
            tracing::error!(file = %file.display(), error = %e, "cannot read the trust store");
            Vec::new()
        }),
        None => probe
            .cert_dir
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
            .flat_map(|mut pem| {
                pem.push(b'\n');
                pem
            })
            .collect(),
    }
}

fn roots_from_pem(bytes: &[u8]) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    let (added, _unusable) =
        store.add_parsable_certificates(CertificateDer::pem_slice_iter(bytes).flatten());
    tracing::debug!(roots = added, "trust store read");
    Arc::new(store)
}

/// A rustls client configuration with the same roots (for HTTP clients outside the SDK).
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(Arc::clone(&ROOTS))
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_bundle_yields_roots() {
        assert!(ROOTS.len() > 50, "{} roots", ROOTS.len());
    }

    #[test]
    fn unusable_certificates_are_left_out_not_fatal() {
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let mut bytes = garbage.to_vec();
        bytes.extend_from_slice(&system_pem());
        assert_eq!(roots_from_pem(&bytes).len(), ROOTS.len());
        assert!(roots_from_pem(garbage).is_empty());
    }
}
