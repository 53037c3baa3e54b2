//! The condition language: strict parsing, the canonical form and its hash (against the
//! vector file), and evaluation for each kind and for combinations.

use k256::ecdsa::SigningKey;
use keynet_conditions::{Conditions, Context, Presented};
use keynet_eth::{Address, address_of, eip191_sign};
use proptest::prelude::*;

const A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

fn addr(s: &str) -> Address {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn parse(json: &str) -> Conditions {
    Conditions::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn refused(json: &str) -> String {
    match Conditions::parse(json.as_bytes()) {
        Ok(c) => panic!("{json} was accepted as {}", c.canonical()),
        Err(e) => e.to_string(),
    }
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    input: serde_json::Value,
    canonical: String,
    hash: String,
}

/// Every vector's input parses, gives the recorded canonical form and hash, and every
/// other spelling of it in the file (same canonical) gives the same hash.
#[test]
fn canonical_vectors() {
    let text = include_str!("vectors/canonical-v1.json");
    let vectors: Vec<Vector> = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(vectors.len() >= 10);
    for v in &vectors {
        let c = parse(&v.input.to_string());
        assert_eq!(c.canonical(), v.canonical, "{}", v.name);
        assert_eq!(hex::encode(c.hash()), v.hash, "{}", v.name);
        // The canonical form is itself valid input with the same canonical form.
        assert_eq!(parse(&v.canonical).canonical(), v.canonical, "{}", v.name);
    }
}

#[test]
fn spelling_does_not_change_the_hash() {
    let base = parse(&format!(
        r#"{{"version":1,"condition":{{"all":[{{"address_in":["{A}","{B}"]}},{{"time_before":2000000000}}]}}}}"#
    ));
    for other in [
        // keys reordered, whitespace, address case, list and member order
        format!(
            "{{ \"condition\" : {{ \"all\" : [ {{ \"time_before\" : 2000000000 }},\n\t{{ \"address_in\" : [ \"{}\", \"{}\" ] }} ] }}, \"version\" : 1 }}",
            B.to_lowercase(),
            A
        ),
        format!(
            r#"{{"condition":{{"all":[{{"address_in":["{}","{}"]}},{{"time_before":2000000000}}]}},"version":1}}"#,
            A.to_lowercase(),
            B.to_lowercase()
        ),
    ] {
        assert_eq!(parse(&other).hash(), base.hash(), "{other}");
    }
}

#[test]
fn every_change_of_meaning_changes_the_hash() {
    let docs = [
        format!(r#"{{"version":1,"condition":{{"address_is":"{A}"}}}}"#),
        format!(r#"{{"version":1,"condition":{{"address_is":"{B}"}}}}"#),
        format!(r#"{{"version":1,"condition":{{"address_in":["{A}"]}}}}"#),
        format!(r#"{{"version":1,"condition":{{"address_in":["{A}","{B}"]}}}}"#),
        r#"{"version":1,"condition":{"time_before":1000}}"#.to_owned(),
        r#"{"version":1,"condition":{"time_before":1001}}"#.to_owned(),
        r#"{"version":1,"condition":{"time_after":1000}}"#.to_owned(),
        format!(
            r#"{{"version":1,"condition":{{"signed_by":{{"address":"{A}","statement":"yes"}}}}}}"#
        ),
        format!(
            r#"{{"version":1,"condition":{{"signed_by":{{"address":"{A}","statement":"yes "}}}}}}"#
        ),
        format!(
            r#"{{"version":1,"condition":{{"all":[{{"address_is":"{A}"}},{{"time_after":1000}}]}}}}"#
        ),
        format!(
            r#"{{"version":1,"condition":{{"any":[{{"address_is":"{A}"}},{{"time_after":1000}}]}}}}"#
        ),
        format!(r#"{{"version":1,"condition":{{"all":[{{"address_is":"{A}"}}]}}}}"#),
        format!(r#"{{"version":1,"condition":{{"any":[{{"all":[{{"address_is":"{A}"}}]}}]}}}}"#),
    ];
    let mut hashes = std::collections::BTreeSet::new();
    for d in &docs {
        assert!(
            hashes.insert(parse(d).hash()),
            "two meanings share a hash: {d}"
        );
    }
}

#[test]
fn malformed_or_unknown_conditions_are_errors_naming_the_path() {
    for (json, want) in [
        (r#"{"version":2,"condition":{"time_after":1}}"#.to_owned(), "version"),
        (r#"{"condition":{"time_after":1}}"#.to_owned(), "version"),
        (r#"{"version":1,"condition":{"time_after":1},"extra":1}"#.to_owned(), "unknown field"),
        (r#"{"version":1,"condition":{"block_number_after":1}}"#.to_owned(), "unknown variant"),
        (r#"{"version":1,"condition":{"time_after":1,"time_before":2}}"#.to_owned(), "document"),
        (r#"{"version":1,"condition":{"time_after":-1}}"#.to_owned(), "document"),
        (r#"{"version":1,"condition":{"time_after":1.5}}"#.to_owned(), "document"),
        (r#"{"version":1,"condition":{"time_after":"1"}}"#.to_owned(), "document"),
        (
            r#"{"version":1,"condition":{"time_after":99999999999999}}"#.to_owned(),
            "condition.time_after",
        ),
        (r#"{"version":1,"condition":{"all":[]}}"#.to_owned(), "condition"),
        (r#"{"version":1,"condition":{"address_in":[]}}"#.to_owned(), "condition.address_in"),
        (
            format!(r#"{{"version":1,"condition":{{"address_in":["{A}","{}"]}}}}"#, A.to_lowercase()),
            "listed twice",
        ),
        (
            r#"{"version":1,"condition":{"address_is":"0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}}"#
                .to_owned(),
            "checksum",
        ),
        (r#"{"version":1,"condition":{"address_is":"0x12"}}"#.to_owned(), "condition.address_is"),
        (
            format!(r#"{{"version":1,"condition":{{"signed_by":{{"address":"{A}","statement":""}}}}}}"#),
            "condition.signed_by.statement",
        ),
        (
            format!(
                r#"{{"version":1,"condition":{{"signed_by":{{"address":"{A}","statement":"x","statement":"y"}}}}}}"#
            ),
            "duplicate field",
        ),
        (
            format!(
                r#"{{"version":1,"condition":{{"all":[{{"any":[{{"address_is":"{A}"}},{{"time_after":"soon"}}]}}]}}}}"#
            ),
            "document",
        ),
        (r#"{"version":1,"condition":{}}"#.to_owned(), "document"),
        (r#"[1,2]"#.to_owned(), "document"),
        (r#""#.to_owned(), "document"),
    ] {
        let e = refused(&json);
        assert!(e.contains(want), "{json}: {e} (wanted {want})");
    }
    // Depth: 8 levels are fine, 9 are not.
    let nest = |n: usize| {
        let mut c = r#"{"time_after":1}"#.to_owned();
        for _ in 1..n {
            c = format!(r#"{{"all":[{c}]}}"#);
        }
        format!(r#"{{"version":1,"condition":{c}}}"#)
    };
    parse(&nest(8));
    assert!(refused(&nest(9)).contains("nested deeper than 8"));
    // Size: at most 256 conditions in a document.
    let many = |n: usize| {
        let members: Vec<String> = (0..n).map(|i| format!(r#"{{"time_after":{i}}}"#)).collect();
        format!(
            r#"{{"version":1,"condition":{{"any":[{}]}}}}"#,
            members.join(",")
        )
    };
    parse(&many(255));
    assert!(refused(&many(256)).contains("more than 256"));
}

fn wallet(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap_or_else(|e| panic!("{e}"))
}

fn presented(signer: &SigningKey, statement: &str) -> Presented {
    Presented {
        address: address_of(signer.verifying_key()),
        statement: statement.to_owned(),
        signature: eip191_sign(statement.as_bytes(), signer).unwrap_or_else(|e| panic!("{e}")),
    }
}

#[test]
fn each_kind_holds_and_fails_as_it_says() {
    let alice = address_of(wallet(1).verifying_key());
    let bob = address_of(wallet(2).verifying_key());
    let ctx = |requester: Address, now: u64, p: &'static [Presented]| Context {
        requester,
        now,
        presented: p,
    };
    let is_alice = parse(&format!(
        r#"{{"version":1,"condition":{{"address_is":"{}"}}}}"#,
        alice.to_checksum()
    ));
    assert!(is_alice.evaluate(&ctx(alice, 0, &[])).is_ok());
    let f = is_alice
        .evaluate(&ctx(bob, 0, &[]))
        .err()
        .unwrap_or_else(|| panic!("bob"));
    assert_eq!(f.path, "condition.address_is");
    assert!(f.reason.contains(&bob.to_checksum()), "{f}");

    let in_list = parse(&format!(
        r#"{{"version":1,"condition":{{"address_in":["{A}","{}"]}}}}"#,
        alice.to_checksum()
    ));
    assert!(in_list.evaluate(&ctx(alice, 0, &[])).is_ok());
    assert!(in_list.evaluate(&ctx(addr(A), 0, &[])).is_ok());
    assert!(in_list.evaluate(&ctx(bob, 0, &[])).is_err());

    let before = parse(r#"{"version":1,"condition":{"time_before":1000}}"#);
    assert!(before.evaluate(&ctx(alice, 999, &[])).is_ok());
    let f = before
        .evaluate(&ctx(alice, 1000, &[]))
        .err()
        .unwrap_or_else(|| panic!("1000"));
    assert_eq!(f.path, "condition.time_before");
    let after = parse(r#"{"version":1,"condition":{"time_after":1000}}"#);
    assert!(after.evaluate(&ctx(alice, 1000, &[])).is_ok());
    assert!(after.evaluate(&ctx(alice, 999, &[])).is_err());

    let carol = wallet(3);
    let signed = parse(&format!(
        r#"{{"version":1,"condition":{{"signed_by":{{"address":"{}","statement":"alice may read"}}}}}}"#,
        address_of(carol.verifying_key()).to_checksum()
    ));
    let good = vec![presented(&carol, "alice may read")];
    let good: &'static [Presented] = Box::leak(good.into_boxed_slice());
    assert!(signed.evaluate(&ctx(alice, 0, good)).is_ok());
    // Another statement, another signer, or a forged claim of carol's address: refused.
    for p in [
        presented(&carol, "alice may write"),
        presented(&wallet(4), "alice may read"),
        Presented {
            address: address_of(carol.verifying_key()),
            ..presented(&wallet(4), "alice may read")
        },
    ] {
        let p: &'static [Presented] = Box::leak(vec![p].into_boxed_slice());
        let f = signed
            .evaluate(&ctx(alice, 0, p))
            .err()
            .unwrap_or_else(|| panic!("{p:?}"));
        assert_eq!(f.path, "condition.signed_by");
    }
    assert!(signed.evaluate(&ctx(alice, 0, &[])).is_err());
}

#[test]
fn combinations() {
    let alice = address_of(wallet(1).verifying_key());
    let bob = address_of(wallet(2).verifying_key());
    // alice, and only inside [1000, 2000); or anyone after 5000.
    let c = parse(&format!(
        r#"{{"version":1,"condition":{{"any":[
            {{"all":[{{"address_is":"{}"}},{{"time_after":1000}},{{"time_before":2000}}]}},
            {{"time_after":5000}}]}}}}"#,
        alice.to_checksum()
    ));
    let at = |who: Address, now: u64| {
        c.evaluate(&Context {
            requester: who,
            now,
            presented: &[],
        })
    };
    assert!(at(alice, 1500).is_ok());
    assert!(at(bob, 6000).is_ok());
    assert!(at(alice, 999).is_err());
    let f = at(bob, 1500).err().unwrap_or_else(|| panic!("bob at 1500"));
    assert_eq!(f.path, "condition.any");
    assert!(
        f.reason.contains("address_is") && f.reason.contains("time_after"),
        "{f}"
    );
    let f = at(alice, 2000)
        .err()
        .unwrap_or_else(|| panic!("alice at 2000"));
    assert!(f.reason.contains("time_before"), "{f}");
}

proptest! {
    /// Arbitrary bytes never panic the parser; anything accepted has a stable canonical form.
    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(c) = Conditions::parse(&bytes) {
            let again = Conditions::parse(c.canonical().as_bytes());
            prop_assert_eq!(again.map(|a| a.canonical()).ok(), Some(c.canonical()));
        }
    }

    /// Member order of all/any and address order never change the hash.
    #[test]
    fn order_never_changes_the_hash(times in proptest::collection::vec(0u64..10_000, 1..8), rot in 0usize..8) {
        let members: Vec<String> = times.iter().map(|t| format!(r#"{{"time_after":{t}}}"#)).collect();
        let mut rotated = members.clone();
        let r = rot % rotated.len();
        rotated.rotate_left(r);
        let doc = |m: &[String]| format!(r#"{{"version":1,"condition":{{"all":[{}]}}}}"#, m.join(","));
        prop_assert_eq!(parse(&doc(&members)).hash(), parse(&doc(&rotated)).hash());
    }
}
