//! Threshold signing that honours the user's request on every node.
//!
//! A node joins a signing only for a request it has verified itself, from the user: the
//! node layer checks the user's authorisation and then calls [`Signer::begin`]. Every peer
//! message names the request by its id (the hash of the user's signed request), and
//! commitments for a request this node has not begun are dropped at once: a node never
//! signs for, and never holds anything for, a request it only heard about from peers.
//!
//! Per request: `begin` makes this node's nonces and commitments (sent to the other
//! participants); once every participant's commitments are in, the node signs and hands
//! its signature share to the user, who aggregates with cheater detection.
//!
//! Two participants A and B exchange commitments like this, whichever begins first:
//!
//! ```text
//!   A: begin ──commitments(A)──► B   B has not begun: dropped (answer: none)
//!   B: begin ──commitments(B)──► A   A has begun: takes B's, answers with its own
//!            ◄──answer: commitments(A)──
//! ```
//!
//! The push of whichever node begins later always finds the other's session, and its
//! answer carries the other's commitments back ([`Signer::on_commitments`] returns them).
//! So no node keeps commitments for requests it has not verified, and a peer (or a
//! stranger flooding one node with requests naming others) has nothing to fill or evict at
//! another node. A node's sessions are bounded by the caller (open sessions per user and
//! in all; [`Signer::cancel`] when a waiting caller goes).
//!
//! A node that has signed keeps its own commitments (public values; the nonces are gone)
//! until the wait is over, to answer a push that arrives late or again (a retried push
//! whose first answer was lost), at most [`MAX_FINISHED`] of them.

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
    /// Commitments for a request not open here were dropped: never begun (not verified
    /// from the user), or expired or cancelled here.
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
    /// Requests signed here: this node's commitments and the participants, by id, and the
    /// ids in the order they finished, with their start time (for expiry).
    finished: BTreeMap<[u8; 32], (SigningCommitments, Vec<Participant>)>,
    finished_order: VecDeque<(Instant, [u8; 32])>,
}

/// Signed requests whose commitments a node keeps to answer late pushes; the oldest go
/// first (losing one costs only that answer).
pub const MAX_FINISHED: usize = 16_384;

/// What taking a peer's commitments gave.
#[derive(Debug)]
pub struct Taken {
    /// This node's own commitments for the same request, when it has begun that request
    /// and the sender is among its participants: the answer to the sender.
    pub mine: Option<SigningCommitments>,
    /// A share or failure, or the drop of commitments for a request not begun here.
    pub events: Vec<Event>,
}

fn id(p: Participant) -> Result<Identifier, SignError> {
    Identifier::try_from(p).map_err(|e| SignError::Frost(e.to_string()))
}

impl Signer {
    /// Node `me` of `n` with key package `key` (root or derived); sessions wait at most
    /// `wait` for every participant's commitments.
    pub fn new(me: Participant, n: u16, key: KeyPackage, wait: Duration) -> Self {
        Signer {
            me,
            n,
            key,
            wait,
            sessions: BTreeMap::new(),
            finished: BTreeMap::new(),
            finished_order: VecDeque::new(),
        }
    }

    /// Requests in progress.
    pub fn pending(&self) -> usize {
        self.sessions.len()
    }

    /// Begins a request this node verified from the user, with the key package given at
    /// [`Signer::new`]. Returns the commitments to send.
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
        if self.sessions.contains_key(&request.id) || self.finished.contains_key(&request.id) {
            return Err(SignError::Duplicate(hex::encode(request.id)));
        }
        let (nonces, mine) = commit(key.signing_share(), &mut rand_core::OsRng);
        let events: Vec<Event> = set
            .iter()
            .filter(|p| **p != self.me)
            .map(|to| Event::Commitments {
                id: request.id,
                to: *to,
                commitments: Box::new(mine),
            })
            .collect();
        let mut commitments = BTreeMap::new();
        commitments.insert(self.me, mine);
        self.sessions.insert(
            request.id,
            Session {
                request,
                key,
                nonces,
                commitments,
                started: now,
            },
        );
        Ok(events)
    }

    /// Ends request `rid` here unsigned (its caller went); its nonces are gone. Returns
    /// whether it was open.
    pub fn cancel(&mut self, rid: &[u8; 32]) -> bool {
        self.sessions.remove(rid).is_some()
    }

    /// Takes a peer's commitments for request `rid`: used if this node has begun that
    /// request (verified from the user) and lists the sender, dropped otherwise. Either
    /// way the sender is answered with this node's own commitments when it has them
    /// ([`Taken::mine`]), so the later of two nodes to begin gets the earlier's; a request
    /// already signed here is answered from what was kept of it.
    pub fn on_commitments(
        &mut self,
        from: Participant,
        rid: [u8; 32],
        commitments: SigningCommitments,
    ) -> Taken {
        if let Some((mine, participants)) = self.finished.get(&rid) {
            let listed = from != self.me && participants.contains(&from);
            return Taken {
                mine: listed.then_some(*mine),
                events: vec![],
            };
        }
        let mine = self.sessions.get(&rid).and_then(|s| {
            (from != self.me && s.request.participants.contains(&from))
                .then(|| s.commitments.get(&self.me).copied())
                .flatten()
        });
        if mine.is_none() {
            return Taken {
                mine: None,
                events: vec![Event::Dropped { id: rid, from }],
            };
        }
        Taken {
            mine,
            events: self.add(from, rid, commitments),
        }
    }

    /// Takes the commitments a peer answered a push with ([`Taken::mine`] at its end):
    /// used if request `rid` is still open here, otherwise (already signed, expired or
    /// cancelled) ignored.
    pub fn on_answer(
        &mut self,
        from: Participant,
        rid: [u8; 32],
        commitments: SigningCommitments,
    ) -> Vec<Event> {
        self.add(from, rid, commitments)
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
        if let Some(mine) = s.commitments.get(&self.me) {
            self.finished
                .insert(rid, (*mine, s.request.participants.clone()));
            self.finished_order.push_back((s.started, rid));
            while self.finished_order.len() > MAX_FINISHED {
                if let Some((_, old)) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
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

    /// Expires sessions older than the wait (and what was kept of signed ones).
    pub fn tick(&mut self, now: Instant) -> Vec<Event> {
        let wait = self.wait;
        let mut events = Vec::new();
        while let Some((started, rid)) = self.finished_order.front().copied() {
            if now.saturating_duration_since(started) < wait {
                break;
            }
            self.finished_order.pop_front();
            self.finished.remove(&rid);
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
