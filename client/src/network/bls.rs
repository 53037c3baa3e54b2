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
use keynet_eth::{address_of, eip191_sign};
use keynet_protocol::api::{BlsPublic, BlsShare, route};
use keynet_protocol::registry::IdentityKey;
use keynet_protocol::request::{BlsSignRequest, DecryptRequest, PresentedSignature, RequestError};
use keynet_threshold::dkg::Participant;
use keynet_threshold::wire::{bls_public_share, g2_from_hex};
use serde::Serialize;

use super::collect::{Collector, Culprits, combine_checked, parse_share};
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
    /// From the `bls12_381_g2` keys of a node's `/v1/handshake`.
    fn decode(v: &BlsPublic) -> Result<BlsKeys, String> {
        let public = g2_from_hex("public_key", &v.public_key).map_err(|e| e.to_string())?;
        let mut shares = BTreeMap::new();
        for (p, h) in &v.public_shares {
            let point = g2_from_hex("public share", h)
                .map_err(|e| format!("public_shares: participant {p}: {e}"))?;
            shares.insert(*p, bls_public_share(*p, &point));
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

    /// Posts each node its request (decryption and statement routes answer alike).
    async fn post<'a>(
        &self,
        net: &Network,
        items: Vec<(&'a Link, Vec<u8>)>,
    ) -> Vec<(&'a Link, Result<BlsShare, Refusal>)> {
        match self {
            BlsOp::Decrypt { .. } => net.post_each::<route::DecryptShare>(items).await,
            BlsOp::Sign { .. } => net.post_each::<route::BlsSign>(items).await,
        }
    }

    /// The user's authorisation of the request for node `node` (each node gets its own: a
    /// node accepts only requests naming it).
    fn request(
        &self,
        net: &Network,
        user: &SigningKey,
        presented: &[PresentedSignature],
        node: IdentityKey,
    ) -> Result<Vec<u8>, ClientError> {
        let network = net.registry.network_id.clone();
        let conditions = self.conditions().canonical();
        let usage = |e: RequestError| ClientError::Usage(e.to_string());
        match self {
            BlsOp::Decrypt {
                plaintext_sha256, ..
            } => {
                let r = DecryptRequest::new(
                    network,
                    node,
                    conditions,
                    *plaintext_sha256,
                    presented.to_vec(),
                )
                .map_err(usage)?;
                net.authorised(user, r)
            }
            BlsOp::Sign { message, .. } => {
                let r = BlsSignRequest::new(
                    network,
                    node,
                    conditions,
                    message.clone(),
                    presented.to_vec(),
                )
                .map_err(usage)?;
                net.authorised(user, r)
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
    /// Nodes whose answers were not valid shares (left out), and why.
    pub bad_shares: Vec<String>,
}

/// Who gave what for an operation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SharesReport {
    /// The nodes whose shares were combined.
    pub participants: Vec<String>,
    /// Nodes whose answers were not valid shares (left out), and why.
    pub bad_shares: Vec<String>,
    /// Nodes that did not answer with a share, and why.
    pub refused: Vec<String>,
}

/// The network's signature for an operation, the key it verified under, and who gave what.
/// For a decryption this signature is the file's key: [`Network::decrypt`] uses it and
/// returns only the report.
pub struct Combined {
    /// The signature, verified under `public`.
    pub signature: Signature<Bls>,
    /// The network key it verified under.
    pub public: PublicKey<Bls>,
    /// Who gave what.
    pub report: SharesReport,
}

/// Signs `statement` as `signer` (EIP-191), for a `signed_by` condition naming `signer`.
pub fn present(signer: &SigningKey, statement: &str) -> Result<PresentedSignature, ClientError> {
    let sig = eip191_sign(statement.as_bytes(), signer)
        .map_err(|e| ClientError::Failed(e.to_string()))?;
    PresentedSignature::new(address_of(signer.verifying_key()), statement, sig)
        .map_err(|e| ClientError::Usage(e.to_string()))
}

impl Network {
    /// The network's BLS keys as served by at least a threshold of the verified nodes, and
    /// those nodes. (Two sets of keys cannot both have a threshold: 2t > n.) Nodes serving
    /// other keys are left out and named if no set reaches the threshold.
    pub async fn bls_keys(&self) -> Result<(BlsKeys, Vec<NodeStatus>), ClientError> {
        let all = self.status().await;
        let (served_keys, usable) = self.agreed(&all, |k| &k.bls12_381_g2)?;
        let keys = BlsKeys::decode(served_keys).map_err(|e| {
            let who: Vec<&str> = usable.iter().map(|s| s.endpoint.as_str()).collect();
            ClientError::Failed(format!("{}: BLS keys: {e}", who.join(" ")))
        })?;
        Ok((keys, usable))
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
    /// nodes are looked up once and kept; if that fails with them (nodes gone, or new keys
    /// after a new epoch) they are looked up again and the request retried once.
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
            Err(
                ClientError::NotEnoughNodes { .. }
                | ClientError::BadShares(_)
                | ClientError::Failed(_),
            ) if !fresh => {
                let (keys, usable) = self.bls_refresh().await?;
                self.bls_once(&keys, &usable, user, op, presented).await
            }
            other => other,
        }
    }

    /// Asks a threshold of the usable nodes (starting at a rotating position, to spread the
    /// load), then as many more as shares are still missing, while a threshold can still be
    /// reached; each node gets a request naming it. Combines verified shares.
    async fn bls_once(
        &self,
        keys: &BlsKeys,
        usable: &[Participant],
        user: &SigningKey,
        op: &BlsOp,
        presented: &[PresentedSignature],
    ) -> Result<Combined, ClientError> {
        let t = self.threshold();
        let links = self.links_of(usable);
        if links.len() < t {
            return Err(self.too_few(links.len(), t, vec![]));
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
        let mut c = Collector::new(keys, op.signed_bytes(), t);
        let mut next = 0;
        while next < order.len() && c.held() + (order.len() - next) >= t {
            let wave = &order[next..(next + t - c.held()).min(order.len())];
            next += wave.len();
            let items = wave
                .iter()
                .map(|l| {
                    Ok((
                        *l,
                        op.request(self, user, presented, l.pool.member().identity_key)?,
                    ))
                })
                .collect::<Result<Vec<_>, ClientError>>()?;
            for (l, a) in op.post(self, items).await {
                c.answer(l.participant, a);
            }
            match c.combine() {
                Ok(Some((signature, used))) => {
                    return Ok(Combined {
                        signature,
                        public: keys.public,
                        report: self.report(&c, &used),
                    });
                }
                Ok(None) => {}
                Err(()) => {
                    return Err(ClientError::Failed(
                        "shares that each verify combine to a signature that does not".into(),
                    ));
                }
            }
        }
        Err(self.collect_failure(c))
    }

    fn report(&self, c: &Collector<'_>, used: &[Participant]) -> SharesReport {
        SharesReport {
            participants: used.iter().map(|p| self.name(p)).collect(),
            bad_shares: c
                .bad
                .iter()
                .map(|(p, why)| format!("{} ({why})", self.name(p)))
                .collect(),
            refused: c
                .refused
                .iter()
                .map(|(p, r)| format!("{}: {}", self.name(p), r.text()))
                .collect(),
        }
    }

    /// Why fewer than t good shares came back: the user's own refusal (a condition, the
    /// authorisation) if a node gave one, else the nodes with bad shares, else too few nodes.
    fn collect_failure(&self, mut c: Collector<'_>) -> ClientError {
        if let Some(i) = c.refused.iter().position(|(_, r)| r.users_fault()) {
            let (p, r) = c.refused.swap_remove(i);
            return r.into_error(&self.name(&p));
        }
        if !c.bad.is_empty() {
            return ClientError::BadShares(
                c.bad
                    .iter()
                    .map(|(p, why)| format!("{} ({why})", self.name(p)))
                    .collect(),
            );
        }
        self.too_few(
            c.held(),
            self.threshold(),
            c.refused
                .iter()
                .map(|(p, r)| (self.name(p), r.text()))
                .collect(),
        )
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
        let checked = combine_checked(keys, signed, shares, self.threshold());
        if let Err(Culprits(ps)) = &checked
            && !ps.is_empty()
        {
            return Err(ClientError::BadShares(
                ps.iter().map(|p| self.name(p)).collect(),
            ));
        }
        if shares.len() < self.threshold() {
            return Err(self.too_few(shares.len(), self.threshold(), vec![]));
        }
        checked.map(|(sig, _)| sig).map_err(|_| {
            ClientError::Failed(
                "the combined signature does not verify under the network key".into(),
            )
        })
    }

    /// The raw share answers of `participants` for `op` (for tests and tools that inspect
    /// shares before combining); each node gets a request naming it.
    pub async fn bls_shares(
        &self,
        user: &SigningKey,
        op: &BlsOp,
        presented: &[PresentedSignature],
        participants: &[Participant],
    ) -> Result<BlsShareAnswers, ClientError> {
        let items = self
            .links_of(participants)
            .into_iter()
            .map(|l| {
                Ok((
                    l,
                    op.request(self, user, presented, l.pool.member().identity_key)?,
                ))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(op
            .post(self, items)
            .await
            .into_iter()
            .map(|(l, a)| {
                let r = a
                    .map_err(|r| r.text())
                    .and_then(|b| parse_share(&b, l.participant));
                (l.participant, r)
            })
            .collect())
    }

    /// Decrypts the file whose `header` was read from `input` (left at the first chunk) to
    /// `output`, with the decryption key the nodes release to `user` (used, then dropped).
    pub async fn decrypt(
        &self,
        user: &SigningKey,
        header: &Header,
        presented: &[PresentedSignature],
        input: &mut impl Read,
        output: &mut impl Write,
    ) -> Result<SharesReport, ClientError> {
        let combined = self
            .bls_signature(user, &BlsOp::decrypt(header), presented)
            .await?;
        keynet_encryption::decrypt(header, &combined.signature, input, output)?;
        Ok(combined.report)
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
        Ok(BlsSigned {
            signature: hex::encode(c.signature.as_raw_value().to_compressed()),
            public_key: hex::encode(c.public.0.to_compressed()),
            signed: hex::encode(op.signed_bytes()),
            conditions_hash: hex::encode(conditions.hash()),
            participants: c.report.participants,
            bad_shares: c.report.bad_shares,
        })
    }
}
