//! Byte forms of the DKG messages and of the BLS key, for the network and for sealed
//! storage. FROST values use the library's own serialization; BLS points are compressed
//! (96 bytes in G2) and scalars big-endian (32 bytes). Decoding checks every point is on
//! the curve and in the subgroup, and every scalar is canonical.

use std::collections::BTreeMap;

use blsful::{
    InnerPointShareG2, PublicKey, PublicKeyShare, SecretKeyShare, SignatureSchemes, SignatureShare,
};
use blstrs_plus::{G2Affine, G2Projective, Scalar};
use frost_secp256k1::keys::dkg::{round1, round2};

use zeroize::Zeroizing;

use crate::bls_dkg::{Bls, BlsKey, BlsMessage};
use crate::dkg::{Message, Participant};

/// A value that could not be decoded; names what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct WireError {
    /// Which value.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

fn err(what: &'static str, reason: impl std::fmt::Display) -> WireError {
    WireError {
        what,
        reason: reason.to_string(),
    }
}

fn unhex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], WireError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| err(what, format!("{N} bytes of hex: {e}")))?;
    Ok(out)
}

fn point(what: &'static str, s: &str) -> Result<G2Projective, WireError> {
    let b = unhex::<96>(what, s)?;
    Option::<G2Affine>::from(G2Affine::from_compressed(&b))
        .map(G2Projective::from)
        .ok_or_else(|| err(what, "not a point of G2"))
}

fn scalar(what: &'static str, s: &str) -> Result<Scalar, WireError> {
    let b = Zeroizing::new(unhex::<32>(what, s)?);
    Option::<Scalar>::from(Scalar::from_be_bytes(&b)).ok_or_else(|| err(what, "not a scalar"))
}

fn hex_point(p: &G2Projective) -> String {
    hex::encode(p.to_compressed())
}

/// A FROST DKG message on the wire.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FrostWire {
    /// Round-one package (hex of the library's serialization).
    Round1(String),
    /// Round-two package (hex).
    Round2(String),
    /// View hash (hex).
    Echo(String),
    /// Abort with culprits.
    Abort(Vec<Participant>),
}

impl FrostWire {
    /// Encodes a message.
    pub fn encode(m: &Message) -> Result<FrostWire, WireError> {
        Ok(match m {
            Message::Round1(p) => {
                FrostWire::Round1(hex::encode(p.serialize().map_err(|e| err("round1", e))?))
            }
            Message::Round2(p) => {
                FrostWire::Round2(hex::encode(p.serialize().map_err(|e| err("round2", e))?))
            }
            Message::Echo(h) => FrostWire::Echo(hex::encode(h)),
            Message::Abort(c) => FrostWire::Abort(c.clone()),
        })
    }

    /// Decodes a message.
    pub fn decode(&self) -> Result<Message, WireError> {
        Ok(match self {
            FrostWire::Round1(s) => {
                let b = hex::decode(s).map_err(|e| err("round1", e))?;
                Message::Round1(Box::new(
                    round1::Package::deserialize(&b).map_err(|e| err("round1", e))?,
                ))
            }
            FrostWire::Round2(s) => {
                let b = Zeroizing::new(hex::decode(s).map_err(|e| err("round2", e))?);
                Message::Round2(Box::new(
                    round2::Package::deserialize(&b).map_err(|e| err("round2", e))?,
                ))
            }
            FrostWire::Echo(s) => Message::Echo(unhex("echo", s)?),
            FrostWire::Abort(c) => Message::Abort(c.clone()),
        })
    }
}

/// A BLS DKG message on the wire.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BlsWire {
    /// Polynomial commitments (compressed G2, hex).
    Commit(Vec<String>),
    /// A share (scalar, hex).
    Share(String),
    /// Complaints against dealers.
    Complaints(Vec<Participant>),
    /// Revealed shares.
    Reveals(Vec<(Participant, String)>),
    /// View hash.
    Echo(String),
}

/// Most commitments a dealer may send (the polynomial's degree + 1 is the threshold).
const MAX_COMMITS: usize = 1024;

