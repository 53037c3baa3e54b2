//! Evaluating conditions for one requester, at the node's time. A failure says which
//! condition failed and why (expected vs found), so a refused user knows what to fix.

use keynet_eth::{Address, eip191_recover};

use crate::model::{Condition, Conditions};

/// A signature the requester presents for `signed_by` conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// Who signed (as the requester claims; the signature must recover to it).
    pub address: Address,
    /// What was signed.
    pub statement: String,
    /// `r || s || v`, EIP-191 personal message.
    pub signature: [u8; 65],
}

/// What a node knows when it evaluates: the requester (from the checked authorisation),
/// its own clock, and the signatures the requester presented.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The requester's address.
    pub requester: Address,
    /// Unix seconds, the node's clock.
    pub now: u64,
    /// Presented signatures.
    pub presented: &'a [Presented],
}

/// Why conditions do not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("condition {path} does not hold: {reason}")]
pub struct Failure {
    /// Which condition, e.g. `condition.all[0].time_before`.
    pub path: String,
    /// Why.
    pub reason: String,
}

fn fail(path: &str, reason: String) -> Failure {
    Failure {
        path: path.to_owned(),
        reason,
    }
}

impl Conditions {
    /// Holds, or says which condition does not. Paths follow the canonical member order.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<(), Failure> {
        eval(&self.condition, "condition", ctx)
    }
}

fn eval(c: &Condition, path: &str, ctx: &Context<'_>) -> Result<(), Failure> {
    match c {
        Condition::AddressIs(a) => {
            if ctx.requester == *a {
                Ok(())
            } else {
                Err(fail(
                    &format!("{path}.address_is"),
                    format!(
                        "requester is {}, expected {}",
                        ctx.requester.to_checksum(),
                        a.to_checksum()
                    ),
                ))
            }
        }
        Condition::AddressIn(list) => {
            if list.binary_search(&ctx.requester).is_ok() {
                Ok(())
            } else {
                Err(fail(
                    &format!("{path}.address_in"),
                    format!(
                        "requester {} is not among the {} listed addresses",
                        ctx.requester.to_checksum(),
                        list.len()
                    ),
                ))
            }
        }
        Condition::TimeBefore(t) => {
            if ctx.now < *t {
                Ok(())
            } else {
                Err(fail(
                    &format!("{path}.time_before"),
                    format!("now is {}, must be before {t}", ctx.now),
                ))
            }
        }
        Condition::TimeAfter(t) => {
            if ctx.now >= *t {
                Ok(())
            } else {
                Err(fail(
                    &format!("{path}.time_after"),
                    format!("now is {}, must be at or after {t}", ctx.now),
                ))
            }
        }
        Condition::SignedBy { address, statement } => {
            let p = format!("{path}.signed_by");
            let found = ctx
                .presented
                .iter()
                .filter(|s| s.address == *address && s.statement == *statement)
                .any(|s| {
                    eip191_recover(s.statement.as_bytes(), &s.signature).ok() == Some(*address)
                });
            if found {
                Ok(())
            } else {
                Err(fail(
                    &p,
                    format!(
                        "no valid signature by {} over the statement was presented",
                        address.to_checksum()
                    ),
                ))
            }
        }
        Condition::All(list) => {
            for (i, m) in list.iter().enumerate() {
                eval(m, &format!("{path}.all[{i}]"), ctx)?;
            }
            Ok(())
        }
        Condition::Any(list) => {
            let mut why = Vec::new();
            for (i, m) in list.iter().enumerate() {
                match eval(m, &format!("{path}.any[{i}]"), ctx) {
                    Ok(()) => return Ok(()),
                    Err(f) => why.push(format!("{}: {}", f.path, f.reason)),
                }
            }
            Err(fail(
                &format!("{path}.any"),
                format!("none holds ({})", why.join("; ")),
            ))
        }
    }
}
