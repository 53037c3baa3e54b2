//! The conditional BLS operations: a file's decryption key and statements signed under
//! conditions, each combined by the client alone from the shares of at least a threshold of
//! verified nodes.
//!
//! Each node's share is verified against that node's public share (from the DKG, agreed by
//! every reachable node) before it is combined, and a node whose share does not verify is
//! named. blsful's combination does not know the threshold (any set of shares interpolates
//! to *some* point), so the combined signature is always verified against the network key.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use blsful::{PublicKey, PublicKeyShare, Signature, SignatureShare};
use k256::ecdsa::SigningKey;
use keynet_conditions::Conditions;
use keynet_encryption::{Bls, Header};
use keynet_protocol::registry::{address_of, eip191_sign};
use keynet_protocol::request::{BlsSignRequest, Bytes32, DecryptRequest, PresentedSignature};
use keynet_threshold::bls_batch::{share_of, verify_same_message};
use keynet_threshold::dkg::Participant;
use keynet_threshold::wire::{bls_public_share, bls_share_from_hex, g2_from_hex};
use serde::{Deserialize, Serialize};

use super::{ClientError, Link, Network, NodeStatus, Refusal};

/// The network's BLS public key and every participant's public share.
#[derive(Clone, Debug)]
pub struct BlsKeys {
    /// The network key (G2).
    pub public: PublicKey<Bls>,
    /// Each participant's public share.
    pub shares: BTreeMap<Participant, PublicKeyShare<Bls>>,
}

impl BlsKeys {
    /// From the `bls12_381_g2` object of a node's `/v1/handshake`.
    fn from_json(v: &serde_json::Value) -> Result<BlsKeys, String> {
        let public = g2_from_hex("public_key", v["public_key"].as_str().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        let mut shares = BTreeMap::new();
        for (p, h) in v["public_shares"]
            .as_object()
            .ok_or("public_shares missing")?
        {
            let p: Participant = p
                .parse()
                .map_err(|e| format!("public_shares: participant {p}: {e}"))?;
            let point =
                g2_from_hex("public share", h.as_str().unwrap_or("")).map_err(|e| e.to_string())?;
            shares.insert(p, bls_public_share(p, &point));
        }
        Ok(BlsKeys {
            public: PublicKey(public),
            shares,
        })
    }
}

/// What the network is asked to sign.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BlsOp {
    /// The decryption key of a file: its identity.
    Decrypt {
        /// The file's conditions.
        conditions: Conditions,
        /// The file's plaintext hash.
        plaintext_sha256: [u8; 32],
    },
    /// A statement under conditions.
    Sign {
        /// The conditions the nodes check.
        conditions: Conditions,
        /// The message.
        message: Vec<u8>,
    },
}

impl BlsOp {
    /// The decryption key of the file whose header this is.
    pub fn decrypt(header: &Header) -> BlsOp {
        BlsOp::Decrypt {
            conditions: header.conditions.clone(),
            plaintext_sha256: header.plaintext_sha256,
        }
    }

    /// The bytes the network signs for this operation.
    pub fn signed_bytes(&self) -> Vec<u8> {
        match self {
            BlsOp::Decrypt {
                conditions,
                plaintext_sha256,
            } => keynet_encryption::identity(conditions, plaintext_sha256).to_vec(),
            BlsOp::Sign {
                conditions,
                message,
            } => keynet_encryption::signed_message(conditions, message),
        }
    }

    fn conditions(&self) -> &Conditions {
        match self {
            BlsOp::Decrypt { conditions, .. } | BlsOp::Sign { conditions, .. } => conditions,
        }
    }

    /// The route and the user's authorised request.
    fn request(
        &self,
        net: &Network,
        user: &SigningKey,
        presented: &[PresentedSignature],
    ) -> Result<(&'static str, Vec<u8>), ClientError> {
        let network = net.registry.network_id.clone();
        let conditions = self.conditions().canonical();
        let usage = |e: keynet_protocol::request::RequestError| ClientError::Usage(e.to_string());
        match self {
            BlsOp::Decrypt {
                plaintext_sha256, ..
            } => {
                let r = DecryptRequest {
                    network,
                    conditions,
                    plaintext_sha256: Bytes32(*plaintext_sha256),
                    presented: presented.to_vec(),
                };
                r.validate().map_err(usage)?;
                Ok(("/v1/decrypt-share", net.authorised(user, r.digest(), r)?))
            }
            BlsOp::Sign { message, .. } => {
                let r = BlsSignRequest {
                    network,
                    conditions,
                    message: hex::encode(message),
                    presented: presented.to_vec(),
                };
                r.validate().map_err(usage)?;
                Ok(("/v1/bls-sign", net.authorised(user, r.digest(), r)?))
            }
        }
    }
}

