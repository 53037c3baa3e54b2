//! The condition types and their strict parser.

use keynet_eth::Address;
use serde::Deserialize;

/// The only version of the language.
pub const VERSION: u32 = 1;
/// Deepest nesting of `all` / `any` (the top condition is depth 1).
pub const MAX_DEPTH: usize = 8;
/// Most conditions in one document (every node of the tree counts).
pub const MAX_NODES: usize = 256;
/// Longest `address_in` list and `all` / `any` member list.
pub const MAX_LIST: usize = 1024;
/// Longest `signed_by` statement, bytes.
pub const MAX_STATEMENT: usize = 1024;
/// Longest conditions document a node accepts in a request, bytes: a file's conditions
/// must fit in canonical form, or nobody could ever ask for its decryption key.
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// Times must be below this (year 10000), so every node reads them the same.
pub const MAX_TIME: u64 = 253_402_300_800;

/// A condition.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// The requester is this address.
    AddressIs(Address),
    /// The requester is one of these (sorted, no repeats).
    AddressIn(Vec<Address>),
    /// The node's clock is before this time (Unix seconds).
    TimeBefore(u64),
    /// The node's clock is at or after this time.
    TimeAfter(u64),
    /// The requester presents a signature by `address` over `statement` (EIP-191).
    SignedBy {
        /// The signer.
        address: Address,
        /// What it signed.
        statement: String,
    },
    /// Every member holds.
    All(Vec<Condition>),
    /// At least one member holds.
    Any(Vec<Condition>),
}

/// A versioned conditions document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conditions {
    /// The condition.
    pub condition: Condition,
}

/// Why a document is not valid conditions; names the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("conditions {path}: {reason}")]
pub struct ConditionsError {
    /// Where, e.g. `condition.all[1].time_before`.
    pub path: String,
    /// Why.
    pub reason: String,
}

fn err(path: &str, reason: impl Into<String>) -> ConditionsError {
    ConditionsError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

// The wire shape, read strictly by serde (unknown and repeated fields refused, exactly
// one kind per object), then checked and normalised into `Condition`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    version: u32,
    condition: Wire,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Wire {
    AddressIs(String),
    AddressIn(Vec<String>),
    TimeBefore(u64),
    TimeAfter(u64),
    SignedBy(SignedByWire),
    All(Vec<Wire>),
    Any(Vec<Wire>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedByWire {
    address: String,
    statement: String,
}

fn address(path: &str, s: &str) -> Result<Address, ConditionsError> {
    s.parse().map_err(|e| err(path, format!("{e}")))
}

fn time(path: &str, t: u64) -> Result<u64, ConditionsError> {
    if t >= MAX_TIME {
        return Err(err(path, format!("{t} is beyond the year 9999")));
    }
    Ok(t)
}

impl Conditions {
    /// Parses and checks a conditions document.
    pub fn parse(json: &[u8]) -> Result<Conditions, ConditionsError> {
        let doc: Doc = serde_json::from_slice(json).map_err(|e| {
            err(
                "document",
                format!("line {} column {}: {e}", e.line(), e.column()),
            )
        })?;
        if doc.version != VERSION {
            return Err(err(
                "version",
                format!("{} is not a known version (only {VERSION})", doc.version),
            ));
        }
        let mut nodes = 0;
        let condition = convert(doc.condition, "condition", 1, &mut nodes)?;
        Ok(Conditions { condition })
    }
}

fn convert(
    w: Wire,
    path: &str,
    depth: usize,
    nodes: &mut usize,
) -> Result<Condition, ConditionsError> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(err(path, format!("more than {MAX_NODES} conditions")));
    }
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH}")));
    }
    Ok(match w {
        Wire::AddressIs(a) => Condition::AddressIs(address(&format!("{path}.address_is"), &a)?),
        Wire::AddressIn(list) => {
            let p = format!("{path}.address_in");
            if list.is_empty() || list.len() > MAX_LIST {
                return Err(err(&p, format!("must list 1 to {MAX_LIST} addresses")));
            }
            let mut out = Vec::with_capacity(list.len());
            for (i, a) in list.iter().enumerate() {
                out.push(address(&format!("{p}[{i}]"), a)?);
            }
            out.sort();
            if let Some(w) = out.windows(2).find(|w| w[0] == w[1]) {
                return Err(err(&p, format!("{} is listed twice", w[0].to_checksum())));
            }
            Condition::AddressIn(out)
        }
        Wire::TimeBefore(t) => Condition::TimeBefore(time(&format!("{path}.time_before"), t)?),
        Wire::TimeAfter(t) => Condition::TimeAfter(time(&format!("{path}.time_after"), t)?),
        Wire::SignedBy(s) => {
            let p = format!("{path}.signed_by");
            if s.statement.is_empty() || s.statement.len() > MAX_STATEMENT {
                return Err(err(
                    &format!("{p}.statement"),
                    format!("must be 1 to {MAX_STATEMENT} bytes"),
                ));
            }
            Condition::SignedBy {
                address: address(&format!("{p}.address"), &s.address)?,
                statement: s.statement,
            }
        }
        Wire::All(list) | Wire::Any(list) if list.is_empty() || list.len() > MAX_LIST => {
            return Err(err(
                path,
                format!("all / any must hold 1 to {MAX_LIST} conditions"),
            ));
        }
        Wire::All(list) => Condition::All(members(list, &format!("{path}.all"), depth, nodes)?),
        Wire::Any(list) => Condition::Any(members(list, &format!("{path}.any"), depth, nodes)?),
    })
}

fn members(
    list: Vec<Wire>,
    path: &str,
    depth: usize,
    nodes: &mut usize,
) -> Result<Vec<Condition>, ConditionsError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, w) in list.into_iter().enumerate() {
        out.push(convert(w, &format!("{path}[{i}]"), depth + 1, nodes)?);
    }
    // Commutative: the canonical order is that of the members' own canonical bytes.
    out.sort_by_cached_key(crate::canonical::condition_json);
    Ok(out)
}
