//! Moving a threshold secret to a new member set, or re-randomising its shares, without
//! ever putting it together: Desmedt–Jajodia redistribution with the Wong–Wang–Wing checks
//! (as drand reshares its BLS key), generic over the group so that the FROST secp256k1 key
//! and the BLS12-381 key go through the same code. Pure functions, no I/O: the protocol
//! (rounds, complaints, deadlines, cut-over) is built on top of them.
//!
//! ```text
//!  dealer d of the old set (share s_d, public share S_d = s_d·G, old threshold t):
//!    deal     random g_d of degree t'-1 with g_d(0) = s_d      (refresh: g_d(0) = 0)
//!             commitments C_d,k = a_d,k·G to everyone; g_d(j) to new member j only
//!  new member j, for each dealer d:
//!    share    g_d(j)·G == Σ_k C_d,k·j^k          the share is the committed polynomial's
//!    constant C_d,0 == S_d                        the dealer dealt its own share (refresh: 0)
//!  over an agreed set D of at least t good dealers, λ_d the Lagrange weights at 0 over D:
//!    reshare  s'_j = Σ_d λ_d·g_d(j)    C'_k = Σ_d λ_d·C_d,k    S'_j = Σ_k C'_k·j^k
//!             C'_0 == the group key (unchanged)
//!    refresh  s'_j = s_j + Σ_d g_d(j)  S'_j = S_j + Σ_d Σ_k C_d,k·j^k
//! ```
//!
//! Why the result is right: Σ_d λ_d·g_d is a polynomial of degree t'-1 whose value at 0 is
//! Σ_d λ_d·s_d, the old secret (any t old shares interpolate it); the constant check ties
//! each dealing to the old public share, so a dealer cannot deal another value than its
//! share, and the share check ties every new share to the public commitments.

use std::collections::BTreeMap;

use ff::{Field, PrimeField};
use group::Group;
use rand_core::RngCore;

use crate::dkg::Participant;

/// Why a step cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReshareError {
    /// The new threshold is out of range for the receivers.
    #[error("the new threshold {t} must be 1 <= t <= {receivers} (the receivers)")]
    Threshold {
        /// Asked.
        t: u16,
        /// Receivers.
        receivers: usize,
    },
    /// A participant index of 0, or one listed twice.
    #[error("participant indices must be distinct and non-zero: {0:?}")]
    Indices(Vec<Participant>),
    /// Dealings whose commitments have different lengths (different thresholds).
    #[error("dealer {dealer} committed to {got} coefficients, the others to {expected}")]
    Degree {
        /// The odd dealer.
        dealer: Participant,
        /// Its coefficients.
        got: usize,
        /// The others'.
        expected: usize,
    },
    /// Fewer good dealers than the old threshold.
    #[error("{have} good dealers, the old threshold needs {need}")]
    TooFewDealers {
        /// Good dealers.
        have: usize,
        /// The old threshold.
        need: usize,
    },
    /// A share for the receiver is missing from a dealer of the set.
    #[error("no share from dealer {0}")]
    MissingShare(Participant),
}

/// One dealer's dealing: public commitments, and each receiver's share.
pub struct Dealing<G: Group> {
    /// `C_k = a_k·G`, k = 0..t'.
    pub commitments: Vec<G>,
    /// `g(j)` for each receiver j: secret, for j alone.
    pub shares: BTreeMap<Participant, G::Scalar>,
}

fn x<S: PrimeField>(p: Participant) -> S {
    S::from(u64::from(p))
}

fn distinct(ids: &[Participant]) -> Result<(), ReshareError> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != ids.len() || sorted.first() == Some(&0) {
        return Err(ReshareError::Indices(ids.to_vec()));
    }
    Ok(())
}

/// Deals `constant` (the dealer's own share; zero for a refresh) to `receivers` with new
/// threshold `t_new`.
pub fn deal<G: Group>(
    constant: G::Scalar,
    t_new: u16,
    receivers: &[Participant],
    mut rng: impl RngCore,
) -> Result<Dealing<G>, ReshareError> {
    distinct(receivers)?;
    if t_new == 0 || usize::from(t_new) > receivers.len() {
        return Err(ReshareError::Threshold {
            t: t_new,
            receivers: receivers.len(),
        });
    }
    let mut poly: Vec<G::Scalar> = std::iter::once(constant)
        .chain((1..t_new).map(|_| G::Scalar::random(&mut rng)))
        .collect();
    let commitments = poly.iter().map(|a| G::generator() * a).collect();
    let shares = receivers.iter().map(|r| (*r, eval(&poly, x(*r)))).collect();
    // The coefficients are secret (the first is the dealer's share): overwritten here.
    poly.iter_mut().for_each(|a| *a = G::Scalar::ZERO);
    Ok(Dealing {
        commitments,
        shares,
    })
}

