//! Threshold FROST signing with derived keys, and the permissions of derived keys.

use std::collections::{BTreeMap, BTreeSet};

use k256::ecdsa::SigningKey;
use keynet_eth::{Address, address_of};
use keynet_protocol::api::{SignShare, route};
use keynet_protocol::request::{KeyRef, PermissionsRequest, SignRequest};
use keynet_threshold::aggregate::{AggregateError, aggregate};
use keynet_threshold::derive::derive_public_package;
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost::keys::PublicKeyPackage;
use keynet_threshold::frost::round2::SignatureShare;
use keynet_threshold::frost::{Identifier, SigningPackage};
use serde::Serialize;

use super::{ClientError, Link, Network, Refusal, RefusalCode};

/// Each node's answer to a request sent to all: endpoint, and ok or the node's error.
pub type NodeAnswers = Vec<(String, Result<(), String>)>;

/// Each participant's signature share and the package it signed, or its error.
pub type ShareAnswers = Vec<(
    Participant,
    Result<(SignatureShare, SigningPackage), String>,
)>;

/// A threshold signature.
#[derive(Clone, Debug, Serialize)]
pub struct Signed {
    /// 65 bytes: R (compressed) || z, hex.
    pub signature: String,
    /// The derived public key (compressed), hex.
    pub public_key: String,
    /// The signed digest, hex.
    pub message: String,
    /// The nodes that took part.
    pub participants: Vec<String>,
}

impl Network {
    /// Signs `message` with the derived key `key` as `user`, using `count` nodes (at least
    /// the threshold; `None` means the threshold). The network's keys and the usable nodes
    /// are looked up once and kept; if a chosen node cannot be reached they are looked up
    /// again and the signing is retried once with the nodes that answer.
    pub async fn sign(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        count: Option<usize>,
    ) -> Result<Signed, ClientError> {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let fresh = cached.is_none();
        let (root, usable) = match cached {
            Some(c) => c,
            None => self.refresh().await?,
        };
        match self
            .sign_once(&root, &usable, user, key, message, count)
            .await
        {
            Err(ClientError::Refused {
                code: RefusalCode::Unreachable,
                ..
            }) if !fresh => {
                let (root, usable) = self.refresh().await?;
                self.sign_once(&root, &usable, user, key, message, count)
                    .await
            }
            other => other,
        }
    }

