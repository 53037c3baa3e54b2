//! The attested TLS 1.3 configurations (rustls with ring; no other protocol version, no
//! other provider).

use std::sync::Arc;

use attestation_verifier::tls::{AttestedClientVerifier, AttestedServerVerifier, NodeVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A configuration could not be built (a bad certificate or key).
#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsError(String);

fn err(e: impl std::fmt::Display) -> TlsError {
    TlsError(e.to_string())
}

/// A certificate chain and its private key, as a node presents them.
pub struct CertifiedKey {
    /// The certificate chain (a node's is one self-signed certificate with its evidence).
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that verifies the node it reaches in full during the handshake. `own` is the
/// certificate a node presents to its peers; users present none.
pub fn client_config(
    verifier: Arc<NodeVerifier>,
    own: Option<CertifiedKey>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AttestedServerVerifier::new(verifier)));
    match own {
        Some(c) => builder.with_client_auth_cert(c.chain, c.key).map_err(err),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// A node's server: presents `own`; clients may present a certificate (peers must), users
/// connect without one. A presented certificate is only proven held in the handshake; the
/// server verifies it after, metered ([`crate::verify::admit_peer`]), with `peers`.
pub fn server_config(
    peers: Arc<NodeVerifier>,
    own: CertifiedKey,
) -> Result<rustls::ServerConfig, TlsError> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(err)?
        .with_client_cert_verifier(Arc::new(AttestedClientVerifier::deferred(peers)))
        .with_single_cert(own.chain, own.key)
        .map_err(err)
}