/// `f(at)` by Horner's rule.
fn eval<S: PrimeField>(poly: &[S], at: S) -> S {
    poly.iter().rev().fold(S::ZERO, |acc, c| acc * at + c)
}

/// `Σ_k C_k·j^k`: the public value at member `j` of a committed polynomial.
pub fn public_at<G: Group>(commitments: &[G], j: Participant) -> G {
    let at: G::Scalar = x(j);
    commitments
        .iter()
        .rev()
        .fold(G::identity(), |acc, c| acc * at + c)
}

/// Whether `share` is the committed polynomial's value at `receiver`.
pub fn share_ok<G: Group>(commitments: &[G], receiver: Participant, share: &G::Scalar) -> bool {
    G::generator() * share == public_at(commitments, receiver)
}

/// Whether the dealing is of the dealer's own share: its constant commitment equals the
/// dealer's public share of the old epoch (the identity for a refresh).
pub fn constant_ok<G: Group>(commitments: &[G], old_public_share: &G) -> bool {
    commitments.first() == Some(old_public_share)
}

/// The Lagrange weight at 0 of member `i` among `ids`: `Π_{j≠i} x_j / (x_j − x_i)`.
pub fn lagrange_at_zero<S: PrimeField>(
    ids: &[Participant],
    i: Participant,
) -> Result<S, ReshareError> {
    distinct(ids)?;
    let xi: S = x(i);
    let (mut num, mut den) = (S::ONE, S::ONE);
    for j in ids.iter().filter(|j| **j != i) {
        let xj: S = x(*j);
        num *= xj;
        den *= xj - xi;
    }
    Option::from(den.invert())
        .map(|inv: S| num * inv)
        .ok_or_else(|| ReshareError::Indices(ids.to_vec()))
}

/// The good dealers' weights, after checking there are at least `t_old` of them.
fn weights<S: PrimeField>(
    dealers: &[Participant],
    t_old: u16,
) -> Result<Vec<(Participant, S)>, ReshareError> {
    if dealers.len() < usize::from(t_old) {
        return Err(ReshareError::TooFewDealers {
            have: dealers.len(),
            need: usize::from(t_old),
        });
    }
    dealers
        .iter()
        .map(|d| Ok((*d, lagrange_at_zero::<S>(dealers, *d)?)))
        .collect()
}

/// A new member's share after a resharing: `Σ_d λ_d·g_d(j)` over the agreed good dealers
/// (the keys of `shares`, each the share that dealer sent this member).
pub fn combine_shares<S: PrimeField>(
    shares: &BTreeMap<Participant, S>,
    t_old: u16,
) -> Result<S, ReshareError> {
    let dealers: Vec<Participant> = shares.keys().copied().collect();
    let mut sum = S::ZERO;
    for (d, w) in weights::<S>(&dealers, t_old)? {
        let s = shares.get(&d).ok_or(ReshareError::MissingShare(d))?;
        sum += w * s;
    }
    Ok(sum)
}

/// The new key's commitments after a resharing, `C'_k = Σ_d λ_d·C_d,k` over the agreed
/// good dealers: `C'_0` must equal the group key, and `public_at(C', j)` is member j's new
/// public share.
pub fn combine_commitments<G: Group>(
    commitments: &BTreeMap<Participant, Vec<G>>,
    t_old: u16,
) -> Result<Vec<G>, ReshareError> {
    let dealers: Vec<Participant> = commitments.keys().copied().collect();
    let len = commitments.values().next().map_or(0, Vec::len);
    for (d, c) in commitments {
        if c.len() != len {
            return Err(ReshareError::Degree {
                dealer: *d,
                got: c.len(),
                expected: len,
            });
        }
    }
    let mut joint = vec![G::identity(); len];
    for (d, w) in weights::<G::Scalar>(&dealers, t_old)? {
        for (j, c) in joint.iter_mut().zip(&commitments[&d]) {
            *j += *c * w;
        }
    }
    Ok(joint)
}

/// A member's share after a refresh: its old share plus every good dealer's zero-constant
/// share to it.
pub fn refresh_share<S: PrimeField>(old: S, shares: &BTreeMap<Participant, S>) -> S {
    shares.values().fold(old, |acc, s| acc + s)
}

/// A member's public share after a refresh: the old one plus the dealers' public values at
/// it.
pub fn refresh_public<G: Group>(
    old: G,
    commitments: &BTreeMap<Participant, Vec<G>>,
    j: Participant,
) -> G {
    commitments
        .values()
        .fold(old, |acc, c| acc + public_at(c, j))
}