    async fn refresh(&self) -> Result<(PublicKeyPackage, Vec<Participant>), ClientError> {
        let (root, usable) = self.public_keys().await?;
        let entry = (
            root,
            usable.iter().map(|s| s.participant).collect::<Vec<_>>(),
        );
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry.clone());
        Ok(entry)
    }

    async fn sign_once(
        &self,
        root: &PublicKeyPackage,
        usable: &[Participant],
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        count: Option<usize>,
    ) -> Result<Signed, ClientError> {
        let t = self.threshold();
        let count = count.unwrap_or(t).max(t);
        if usable.len() < count {
            return Err(self.too_few(usable.len(), count, vec![]));
        }
        let chosen = self.links_of(&usable[..count]);
        let body = self.sign_request(user, key, message, &chosen)?;
        let mut shares = BTreeMap::new();
        let mut refusals = Vec::new();
        for (l, a) in self.post_all::<route::Sign>(&chosen, body).await {
            match a.and_then(|s| decode_share(&s).map_err(Refusal::BadAnswer)) {
                Ok(s) => {
                    shares.insert(l.participant, s);
                }
                Err(r) => refusals.push(r.into_error(l.endpoint())),
            }
        }
        // An unreachable node explains the others' timeouts: report it first.
        refusals.sort_by_key(|r| {
            !matches!(
                r,
                ClientError::Refused {
                    code: RefusalCode::Unreachable,
                    ..
                }
            )
        });
        if let Some(first) = refusals.into_iter().next() {
            return Err(first);
        }
        // The nodes must have signed our message, with exactly the nodes we chose.
        let want: BTreeSet<Identifier> = chosen
            .iter()
            .filter_map(|l| Identifier::try_from(l.participant).ok())
            .collect();
        for (p, (_, pkg)) in &shares {
            let signers: BTreeSet<_> = pkg.signing_commitments().keys().copied().collect();
            if pkg.message().as_slice() != message.as_slice() || signers != want {
                return Err(ClientError::BadShares(vec![self.name(p)]));
            }
        }
        let public = derive_public_package(root, &key.key_id())
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        let signature = self.combine(&public, &shares)?;
        let public_key = public
            .verifying_key()
            .serialize()
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        Ok(Signed {
            signature: hex::encode(signature),
            public_key: hex::encode(public_key),
            message: hex::encode(message),
            participants: chosen.iter().map(|l| l.endpoint().to_owned()).collect(),
        })
    }

    /// The authorised signing request naming `named`, as the body nodes take.
    fn sign_request(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        named: &[&Link],
    ) -> Result<Vec<u8>, ClientError> {
        let request = SignRequest::new(
            self.registry.network_id.clone(),
            key.clone(),
            message,
            named.iter().map(|l| l.pool.member().identity_key).collect(),
        )
        .map_err(|e| ClientError::Usage(e.to_string()))?;
        self.authorised(user, request)
    }

    /// Aggregates shares (participant → share and the package it signed), naming the
    /// nodes whose shares do not verify. The result is checked with the RFC 9591
    /// equation before it is returned.
    pub fn combine(
        &self,
        public: &PublicKeyPackage,
        shares: &BTreeMap<Participant, (SignatureShare, SigningPackage)>,
    ) -> Result<Vec<u8>, ClientError> {
        aggregate(public, shares).map_err(|e| match e {
            AggregateError::BadShares { culprits } => {
                ClientError::BadShares(culprits.iter().map(|p| self.name(p)).collect())
            }
            AggregateError::PackageMismatch(p) => ClientError::BadShares(vec![self.name(&p)]),
            other => ClientError::Failed(other.to_string()),
        })
    }

    /// Collects the raw share answers of `participants` for a request (for tests and
    /// tools that inspect shares before combining).
    pub async fn sign_shares(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        participants: &[Participant],
    ) -> Result<ShareAnswers, ClientError> {
        self.sign_shares_partial(user, key, message, participants, participants)
            .await
    }

    /// Sends a request naming `named` participants to the nodes `sent_to` only.
    pub async fn sign_shares_partial(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        named: &[Participant],
        sent_to: &[Participant],
    ) -> Result<ShareAnswers, ClientError> {
        let body = self.sign_request(user, key, message, &self.links_of(named))?;
        Ok(self
            .post_all::<route::Sign>(&self.links_of(sent_to), body)
            .await
            .into_iter()
            .map(|(l, a)| {
                let r = a.map_err(|r| r.text()).and_then(|s| decode_share(&s));
                (l.participant, r)
            })
            .collect())
    }

    /// Sets who besides the owner (`owner`'s address) may sign with the owner's key
    /// `name`, on every reachable node; returns each node's answer.
    pub async fn set_permissions(
        &self,
        owner: &SigningKey,
        name: &str,
        allowed: Vec<Address>,
        seq: u64,
    ) -> Result<NodeAnswers, ClientError> {
        let usage = |e: keynet_protocol::request::RequestError| ClientError::Usage(e.to_string());
        let key = KeyRef::new(address_of(owner.verifying_key()), name).map_err(usage)?;
        let request = PermissionsRequest::new(self.registry.network_id.clone(), key, seq, allowed)
            .map_err(usage)?;
        let body = self.authorised(owner, request)?;
        let all: Vec<&Link> = self.links.iter().collect();
        Ok(self
            .post_all::<route::Permissions>(&all, body)
            .await
            .into_iter()
            .map(|(l, a)| (l.endpoint().to_owned(), a.map(|_| ()).map_err(|r| r.text())))
            .collect())
    }
}

/// A node's share and the package it signed, decoded.
fn decode_share(a: &SignShare) -> Result<(SignatureShare, SigningPackage), String> {
    let share = SignatureShare::deserialize(&hex::decode(&a.share).map_err(|e| e.to_string())?)
        .map_err(|e| format!("share: {e}"))?;
    let package = SigningPackage::deserialize(&hex::decode(&a.package).map_err(|e| e.to_string())?)
        .map_err(|e| format!("signing package: {e}"))?;
    Ok((share, package))
}
