//! One TLS stack for the process: rustls with the `ring` provider, trusting the operating system's
//! root certificates, read once.
//!
//! Both the AWS SDK clients ([`sdk_http_client`]) and the custom-resource response PUT
//! ([`client_config`]) use it, and neither reads it before its first request: a cold start loads no
//! certificate (an event that makes no HTTPS call, e.g. a compliant detective-control event, never
//! does). The roots come from the system bundle file alone (`SSL_CERT_FILE`, else
//! the distribution's, e.g. `/etc/pki/tls/certs/ca-bundle.crt` on Amazon Linux 2023); a directory of
//! hashed certificates is read only when no bundle file exists. The SDK's default would read the bundle
//! and then every file of the certificate directory, and a second HTTP client did it all again: most of
//! a cold start. Certificates rustls cannot use are left out (the SDK would panic on one).

use std::sync::{Arc, LazyLock, OnceLock};

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The trusted roots, parsed once: the certificates rustls accepts, and their PEM for the SDK.
struct Roots {
    store: Arc<RootCertStore>,
    pem: Vec<u8>,
}

static ROOTS: LazyLock<Roots> = LazyLock::new(|| {
    let probe = openssl_probe::probe();
    let bytes = match &probe.cert_file {
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
    };
    let roots = roots_from_pem(&bytes);
    if roots.store.is_empty() {
        tracing::error!(
            "no trusted root certificates found (set SSL_CERT_FILE): HTTPS calls will fail"
        );
    }
    roots
});

fn roots_from_pem(bytes: &[u8]) -> Roots {
    let mut store = RootCertStore::empty();
    let mut pem = Vec::new();
    for cert in CertificateDer::pem_slice_iter(bytes).flatten() {
        if store.add(cert.clone()).is_ok() {
            pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            pem.extend_from_slice(aws_smithy_types::base64::encode(cert.as_ref()).as_bytes());
            pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        }
    }
    Roots {
        store: Arc::new(store),
        pem,
    }
}

/// The HTTP client every SDK client of this process uses (set on the `SdkConfig` by
/// [`crate::aws::config`]): the SDK's hyper client with rustls, built on the first request.
///
/// The SDK's own client builds a whole TLS connector (every root certificate parsed) each time an SDK
/// client is created, to fail early, and throws it away: a function building five clients at init
/// parsed the trust store five times before its first event. This one builds nothing until a request
/// needs a connection; clients share it, so the roots are parsed once, on that first request.
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(OnFirstRequest::default())
}

#[derive(Debug, Default, Clone)]
struct OnFirstRequest(Arc<OnceLock<SharedHttpClient>>);

impl HttpClient for OnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0
            .get_or_init(https_client)
            .http_connector(settings, components)
    }
    // `validate_base_client_config` is left at its default on purpose: the SDK's builds a connector
    // there, at every client's creation (see above). `connector_metadata` too (the user agent then
    // leaves out the name of the HTTP library).
}

fn https_client() -> SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(ROOTS.pem.clone());
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::rustls(CryptoMode::Ring));
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Building a context from a trust store cannot fail today; the SDK's defaults if it ever does.
        Err(_) => builder.build_https(),
    }
}

/// A rustls client configuration with the same roots (for HTTP clients outside the SDK).
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(ROOTS.store.clone())
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_bundle_yields_roots_and_their_pem_round_trips() {
        let roots = &*ROOTS;
        assert!(roots.store.len() > 50, "{} roots", roots.store.len());
        assert_eq!(roots_from_pem(&roots.pem).store.len(), roots.store.len());
    }

    #[test]
    fn creating_sdk_clients_builds_no_connector_and_reads_no_certificate() {
        let lazy = OnFirstRequest::default();
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .http_client(SharedHttpClient::new(lazy.clone()))
            .build();
        for _ in 0..3 {
            let _client = aws_sdk_lambda::Client::from_conf(config.clone());
        }
        assert!(lazy.0.get().is_none(), "built before any request");
    }

    #[test]
    fn unusable_certificates_are_left_out_not_fatal() {
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let mut bytes = garbage.to_vec();
        bytes.extend_from_slice(&ROOTS.pem);
        assert_eq!(roots_from_pem(&bytes).store.len(), ROOTS.store.len());
        assert!(roots_from_pem(garbage).store.is_empty());
    }
}
