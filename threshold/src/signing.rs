//! Threshold signing that honours the user's request on every node.
//!
//! A node joins a signing only for a request it has verified itself, from the user: the
//! node layer checks the user's authorisation and then calls [`Signer::begin`]. Every peer
//! message names the request by its id (the hash of the user's signed request), and a
//! commitment for a request this node has not begun waits at most [`Signer::new`]'s `wait`,
//! then is dropped: a node never signs for a request it only heard about from peers.
//!
//! Per request: `begin` makes this node's nonces and commitments (sent to the other
//! participants); once every participant's commitments are in, the node signs and hands
//! its signature share to the user, who aggregates with cheater detection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use frost_secp256k1::keys::KeyPackage;
use frost_secp256k1::round1::{SigningCommitments, SigningNonces, commit};
use frost_secp256k1::round2::{SignatureShare, sign};
use frost_secp256k1::{Identifier, SigningPackage};

use crate::dkg::Participant;

/// Why a request cannot be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The participant list is unusable.
    #[error("participants {participants:?}: {reason}")]
    Participants {
        /// The list.
        participants: Vec<Participant>,
        /// Why.
        reason: String,
    },
    /// This request is already being signed here.
    #[error("request {0} already begun")]
    Duplicate(String),
    /// Not every participant sent commitments in time.
    #[error("request {request}: no commitments from {missing:?} within {wait:?}")]
    Timeout {
        /// Request id (hex).
        request: String,
        /// Who is missing.
        missing: Vec<Participant>,
        /// The wait.
        wait: Duration,
    },
    /// The library refused (e.g. malformed commitments).
    #[error("FROST: {0}")]
    Frost(String),
}

/// A request this node verified from the user itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// sha256 of the user's signed request: the name every peer message uses.
    pub id: [u8; 32],
    /// The 32-byte digest to sign.
    pub message: [u8; 32],
    /// The signing participants (at least the threshold, this node among them).
    pub participants: Vec<Participant>,
}

/// What a node sends or hands back.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Send these commitments for request `id` to participant `to`.
    Commitments {
        /// Request id.
        id: [u8; 32],
        /// Recipient.
        to: Participant,
        /// This node's commitments.
        commitments: Box<SigningCommitments>,
    },
    /// This node's signature share for request `id`, for the user, with the signing
    /// package (every participant's commitments and the message) it signed: the user
    /// aggregates with it and checks that every node signed the same package.
    Share {
        /// Request id.
        id: [u8; 32],
        /// The share.
        share: SignatureShare,
        /// What was signed.
        package: Box<SigningPackage>,
    },
    /// A request failed here.
    Failed {
        /// Request id.
        id: [u8; 32],
        /// Why.
        error: SignError,
    },
    /// Commitments for a request this node never verified were dropped.
    Dropped {
        /// Request id.
        id: [u8; 32],
        /// Who sent them.
        from: Participant,
    },
}

struct Session {
    request: VerifiedRequest,
    key: KeyPackage,
    nonces: SigningNonces,
    commitments: BTreeMap<Participant, SigningCommitments>,
    started: Instant,
}

/// One node's signing state.
pub struct Signer {
    me: Participant,
    n: u16,
    key: KeyPackage,
    wait: Duration,
    sessions: BTreeMap<[u8; 32], Session>,
    /// Commitments for requests not (yet) verified here, with their arrival time.
    waiting: VecDeque<(Instant, Participant, [u8; 32], SigningCommitments)>,
}

/// Held commitments for unverified requests are capped, so peers cannot grow a node's
/// memory by naming requests the user never sent; the oldest are dropped first.
pub const MAX_HELD: usize = 4096;

fn id(p: Participant) -> Result<Identifier, SignError> {
    Identifier::try_from(p).map_err(|e| SignError::Frost(e.to_string()))
}

