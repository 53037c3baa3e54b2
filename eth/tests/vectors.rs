//! Published vectors for the Ethereum primitives: EIP-55's own test cases, and the
//! EIP-191 signatures that web3.js and eth-account document. (Comparisons with eth-account
//! over many keys and texts run in keynet-protocol's registry tests.)

use k256::ecdsa::SigningKey;
use keynet_eth::{Address, address_of, eip191_hash, eip191_recover, eip191_sign};

fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn addr(text: &str) -> Address {
    ok(text.parse())
}

/// Hex to bytes, for test data.
fn unhex<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(text.trim_start_matches("0x"), &mut out)
        .unwrap_or_else(|e| panic!("bad test hex {text}: {e}"));
    out
}

/// EIP-55's own test cases (all caps, all lower, mixed).
const EIP55_VECTORS: [&str; 8] = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
];

#[test]
fn eip55_vectors() {
    for vector in EIP55_VECTORS {
        let a = addr(vector);
        assert_eq!(a.to_string(), vector);
        assert_eq!(
            addr(&vector.to_lowercase()),
            a,
            "lowercase is accepted unchecked"
        );
        // Flipping the case of one letter breaks the checksum.
        if let Some(i) = vector[2..].find(|c: char| c.is_ascii_alphabetic()) {
            let mut chars: Vec<char> = vector.chars().collect();
            let c = chars[i + 2];
            chars[i + 2] = if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            let mutated: String = chars.into_iter().collect();
            if mutated != vector.to_lowercase() {
                let err = mutated.parse::<Address>().err();
                assert!(
                    err.as_ref()
                        .is_some_and(|e| e.reason().contains("checksum")),
                    "{mutated}: {err:?}"
                );
            }
        }
    }
}

/// web3.js's documented `accounts.sign('Some data', key)` example, which rust-web3,
/// web3-php and go-ethereum-based tests reproduce; eth-account's documented "I♥SF"
/// example; and web3.js's `hashMessage("Hello World")`.
#[test]
fn eip191_vectors() {
    struct Vector {
        key: &'static str,
        text: &'static str,
        hash: &'static str,
        signature: &'static str,
        address: &'static str,
    }
    let vectors = [
        Vector {
            key: "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
            text: "Some data",
            hash: "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655",
            signature: "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd\
                        6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c",
            address: "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
        },
        Vector {
            key: "b25c7db31feed9122727bf0939dc769a96564b2de4c4726d035b36ecf1e5b364",
            text: "I\u{2665}SF",
            hash: "1476abb745d423bf09273f1afd887d951181d25adc66c4834a70491911b7f750",
            signature: "e6ca9bba58c88611fad66a6ce8f996908195593807c4b38bd528d2cff09d4eb3\
                        3e5bfbbf4d3e39b1a2fd816a7680c19ebebaf3a141b239934ad43cb33fcec8ce1c",
            address: "0x5ce9454909639D2D17A3F753ce7d93fa0b9aB12E",
        },
    ];
    for v in vectors {
        let k = ok(SigningKey::from_bytes(&unhex::<32>(v.key).into()));
        assert_eq!(
            hex::encode(eip191_hash(v.text.as_bytes())),
            v.hash,
            "{}",
            v.text
        );
        assert_eq!(address_of(k.verifying_key()).to_string(), v.address);
        let signature = unhex::<65>(v.signature);
        assert_eq!(
            ok(eip191_sign(v.text.as_bytes(), &k)),
            signature,
            "{}",
            v.text
        );
        assert_eq!(
            ok(eip191_recover(v.text.as_bytes(), &signature)),
            addr(v.address)
        );
    }
    assert_eq!(
        hex::encode(eip191_hash(b"Hello World")),
        "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
    );
}