/// Each participant's BLS signature share, or why not.
pub type BlsShareAnswers = Vec<(Participant, Result<SignatureShare<Bls>, String>)>;

/// A statement signed by the network under conditions.
#[derive(Clone, Debug, Serialize)]
pub struct BlsSigned {
    /// The signature (G1, 48 bytes compressed), hex.
    pub signature: String,
    /// The network's BLS public key (G2, 96 bytes compressed), hex.
    pub public_key: String,
    /// The bytes signed, hex: `"keynet/bls-sign/v1\n" || conditions hash || message`.
    pub signed: String,
    /// The canonical conditions' hash, hex.
    pub conditions_hash: String,
    /// The nodes whose shares were combined.
    pub participants: Vec<String>,
    /// Nodes whose shares did not verify (left out).
    pub bad_shares: Vec<String>,
}

/// The network's signature for an operation, and who gave what.
#[derive(Clone, Debug)]
pub struct Combined {
    /// The signature, verified under the network key.
    pub signature: Signature<Bls>,
    /// The nodes whose shares were combined.
    pub participants: Vec<String>,
    /// Nodes whose shares did not verify (left out).
    pub bad_shares: Vec<String>,
    /// Nodes that did not answer with a share, and why.
    pub refused: Vec<(String, String)>,
}

/// A node's share answer (the fields the client reads).
#[derive(Deserialize)]
struct Answer {
    share: String,
}

/// Signs `statement` as `signer` (EIP-191), for a `signed_by` condition naming `signer`.
pub fn present(signer: &SigningKey, statement: &str) -> Result<PresentedSignature, ClientError> {
    let sig = eip191_sign(statement.as_bytes(), signer)
        .map_err(|e| ClientError::Failed(e.to_string()))?;
    Ok(PresentedSignature {
        address: address_of(signer.verifying_key()),
        statement: statement.to_owned(),
        signature: format!("0x{}", hex::encode(sig)),
    })
}

/// Participants whose shares do not verify (empty: the shares verify but their
/// combination does not).
struct Culprits(Vec<Participant>);

/// A node's share, if its answer parses and the share carries the node's own identifier.
fn parse_share(body: &[u8], p: Participant) -> Option<SignatureShare<Bls>> {
    let a: Answer = serde_json::from_slice(body).ok()?;
    let share = bls_share_from_hex(&a.share).ok()?;
    share_of(&share, p).map(|_| share)
}

/// Is this refusal the user's to fix (conditions, authorisation, request), so asking other
/// nodes would only repeat it?
fn users_fault(r: &Refusal) -> bool {
    matches!(r.status, Some(s) if (400..500).contains(&s))
}

impl Network {
    /// The network's BLS keys, agreed by every node that serves them, and the usable nodes.
    pub async fn bls_keys(&self) -> Result<(BlsKeys, Vec<NodeStatus>), ClientError> {
        let all = self.status().await;
        let usable: Vec<NodeStatus> = all
            .iter()
            .filter(|s| s.error.is_none() && s.bls.is_some())
            .cloned()
            .collect();
        let mut served: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &usable {
            if let Some(b) = &s.bls {
                served
                    .entry(b.to_string())
                    .or_default()
                    .push(s.endpoint.clone());
            }
        }
        if served.len() > 1 {
            let groups: Vec<String> = served.values().map(|v| v.join(" ")).collect();
            return Err(ClientError::Inconsistent(groups.join(" | ")));
        }
        let Some(first) = usable.first().and_then(|s| s.bls.as_ref()) else {
            return Err(self.not_enough(&all, 0));
        };
        if usable.len() < self.threshold() {
            return Err(self.not_enough(&all, usable.len()));
        }
        let keys = BlsKeys::from_json(first)
            .map_err(|e| ClientError::Failed(format!("{}: BLS keys: {e}", usable[0].endpoint)))?;
        Ok((keys, usable))
    }

    fn not_enough(&self, all: &[NodeStatus], available: usize) -> ClientError {
        ClientError::NotEnoughNodes {
            available,
            n: self.links.len(),
            threshold: self.threshold(),
            failures: all
                .iter()
                .filter_map(|s| s.error.clone().map(|e| (s.endpoint.clone(), e)))
                .collect(),
        }
    }

    /// The network's BLS public key (what files are encrypted to).
    pub async fn bls_public_key(&self) -> Result<PublicKey<Bls>, ClientError> {
        Ok(self.bls_refresh().await?.0.public)
    }