impl BlsWire {
    /// Encodes a message.
    pub fn encode(m: &BlsMessage) -> BlsWire {
        match m {
            BlsMessage::Commit(c) => BlsWire::Commit(c.iter().map(hex_point).collect()),
            BlsMessage::Share(s) => BlsWire::Share(hex::encode(s.to_be_bytes())),
            BlsMessage::Complaints(c) => BlsWire::Complaints(c.clone()),
            BlsMessage::Reveals(r) => BlsWire::Reveals(
                r.iter()
                    .map(|(p, s)| (*p, hex::encode(s.to_be_bytes())))
                    .collect(),
            ),
            BlsMessage::Echo(h) => BlsWire::Echo(hex::encode(h)),
        }
    }

    /// Decodes a message.
    pub fn decode(&self) -> Result<BlsMessage, WireError> {
        Ok(match self {
            BlsWire::Commit(c) => {
                if c.len() > MAX_COMMITS {
                    return Err(err("commit", format!("more than {MAX_COMMITS} points")));
                }
                BlsMessage::Commit(
                    c.iter()
                        .map(|p| point("commit", p))
                        .collect::<Result<_, _>>()?,
                )
            }
            BlsWire::Share(s) => BlsMessage::Share(scalar("share", s)?),
            BlsWire::Complaints(c) => BlsMessage::Complaints(c.clone()),
            BlsWire::Reveals(r) => BlsMessage::Reveals(
                r.iter()
                    .map(|(p, s)| Ok((*p, scalar("reveal", s)?)))
                    .collect::<Result<_, WireError>>()?,
            ),
            BlsWire::Echo(s) => BlsMessage::Echo(unhex("echo", s)?),
        })
    }
}

/// The BLS key as stored (the secret share is zeroized when this is dropped).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlsKeyWire {
    share: SecretKeyShare<Bls>,
    public: PublicKey<Bls>,
    public_shares: BTreeMap<Participant, String>,
    qualified: Vec<Participant>,
    threshold: u16,
}

impl BlsKeyWire {
    /// The stored form of `k`.
    pub fn encode(k: &BlsKey) -> BlsKeyWire {
        BlsKeyWire {
            share: k.share.clone(),
            public: k.public,
            public_shares: k
                .public_shares
                .iter()
                .map(|(p, v)| (*p, hex_point(v)))
                .collect(),
            qualified: k.qualified.clone(),
            threshold: k.threshold,
        }
    }

    /// The key back.
    pub fn decode(&self) -> Result<BlsKey, WireError> {
        Ok(BlsKey {
            share: self.share.clone(),
            public: self.public,
            public_shares: self
                .public_shares
                .iter()
                .map(|(p, v)| Ok((*p, point("public share", v)?)))
                .collect::<Result<_, WireError>>()?,
            qualified: self.qualified.clone(),
            threshold: self.threshold,
        })
    }
}

/// A compressed G2 point (the BLS public key or a public share) in hex.
pub fn g2_hex(p: &G2Projective) -> String {
    hex_point(p)
}

/// A compressed G2 point from hex (`what` names it in the error).
pub fn g2_from_hex(what: &'static str, s: &str) -> Result<G2Projective, WireError> {
    point(what, s)
}

/// Participant `p`'s public key share, from its public share point: what its BLS signature
/// shares verify against.
pub fn bls_public_share(p: Participant, v: &G2Projective) -> PublicKeyShare<Bls> {
    PublicKeyShare(InnerPointShareG2((Scalar::from(u64::from(p)), *v).into()))
}

/// A BLS signature share on the wire (hex of blsful's byte form).
pub fn bls_share_hex(s: &SignatureShare<Bls>) -> Result<String, WireError> {
    Vec::<u8>::try_from(s)
        .map(hex::encode)
        .map_err(|e| err("signature share", e))
}

/// A BLS signature share from the wire; only the basic scheme (the one IBE decryption keys
/// and signed statements use) is accepted.
pub fn bls_share_from_hex(s: &str) -> Result<SignatureShare<Bls>, WireError> {
    let b = hex::decode(s).map_err(|e| err("signature share", e))?;
    let share =
        SignatureShare::<Bls>::try_from(b.as_slice()).map_err(|e| err("signature share", e))?;
    if share.scheme() != SignatureSchemes::Basic {
        return Err(err("signature share", "not a basic-scheme share"));
    }
    Ok(share)
}
