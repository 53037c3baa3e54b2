//! rustls `ServerCertVerifier` and `ClientCertVerifier` that accept a peer only if its
//! certificate carries evidence that [`NodeVerifier`] accepts, checked during the
//! handshake, before any application data is sent; or, for a server that meters that work
//! ([`AttestedClientVerifier::deferred`]), left to the application after the handshake.
//! TLS 1.3 only.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use crate::tls::node::{NodeError, NodeVerifier};

fn to_rustls(e: NodeError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// Only TLS 1.3 is offered; a TLS 1.2 signature is never expected.
fn tls12_refused() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls12NotOffered,
    ))
}

fn now_secs(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// Verifies servers (nodes, as seen by clients and by peers dialling out).
#[derive(Debug)]
pub struct AttestedServerVerifier {
    nodes: Arc<NodeVerifier>,
    provider: Arc<CryptoProvider>,
}

impl AttestedServerVerifier {
    /// Wraps a node verifier; signatures are checked with ring.
    pub fn new(nodes: Arc<NodeVerifier>) -> Self {
        AttestedServerVerifier {
            nodes,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// The node verifier (to read the verdict after the handshake).
    pub fn nodes(&self) -> &Arc<NodeVerifier> {
        &self.nodes
    }
}

impl ServerCertVerifier for AttestedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The server name is not what identifies a node: its attested identity key and
        // endpoint (bound in REPORT_DATA) are, and callers compare them with the registry.
        self.nodes
            .verify(end_entity, now_secs(now))
            .map_err(to_rustls)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Verifies clients (peers dialling in). Client certificates are mandatory and verified in
/// full during the handshake, unless built with [`AttestedClientVerifier::deferred`].
#[derive(Debug)]
pub struct AttestedClientVerifier {
    nodes: Arc<NodeVerifier>,
    provider: Arc<CryptoProvider>,
    /// Certificates are optional, and verified after the handshake by the application.
    deferred: bool,
}

impl AttestedClientVerifier {
    /// Wraps a node verifier; every client must present an attested certificate.
    pub fn new(nodes: Arc<NodeVerifier>) -> Self {
        AttestedClientVerifier {
            nodes,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            deferred: false,
        }
    }

    /// Clients may connect without a certificate (users, not peers), and a certificate
    /// that is presented is only proven held (the handshake's signature by its key): the
    /// application must verify it with [`NodeVerifier::verify`] before treating the client
    /// as a node, and treat it as unauthenticated until then. This keeps the evidence's
    /// cryptography (a report signature, a certificate chain) out of the handshake, where
    /// a stranger could make a server do it on every connection with no way to meter it.
    pub fn deferred(nodes: Arc<NodeVerifier>) -> Self {
        AttestedClientVerifier {
            deferred: true,
            ..Self::new(nodes)
        }
    }
}

impl ClientCertVerifier for AttestedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        !self.deferred
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !self.deferred {
            self.nodes
                .verify(end_entity, now_secs(now))
                .map_err(to_rustls)?;
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