impl Signer {
    /// Node `me` of `n` with key package `key` (root or derived); peers' commitments for
    /// unknown requests, and sessions, wait at most `wait`.
    pub fn new(me: Participant, n: u16, key: KeyPackage, wait: Duration) -> Self {
        Signer {
            me,
            n,
            key,
            wait,
            sessions: BTreeMap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Requests in progress.
    pub fn pending(&self) -> usize {
        self.sessions.len()
    }

    /// Begins a request this node verified from the user, with the key package given at
    /// [`Signer::new`]. Returns the commitments to send (and, if every peer's commitments
    /// were already waiting, this node's share).
    pub fn begin(
        &mut self,
        request: VerifiedRequest,
        now: Instant,
    ) -> Result<Vec<Event>, SignError> {
        let key = self.key.clone();
        self.begin_with(request, key, now)
    }

    /// Like [`Signer::begin`], signing with `key` (e.g. a key derived for the request's
    /// key id) instead of the one given at [`Signer::new`]. Its identifier must be this
    /// node's.
    pub fn begin_with(
        &mut self,
        request: VerifiedRequest,
        key: KeyPackage,
        now: Instant,
    ) -> Result<Vec<Event>, SignError> {
        let set: BTreeSet<Participant> = request.participants.iter().copied().collect();
        let bad = |reason: &str| SignError::Participants {
            participants: request.participants.clone(),
            reason: reason.to_owned(),
        };
        if set.len() != request.participants.len() {
            return Err(bad("listed twice"));
        }
        if !set.contains(&self.me) {
            return Err(bad("this node is not among them"));
        }
        if set.iter().any(|p| *p == 0 || *p > self.n) {
            return Err(bad("not all are members"));
        }
        if set.len() < usize::from(*key.min_signers()) {
            return Err(bad(&format!(
                "fewer than the threshold {}",
                key.min_signers()
            )));
        }
        if *key.identifier() != id(self.me)? {
            return Err(bad("the key package is another participant's"));
        }
        if self.sessions.contains_key(&request.id) {
            return Err(SignError::Duplicate(hex::encode(request.id)));
        }
        let (nonces, mine) = commit(key.signing_share(), &mut rand_core::OsRng);
        let mut events: Vec<Event> = set
            .iter()
            .filter(|p| **p != self.me)
            .map(|to| Event::Commitments {
                id: request.id,
                to: *to,
                commitments: Box::new(mine),
            })
            .collect();
        let rid = request.id;
        let mut commitments = BTreeMap::new();
        commitments.insert(self.me, mine);
        self.sessions.insert(
            rid,
            Session {
                request,
                key,
                nonces,
                commitments,
                started: now,
            },
        );
        // Peers may have been faster than the user's request to us.
        let (ready, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, _, rid2, _)| *rid2 == rid);
        self.waiting = rest;
        for (_, from, _, c) in ready {
            events.extend(self.add(from, rid, c));
        }
        Ok(events)
    }

    /// Takes a peer's commitments for request `rid`.
    pub fn on_commitments(
        &mut self,
        from: Participant,
        rid: [u8; 32],
        commitments: SigningCommitments,
        now: Instant,
    ) -> Vec<Event> {
        if self.sessions.contains_key(&rid) {
            return self.add(from, rid, commitments);
        }
        // Not verified here (yet): hold it, never act on it alone.
        self.waiting.push_back((now, from, rid, commitments));
        let mut events = Vec::new();
        // Each peer gets its share of the room, so one peer naming requests the user never
        // sent cannot push out what honest peers sent ahead of the user's request.
        let per_sender = (MAX_HELD / usize::from(self.n.max(1))).max(1);
        if self.waiting.iter().filter(|w| w.1 == from).count() > per_sender
            && let Some(i) = self.waiting.iter().position(|w| w.1 == from)
            && let Some((_, f, id, _)) = self.waiting.remove(i)
        {
            events.push(Event::Dropped { id, from: f });
        }
        while self.waiting.len() > MAX_HELD {
            if let Some((_, from, id, _)) = self.waiting.pop_front() {
                events.push(Event::Dropped { id, from });
            }
        }
        events
    }

    fn add(&mut self, from: Participant, rid: [u8; 32], c: SigningCommitments) -> Vec<Event> {
        let Some(s) = self.sessions.get_mut(&rid) else {
            return Vec::new();
        };
        if !s.request.participants.contains(&from) || from == self.me {
            return Vec::new();
        }
        s.commitments.entry(from).or_insert(c);
        if s.commitments.len() < s.request.participants.len() {
            return Vec::new();
        }
        let Some(s) = self.sessions.remove(&rid) else {
            return Vec::new();
        };
        let result = (|| {
            let mut all = BTreeMap::new();
            for (p, c) in &s.commitments {
                all.insert(id(*p)?, *c);
            }
            let package = SigningPackage::new(all, &s.request.message);
            sign(&package, &s.nonces, &s.key)
                .map(|share| (share, package))
                .map_err(|e| SignError::Frost(e.to_string()))
        })();
        // The nonces are used once: the session is gone whatever happened.
        vec![match result {
            Ok((share, package)) => Event::Share {
                id: rid,
                share,
                package: Box::new(package),
            },
            Err(error) => Event::Failed { id: rid, error },
        }]
    }

    /// Expires sessions and held commitments older than the wait.
    pub fn tick(&mut self, now: Instant) -> Vec<Event> {
        let wait = self.wait;
        let mut events = Vec::new();
        let (old, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(t, ..)| now.saturating_duration_since(*t) >= wait);
        self.waiting = keep;
        for (_, from, rid, _) in old {
            events.push(Event::Dropped { id: rid, from });
        }
        let expired: Vec<[u8; 32]> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.started) >= wait)
            .map(|(k, _)| *k)
            .collect();
        for rid in expired {
            if let Some(s) = self.sessions.remove(&rid) {
                let missing = s
                    .request
                    .participants
                    .iter()
                    .copied()
                    .filter(|p| !s.commitments.contains_key(p))
                    .collect();
                events.push(Event::Failed {
                    id: rid,
                    error: SignError::Timeout {
                        request: hex::encode(rid),
                        missing,
                        wait,
                    },
                });
            }
        }
        events
    }
}
