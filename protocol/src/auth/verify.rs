//! Checking an authorisation as a node: signature, then every field against what this node
//! expects, then the nonce against replays ([`super::replay`]).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::message::{AuthMessage, ParseError};
use super::replay::{ReplayLimits, Seen};
use keynet_eth::{Address, eip191_recover};

/// An authorisation as sent with a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedAuth {
    /// The signed text.
    pub message: String,
    /// `0x` + r || s || v (65 bytes), as `personal_sign` returns it.
    pub signature: String,
}

/// Why an authorisation is refused; each names the field and expected vs found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The text is not an authorisation.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The signature is malformed.
    #[error("auth signature: {0}")]
    Signature(String),
    /// Signed by another key than the address in the message.
    #[error("auth signed by {actual}, but the message names {claimed}")]
    Signer {
        /// The message's address.
        claimed: String,
        /// The recovered signer.
        actual: String,
    },
    /// Another domain.
    #[error("auth domain: expected {expected}, found {found}")]
    Domain {
        /// This network's.
        expected: String,
        /// The message's.
        found: String,
    },
    /// Another network.
    #[error("auth network: expected {expected}, found {found}")]
    Network {
        /// This network's.
        expected: String,
        /// The message's.
        found: String,
    },
    /// Authorises another request.
    #[error("auth request digest: expected 0x{expected}, found 0x{found}")]
    Digest {
        /// The request's.
        expected: String,
        /// The message's.
        found: String,
    },
    /// Issued in the future (beyond the allowed clock skew).
    #[error("auth not yet valid: issued at {issued_at}, now {now}")]
    NotYetValid {
        /// Unix seconds.
        issued_at: u64,
        /// Unix seconds.
        now: u64,
    },
    /// Expired.
    #[error("auth expired at {expires_at}, now {now}")]
    Expired {
        /// Unix seconds.
        expires_at: u64,
        /// Unix seconds.
        now: u64,
    },
    /// Valid for longer than this node allows.
    #[error("auth lifetime {seconds} s exceeds the maximum {max} s")]
    Lifetime {
        /// Expiration minus issuance.
        seconds: u64,
        /// The limit.
        max: u64,
    },
    /// This (address, nonce) was used before.
    #[error("auth replayed: nonce {nonce} of {address} was already used")]
    Replay {
        /// The user.
        address: String,
        /// The nonce.
        nonce: String,
    },
    /// Issued at or before the node's replay floor: it may have been accepted before the
    /// node restarted.
    #[error(
        "auth issued at {issued_at}, not after this node's replay floor {floor} (it restarted; \
         authorisations issued before then are refused as possible replays): sign a new one"
    )]
    BeforeRestart {
        /// Unix seconds.
        issued_at: u64,
        /// Unix seconds.
        floor: u64,
    },
    /// Issued after the node's sealed replay horizon (the user's clock is ahead).
    #[error(
        "auth issued at {issued_at}, after this node's replay horizon {horizon} (is the \
         signer's clock ahead?)"
    )]
    BeyondHorizon {
        /// Unix seconds.
        issued_at: u64,
        /// Unix seconds.
        horizon: u64,
    },
    /// This address has as many unexpired authorisations remembered as the node allows.
    #[error(
        "auth: {address} has {limit} unexpired authorisations at this node already; wait for \
         some to expire (shorter lifetimes help)"
    )]
    AddressBusy {
        /// The user.
        address: String,
        /// The limit.
        limit: usize,
    },
    /// The node remembers as many unexpired authorisations as it allows.
    #[error("auth: this node remembers {limit} unexpired authorisations already; retry later")]
    NodeBusy {
        /// The limit.
        limit: usize,
    },
}

/// A node's checker: what it expects, and the nonces it has seen (until they expire).
#[derive(Debug)]
pub struct AuthVerifier {
    domain: String,
    network: String,
    max_lifetime: u64,
    clock_skew: u64,
    seen: Mutex<Seen>,
}

impl AuthVerifier {
    /// Expects `domain` and `network`; lifetimes up to `max_lifetime` seconds; issuance up
    /// to `clock_skew` seconds in the future. Remembers nonces within the default
    /// [`ReplayLimits`] and in memory only: a node that restarts must use
    /// [`AuthVerifier::with_replay`].
    pub fn new(domain: &str, network: &str, max_lifetime: u64, clock_skew: u64) -> Self {
        Self::with_replay(
            domain,
            network,
            max_lifetime,
            clock_skew,
            ReplayLimits::default(),
            0,
            u64::MAX,
        )
    }

    /// Like [`AuthVerifier::new`], remembering nonces within `limits`, and accepting issue
    /// times after `floor` and up to `horizon` (see [`super::replay`] for the rule).
    pub fn with_replay(
        domain: &str,
        network: &str,
        max_lifetime: u64,
        clock_skew: u64,
        limits: ReplayLimits,
        floor: u64,
        horizon: u64,
    ) -> Self {
        AuthVerifier {
            domain: domain.to_owned(),
            network: network.to_owned(),
            max_lifetime,
            clock_skew,
            seen: Mutex::new(Seen::new(limits, floor, horizon)),
        }
    }

    /// Raises the horizon (after its new value is sealed).
    pub fn raise_horizon(&self, horizon: u64) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .raise_horizon(horizon);
    }

    /// The horizon in force.
    pub fn horizon(&self) -> u64 {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .horizon()
    }

    /// Checks `auth` for the request with digest `request_digest` at Unix time `now`;
    /// returns the user's address and records the nonce.
    pub fn verify(
        &self,
        auth: &SignedAuth,
        request_digest: &[u8; 32],
        now: u64,
    ) -> Result<Address, AuthError> {
        let m = AuthMessage::parse(&auth.message)?;
        let sig_hex = auth
            .signature
            .strip_prefix("0x")
            .ok_or_else(|| AuthError::Signature("expected 0x followed by 130 hex digits".into()))?;
        let mut sig = [0u8; 65];
        hex::decode_to_slice(sig_hex, &mut sig)
            .map_err(|e| AuthError::Signature(format!("expected 65 bytes of hex: {e}")))?;
        let signer = eip191_recover(auth.message.as_bytes(), &sig)
            .map_err(|e| AuthError::Signature(e.to_string()))?;
        if signer != m.address {
            return Err(AuthError::Signer {
                claimed: m.address.to_checksum(),
                actual: signer.to_checksum(),
            });
        }
        if m.domain != self.domain {
            return Err(AuthError::Domain {
                expected: self.domain.clone(),
                found: m.domain,
            });
        }
        if m.network != self.network {
            return Err(AuthError::Network {
                expected: self.network.clone(),
                found: m.network,
            });
        }
        if &m.request_digest != request_digest {
            return Err(AuthError::Digest {
                expected: hex::encode(request_digest),
                found: hex::encode(m.request_digest),
            });
        }
        if m.issued_at > now.saturating_add(self.clock_skew) {
            return Err(AuthError::NotYetValid {
                issued_at: m.issued_at,
                now,
            });
        }
        if now >= m.expires_at {
            return Err(AuthError::Expired {
                expires_at: m.expires_at,
                now,
            });
        }
        let seconds = m.expires_at - m.issued_at;
        if seconds > self.max_lifetime {
            return Err(AuthError::Lifetime {
                seconds,
                max: self.max_lifetime,
            });
        }
        // A poisoned lock only means another thread panicked between two whole updates.
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).record(
            m.address,
            &m.nonce,
            m.issued_at,
            m.expires_at,
            now,
        )?;
        Ok(m.address)
    }
}
