//! The user's side of a signing: every node must have signed the same package; shares are
//! aggregated with cheater detection, so a node that returned a bad share is named; the
//! result is checked with the independent RFC 9591 equation before it is returned.

use std::collections::BTreeMap;

use frost_secp256k1::keys::PublicKeyPackage;
use frost_secp256k1::round2::SignatureShare;
use frost_secp256k1::{Identifier, SigningPackage};

use crate::dkg::Participant;
use crate::schnorr;

/// Why shares could not be combined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// No shares.
    #[error("no signature shares")]
    Empty,
    /// Nodes signed different packages (commitments or message).
    #[error("participant {0} signed a different signing package than the others")]
    PackageMismatch(Participant),
    /// Shares that do not verify, by participant.
    #[error("invalid signature share from {culprits:?}")]
    BadShares {
        /// Who sent a bad share.
        culprits: Vec<Participant>,
    },
    /// Anything else the library refused.
    #[error("FROST: {0}")]
    Frost(String),
    /// The aggregate does not verify under RFC 9591 (cannot happen with valid shares).
    #[error("aggregate signature: {0}")]
    Verify(#[from] schnorr::SchnorrError),
}

/// Combines `shares` (participant → share and the package it signed) into a 65-byte
/// signature under `public`.
pub fn aggregate(
    public: &PublicKeyPackage,
    shares: &BTreeMap<Participant, (SignatureShare, SigningPackage)>,
) -> Result<Vec<u8>, AggregateError> {
    let (_, (_, package)) = shares.iter().next().ok_or(AggregateError::Empty)?;
    let mut by_id = BTreeMap::new();
    let mut who = BTreeMap::new();
    for (p, (share, pkg)) in shares {
        if pkg != package {
            return Err(AggregateError::PackageMismatch(*p));
        }
        let i = Identifier::try_from(*p).map_err(|e| AggregateError::Frost(e.to_string()))?;
        by_id.insert(i, *share);
        who.insert(i, *p);
    }
    let sig = frost_secp256k1::aggregate(package, &by_id, public).map_err(|e| {
        let culprits: Vec<Participant> = e
            .culprits()
            .iter()
            .filter_map(|c| who.get(c).copied())
            .collect();
        if culprits.is_empty() {
            AggregateError::Frost(e.to_string())
        } else {
            AggregateError::BadShares { culprits }
        }
    })?;
    let bytes = sig
        .serialize()
        .map_err(|e| AggregateError::Frost(e.to_string()))?;
    let pk = public
        .verifying_key()
        .serialize()
        .map_err(|e| AggregateError::Frost(e.to_string()))?;
    schnorr::verify(&pk, package.message(), &bytes)?;
    Ok(bytes)
}
