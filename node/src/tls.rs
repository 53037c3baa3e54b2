//! The node's TLS identity: a key generated in memory at start (it never leaves the process)
//! and a self-signed certificate carrying the attestation evidence, whose REPORT_DATA commits
//! to the certificate's key, the node's identity key, its endpoint and its network profile.

use std::sync::Arc;

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::binding::{cert_report_data, fresh_report_data};
use attestation_verifier::tls::evidence::{EVIDENCE_OID_ARCS, Evidence, VERSION};
use keynet_net::tls::CertifiedKey;
use rcgen::{
    CertificateParams, CustomExtension, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::evidence::{EvidenceProvider, ProviderError};

/// Why the TLS identity could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Evidence could not be obtained.
    #[error(transparent)]
    Evidence(#[from] ProviderError),
    /// Certificate or configuration could not be built.
    #[error("TLS: {0}")]
    Build(String),
}

fn build(e: impl std::fmt::Display) -> TlsError {
    TlsError::Build(e.to_string())
}

/// The node's certificate and in-memory key.
pub struct NodeTls {
    cert_der: Vec<u8>,
    key_der: Zeroizing<Vec<u8>>,
    spki: Vec<u8>,
    identity: Vec<u8>,
    endpoint: String,
    profile: [u8; 32],
    evidence: Evidence,
}

impl NodeTls {
    /// Generates the TLS key and the certificate with evidence from `provider`, bound to
    /// the network profile `profile`.
    pub fn create(
        provider: &dyn EvidenceProvider,
        identity: &[u8],
        endpoint: &str,
        profile: &[u8; 32],
    ) -> Result<NodeTls, TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(build)?;
        let spki = key.subject_public_key_info();
        let pe = provider.evidence(cert_report_data(&spki, identity, endpoint, profile))?;
        let evidence = Evidence {
            v: VERSION,
            platform: pe.platform,
            report: pe.report,
            certs: pe.certs,
            identity: identity.to_vec(),
            endpoint: endpoint.to_owned(),
            profile: profile.to_vec(),
        };
        let mut params = CertificateParams::new(vec!["keynode".to_owned()]).map_err(build)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "keynode");
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &EVIDENCE_OID_ARCS,
                evidence.encode(),
            ));
        let cert = params.self_signed(&key).map_err(build)?;
        Ok(NodeTls {
            cert_der: cert.der().to_vec(),
            key_der: Zeroizing::new(key.serialize_der()),
            spki,
            identity: identity.to_vec(),
            endpoint: endpoint.to_owned(),
            profile: *profile,
            evidence,
        })
    }

    /// The certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The evidence in the certificate.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// The certificate and key, as rustls takes them.
    pub fn certified_key(&self) -> CertifiedKey {
        CertifiedKey {
            chain: vec![CertificateDer::from(self.cert_der.clone())],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.to_vec())),
        }
    }

    /// TLS 1.3 server configuration. Clients may present a certificate (peers must; it is
    /// verified after the handshake, by `peers`); users connect without one.
    pub fn server_config(
        &self,
        peers: Arc<NodeVerifier>,
    ) -> Result<rustls::ServerConfig, keynet_net::tls::TlsError> {
        keynet_net::tls::server_config(peers, self.certified_key())
    }

    /// A fresh report bound to a client's nonce and to one connection's exporter value.
    pub fn fresh_evidence(
        &self,
        provider: &dyn EvidenceProvider,
        nonce: &[u8],
        exporter: &[u8],
    ) -> Result<Evidence, TlsError> {
        let rd = fresh_report_data(
            &self.spki,
            &self.identity,
            &self.endpoint,
            &self.profile,
            nonce,
            exporter,
        );
        let pe = provider.evidence(rd)?;
        Ok(Evidence {
            v: VERSION,
            platform: pe.platform,
            report: pe.report,
            certs: pe.certs,
            identity: self.identity.clone(),
            endpoint: self.endpoint.clone(),
            profile: self.profile.to_vec(),
        })
    }
}
