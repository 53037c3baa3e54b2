//! The roots compiled into the verifier are exactly the pinned AMD certificates listed in
//! roots/PROVENANCE.md (SHA-256 of each DER), each self-consistent.

use attestation_verifier::kds::Product;
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify::sig::cert_signed_by;

fn sha256(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

#[test]
fn pinned_roots_match_the_published_fingerprints() {
    let want = [
        (
            Product::Milan,
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
            "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
            "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
        ),
        (
            Product::Genoa,
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
            "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
            "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
        ),
        (
            Product::Turin,
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
            "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
            "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
        ),
    ];
    let store = TrustStore::amd();
    for (p, ark, ask, asvk) in want {
        let a = store
            .pinned(p)
            .unwrap_or_else(|| panic!("no pinned roots for {p}"));
        assert!(!a.simulated);
        assert_eq!(sha256(&a.ark.der), ark, "{p} ARK");
        assert_eq!(sha256(&a.ask.der), ask, "{p} ASK");
        assert_eq!(
            a.asvk.as_ref().map(|c| sha256(&c.der)).as_deref(),
            Some(asvk),
            "{p} ASVK"
        );
        assert!(cert_signed_by(&a.ark, &a.ark), "{p} ARK self-signature");
        assert!(cert_signed_by(&a.ask, &a.ark), "{p} ASK by ARK");
        assert!(
            a.asvk.as_ref().is_some_and(|v| cert_signed_by(v, &a.ark)),
            "{p} ASVK by ARK"
        );
        assert_eq!(a.ark.subject_cn, format!("ARK-{p}"));
        // Products do not cross-sign.
        for q in Product::ALL.into_iter().filter(|q| *q != p) {
            let other = store.pinned(q).unwrap_or_else(|| panic!("{q}"));
            assert!(!cert_signed_by(&a.ask, &other.ark), "{p} ASK under {q} ARK");
        }
    }
    // Nothing but AMD's roots is trusted by default.
    assert_eq!(
        Product::ALL
            .iter()
            .map(|p| store.anchors(*p).count())
            .sum::<usize>(),
        3
    );
}
