//! The canonical form and its hash.
//!
//! Canonical JSON, exactly:
//! - no whitespace anywhere;
//! - the document is `{"condition":C,"version":1}`;
//! - each condition is an object with one key, the kind: `{"address_is":"0x<40 lowercase
//!   hex>"}`, `{"address_in":[A,...]}` (sorted ascending by address bytes, no repeats),
//!   `{"time_before":N}` and `{"time_after":N}` (decimal, no sign, no leading zeros),
//!   `{"signed_by":{"address":A,"statement":S}}`, `{"all":[C,...]}`, `{"any":[C,...]}`
//!   (members sorted by their canonical bytes, compared as bytes);
//! - strings as RFC 8259 with minimal escaping: `"` and `\` escaped, U+0000 to U+001F as
//!   `\b \t \n \f \r` or `\u00xx` (lowercase hex), every other character as its UTF-8 bytes.
//!
//! The hash is `sha256(DOMAIN || canonical bytes)`.

use sha2::{Digest, Sha256};

use crate::model::{Condition, Conditions};

/// Domain separation of the conditions hash.
pub const DOMAIN: &[u8] = b"keynet/conditions/v1\n";

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn address(out: &mut String, a: &keynet_eth::Address) {
    out.push_str("\"0x");
    out.push_str(&hex::encode(a.as_bytes()));
    out.push('"');
}

fn write(out: &mut String, c: &Condition) {
    match c {
        Condition::AddressIs(a) => {
            out.push_str("{\"address_is\":");
            address(out, a);
            out.push('}');
        }
        Condition::AddressIn(list) => {
            out.push_str("{\"address_in\":[");
            for (i, a) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                address(out, a);
            }
            out.push_str("]}");
        }
        Condition::TimeBefore(t) => out.push_str(&format!("{{\"time_before\":{t}}}")),
        Condition::TimeAfter(t) => out.push_str(&format!("{{\"time_after\":{t}}}")),
        Condition::SignedBy {
            address: a,
            statement,
        } => {
            out.push_str("{\"signed_by\":{\"address\":");
            address(out, a);
            out.push_str(",\"statement\":");
            string(out, statement);
            out.push_str("}}");
        }
        Condition::All(list) | Condition::Any(list) => {
            out.push_str(if matches!(c, Condition::All(_)) {
                "{\"all\":["
            } else {
                "{\"any\":["
            });
            for (i, m) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, m);
            }
            out.push_str("]}");
        }
    }
}

/// The canonical JSON of one condition.
pub(crate) fn condition_json(c: &Condition) -> String {
    let mut out = String::new();
    write(&mut out, c);
    out
}

/// The canonical JSON of a document.
pub fn canonical_json(c: &Conditions) -> String {
    format!(
        "{{\"condition\":{},\"version\":{}}}",
        condition_json(&c.condition),
        crate::model::VERSION
    )
}

impl Conditions {
    /// The canonical form (see the module documentation).
    pub fn canonical(&self) -> String {
        canonical_json(self)
    }

    /// `sha256(DOMAIN || canonical form)`: what the encryption identity commits to.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.canonical().as_bytes());
        h.finalize().into()
    }
}