    async fn bls_refresh(&self) -> Result<(Arc<BlsKeys>, Vec<Participant>), ClientError> {
        let (keys, usable) = self.bls_keys().await?;
        let entry = (
            Arc::new(keys),
            usable.iter().map(|s| s.participant).collect::<Vec<_>>(),
        );
        *self.bls_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry.clone());
        Ok(entry)
    }

    /// The network's signature for `op`, combined from verified shares. The keys and usable
    /// nodes are looked up once and kept; if nodes cannot be reached they are looked up again
    /// and the request retried once.
    pub async fn bls_signature(
        &self,
        user: &SigningKey,
        op: &BlsOp,
        presented: &[PresentedSignature],
    ) -> Result<Combined, ClientError> {
        let cached = self
            .bls_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let fresh = cached.is_none();
        let (keys, usable) = match cached {
            Some(c) => c,
            None => self.bls_refresh().await?,
        };
        match self.bls_once(&keys, &usable, user, op, presented).await {
            Err(ClientError::NotEnoughNodes { .. }) if !fresh => {
                let (keys, usable) = self.bls_refresh().await?;
                self.bls_once(&keys, &usable, user, op, presented).await
            }
            other => other,
        }
    }

    /// Asks a threshold of the usable nodes (starting at a rotating position, to spread the
    /// load), then the others if shares are missing; verifies each share; combines.
    async fn bls_once(
        &self,
        keys: &BlsKeys,
        usable: &[Participant],
        user: &SigningKey,
        op: &BlsOp,
        presented: &[PresentedSignature],
    ) -> Result<Combined, ClientError> {
        let t = self.threshold();
        let links: Vec<&Link> = usable
            .iter()
            .filter_map(|p| self.links.iter().find(|l| l.participant == *p))
            .collect();
        if links.len() < t {
            return Err(ClientError::NotEnoughNodes {
                available: links.len(),
                n: self.links.len(),
                threshold: t,
                failures: vec![],
            });
        }
        let start = self
            .rotate
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % links.len();
        let order: Vec<&Link> = links[start..]
            .iter()
            .chain(&links[..start])
            .copied()
            .collect();
        let (route, body) = op.request(self, user, presented)?;
        let signed = op.signed_bytes();
        let mut shares: BTreeMap<Participant, SignatureShare<Bls>> = BTreeMap::new();
        let mut bad = Vec::new();
        let mut refused: Vec<(String, Refusal)> = Vec::new();
        for wave in [&order[..t], &order[t..]] {
            if wave.is_empty() {
                break;
            }
            for (l, a) in self.post_all(wave, route, body.clone()).await {
                match a.map(|b| parse_share(&b, l.participant)) {
                    Ok(Some(share)) => {
                        shares.insert(l.participant, share);
                    }
                    Ok(None) => bad.push(l.entry.endpoint.clone()),
                    Err(r) => refused.push((l.entry.endpoint.clone(), r)),
                }
            }
            if shares.len() >= t {
                match self.combine_checked(keys, &signed, &shares) {
                    Ok((signature, used)) => {
                        return Ok(Combined {
                            signature,
                            participants: used.iter().map(|p| self.name(p)).collect(),
                            bad_shares: bad,
                            refused: refused.iter().map(|(e, r)| (e.clone(), r.text())).collect(),
                        });
                    }
                    Err(Culprits(ps)) if !ps.is_empty() => {
                        for p in ps {
                            shares.remove(&p);
                            bad.push(self.name(&p));
                        }
                    }
                    Err(_) => {
                        return Err(ClientError::Failed(
                            "shares that each verify combine to a signature that does not".into(),
                        ));
                    }
                }
            }
            if refused.iter().any(|(_, r)| users_fault(r)) {
                break;
            }
        }
        // The user's own refusal (a condition, the authorisation) says the most.
        if let Some(i) = refused.iter().position(|(_, r)| users_fault(r)) {
            let (endpoint, r) = refused.swap_remove(i);
            return Err(r.into_error(&endpoint));
        }
        if !bad.is_empty() {
            return Err(ClientError::BadShares(bad));
        }
        Err(ClientError::NotEnoughNodes {
            available: shares.len(),
            n: self.links.len(),
            threshold: t,
            failures: refused.iter().map(|(e, r)| (e.clone(), r.text())).collect(),
        })
    }

    /// Combines the first t shares and checks every share and the result in one batch
    /// (one multi-pairing); if that fails, checks each share alone to name the bad ones.
    /// Returns the verified signature and the participants combined.
    fn combine_checked(
        &self,
        keys: &BlsKeys,
        signed: &[u8],
        shares: &BTreeMap<Participant, SignatureShare<Bls>>,
    ) -> Result<(Signature<Bls>, Vec<Participant>), Culprits> {
        let t = self.threshold();
        let mut pairs = Vec::with_capacity(shares.len() + 1);
        let mut unknown = Vec::new();
        for (p, s) in shares {
            match (keys.shares.get(p), share_of(s, *p)) {
                (Some(public), Some(point)) => pairs.push((public.0.0.value.0, point)),
                _ => unknown.push(*p),
            }
        }
        if !unknown.is_empty() {
            return Err(Culprits(unknown));
        }
        let used: Vec<Participant> = shares.keys().take(t).copied().collect();
        let list: Vec<SignatureShare<Bls>> = shares.values().take(t).cloned().collect();
        if let Ok(sig) = Signature::from_shares(&list) {
            pairs.push((keys.public.0, *sig.as_raw_value()));
            if verify_same_message(&pairs, signed) {
                return Ok((sig, used));
            }
        }
        // Someone is wrong: find out who, one share at a time.
        let culprits: Vec<Participant> = shares
            .iter()
            .filter(|(p, s)| {
                keys.shares
                    .get(p)
                    .is_none_or(|public| s.verify(public, signed).is_err())
            })
            .map(|(p, _)| *p)
            .collect();
        Err(Culprits(culprits))
    }

    fn name(&self, p: &Participant) -> String {
        self.links
            .iter()
            .find(|l| l.participant == *p)
            .map_or_else(|| format!("participant {p}"), |l| l.entry.endpoint.clone())
    }

    /// Combines shares over `signed` after verifying each against its participant's public
    /// share (naming the nodes whose shares do not verify), then verifies the result
    /// against the network key. At least the threshold of shares is required.
    pub fn combine_bls(
        &self,
        keys: &BlsKeys,
        signed: &[u8],
        shares: &BTreeMap<Participant, SignatureShare<Bls>>,
    ) -> Result<Signature<Bls>, ClientError> {
        let checked = self.combine_checked(keys, signed, shares);
        if let Err(Culprits(ps)) = &checked
            && !ps.is_empty()
        {
            return Err(ClientError::BadShares(
                ps.iter().map(|p| self.name(p)).collect(),
            ));
        }
        if shares.len() < self.threshold() {
            return Err(ClientError::NotEnoughNodes {
                available: shares.len(),
                n: self.links.len(),
                threshold: self.threshold(),
                failures: vec![],
            });
        }
        checked.map(|(sig, _)| sig).map_err(|_| {
            ClientError::Failed(
                "the combined signature does not verify under the network key".into(),
            )
        })
    }

    /// The raw share answers of `participants` for `op` (for tests and tools that inspect
    /// shares before combining).
    pub async fn bls_shares(
        &self,
        user: &SigningKey,
        op: &BlsOp,
        presented: &[PresentedSignature],
        participants: &[Participant],
    ) -> Result<BlsShareAnswers, ClientError> {
        let chosen: Vec<&Link> = participants
            .iter()
            .filter_map(|p| self.links.iter().find(|l| l.participant == *p))
            .collect();
        let (route, body) = op.request(self, user, presented)?;
        Ok(self
            .post_all(&chosen, route, body)
            .await
            .into_iter()
            .map(|(l, a)| {
                let r = a.map_err(|r| r.text()).and_then(|b| {
                    serde_json::from_slice::<Answer>(&b)
                        .map_err(|e| format!("share answer: {e}"))
                        .and_then(|a| bls_share_from_hex(&a.share).map_err(|e| e.to_string()))
                });
                (l.participant, r)
            })
            .collect())
    }

    /// Decrypts the file whose `header` was read from `input` (left at the first chunk) to
    /// `output`, with the decryption key the nodes release to `user`.
    pub async fn decrypt(
        &self,
        user: &SigningKey,
        header: &Header,
        presented: &[PresentedSignature],
        input: &mut impl Read,
        output: &mut impl Write,
    ) -> Result<Combined, ClientError> {
        let combined = self
            .bls_signature(user, &BlsOp::decrypt(header), presented)
            .await?;
        keynet_encryption::decrypt(header, &combined.signature, input, output)?;
        Ok(combined)
    }

    /// Has the network sign `message` under `conditions` for `user`.
    pub async fn bls_sign(
        &self,
        user: &SigningKey,
        conditions: &Conditions,
        message: &[u8],
        presented: &[PresentedSignature],
    ) -> Result<BlsSigned, ClientError> {
        let op = BlsOp::Sign {
            conditions: conditions.clone(),
            message: message.to_vec(),
        };
        let c = self.bls_signature(user, &op, presented).await?;
        let public = match self
            .bls_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some((keys, _)) => keys.public,
            None => {
                return Err(ClientError::Failed(
                    "the network's BLS key was not kept".into(),
                ));
            }
        };
        Ok(BlsSigned {
            signature: hex::encode(c.signature.as_raw_value().to_compressed()),
            public_key: hex::encode(public.0.to_compressed()),
            signed: hex::encode(op.signed_bytes()),
            conditions_hash: hex::encode(conditions.hash()),
            participants: c.participants,
            bad_shares: c.bad_shares,
        })
    }
}
