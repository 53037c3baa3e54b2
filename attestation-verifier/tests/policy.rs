//! Policy over authentic reports: fail-closed defaults, each option catching what it is for,
//! and the measurement manifest.

mod common;

use attestation_verifier::abi::Report;
use attestation_verifier::validate::{Manifest, MinTcb, Policy};
use attestation_verifier::verdict::{Status, Verdict};
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify_report;

fn run(case: &str, policy: &Policy) -> Verdict {
    let c = common::cases()
        .into_iter()
        .find(|c| c.name == case)
        .unwrap_or_else(|| panic!("{case}"));
    let r = Report::parse(&c.report().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    verify_report(
        &r,
        &c.inputs().unwrap_or_else(|| panic!("inputs")),
        policy,
        &TrustStore::amd(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn status(v: &Verdict, name: &str) -> Status {
    v.checks
        .iter()
        .find(|c| c.check == name)
        .map(|c| c.status)
        .unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn debug_guests_are_rejected_by_default() {
    // gsg-milan-v2 is authentic but its policy 0xb0000 allows debugging.
    let v = run("gsg-milan-v2", &Policy::default());
    assert!(!v.accepted);
    assert_eq!(status(&v, "policy_debug"), Status::Fail);
    assert_eq!(status(&v, "report_signature"), Status::Pass);
    let v = run(
        "gsg-milan-v2",
        &Policy {
            allow_debug: true,
            ..Policy::default()
        },
    );
    assert!(v.accepted);
}

#[test]
fn nothing_is_silently_left_out() {
    let v = run("virtee-milan-v2", &Policy::default());
    assert!(v.accepted);
    for name in [
        "crl",
        "vmpl",
        "min_tcb",
        "measurement",
        "report_data",
        "chip_id",
        "policy_smt",
    ] {
        assert_eq!(status(&v, name), Status::Skipped, "{name}");
        assert!(
            !v.checks
                .iter()
                .find(|c| c.check == name)
                .map(|c| c.detail.is_empty())
                .unwrap_or(true)
        );
    }
}

#[test]
fn each_option_rejects_what_it_is_for() {
    let base = Policy::default();
    let case = "coco-trustee-milan-v2"; // policy 0x3001f, vmpl 0, svn 4, TCB bl=3 tee=0 snp=8 ucode=115
    let reject = |p: Policy, check: &str| {
        let v = run(case, &p);
        assert!(!v.accepted, "{check} should reject");
        assert_eq!(status(&v, check), Status::Fail, "{check}");
    };
    let accept = |p: Policy, check: &str| {
        let v = run(case, &p);
        assert!(v.accepted, "{check} should accept: {:#?}", v.checks);
        assert_eq!(status(&v, check), Status::Pass, "{check}");
    };
    reject(
        Policy {
            require_no_smt: true,
            ..base.clone()
        },
        "policy_smt",
    );
    reject(
        Policy {
            require_single_socket: true,
            ..base.clone()
        },
        "policy_single_socket",
    );
    accept(
        Policy {
            min_abi: Some((0, 31)),
            ..base.clone()
        },
        "policy_min_abi",
    );
    reject(
        Policy {
            min_abi: Some((0, 32)),
            ..base.clone()
        },
        "policy_min_abi",
    );
    accept(
        Policy {
            vmpl: Some(0),
            ..base.clone()
        },
        "vmpl",
    );
    reject(
        Policy {
            vmpl: Some(1),
            ..base.clone()
        },
        "vmpl",
    );
    let tcb = |s: &str| s.parse::<MinTcb>().unwrap_or_else(|e| panic!("{e}"));
    accept(
        Policy {
            min_tcb: Some(tcb("bl=3,tee=0,snp=8,ucode=115")),
            ..base.clone()
        },
        "min_tcb",
    );
    reject(
        Policy {
            min_tcb: Some(tcb("snp=9")),
            ..base.clone()
        },
        "min_tcb",
    );
    reject(
        Policy {
            min_tcb: Some(tcb("fmc=1")),
            ..base.clone()
        },
        "min_tcb",
    ); // Milan has no FMC
    reject(
        Policy {
            min_launch_tcb: Some(tcb("ucode=200")),
            ..base.clone()
        },
        "min_launch_tcb",
    );
    accept(
        Policy {
            min_guest_svn: Some(4),
            ..base.clone()
        },
        "min_guest_svn",
    );
    reject(
        Policy {
            min_guest_svn: Some(5),
            ..base.clone()
        },
        "min_guest_svn",
    );
    let mut fam = [0u8; 16];
    fam[0] = 1;
    accept(
        Policy {
            family_id: vec![fam],
            ..base.clone()
        },
        "family_id",
    );
    reject(
        Policy {
            family_id: vec![[9u8; 16]],
            ..base.clone()
        },
        "family_id",
    );
    reject(
        Policy {
            image_id: vec![[9u8; 16]],
            ..base.clone()
        },
        "image_id",
    );
    reject(
        Policy {
            host_data: vec![[9u8; 32]],
            ..base.clone()
        },
        "host_data",
    );
    reject(
        Policy {
            report_data: vec![[9u8; 64]],
            ..base.clone()
        },
        "report_data",
    );
    reject(
        Policy {
            id_key_digest: vec![[9u8; 48]],
            ..base.clone()
        },
        "id_key_digest",
    );
    reject(
        Policy {
            author_key_digest: vec![[9u8; 48]],
            ..base.clone()
        },
        "author_key_digest",
    );
    reject(
        Policy {
            chip_id: vec![[9u8; 64]],
            ..base.clone()
        },
        "chip_id",
    );
    reject(
        Policy {
            measurements: vec![[9u8; 48]],
            ..base.clone()
        },
        "measurement",
    );
    reject(
        Policy {
            require_crl: true,
            ..base.clone()
        },
        "crl_required",
    );
}

#[test]
fn manifest_allows_published_digests_only() {
    let m = |digest: &str| {
        format!(
            r#"{{"schema":"keynet.measurements/v1","image":{{"name":"t","version":"1"}},"measurements":[{{"digest":"{digest}","shape":{{"vcpus":4,"vcpu_type":"EPYC-Milan"}}}}]}}"#
        )
    };
    let good = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c";
    let manifest = Manifest::parse(m(good).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let v = run(
        "coco-trustee-milan-v2",
        &Policy {
            manifest: Some(manifest),
            ..Policy::default()
        },
    );
    assert!(v.accepted);
    assert!(
        v.checks
            .iter()
            .any(|c| c.check == "measurement" && c.detail.contains("EPYC-Milan"))
    );
    let other = Manifest::parse(m(&"00".repeat(48)).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let v = run(
        "coco-trustee-milan-v2",
        &Policy {
            manifest: Some(other),
            ..Policy::default()
        },
    );
    assert!(!v.accepted);
    assert_eq!(status(&v, "measurement"), Status::Fail);
    // Malformed manifests are errors, never an empty allowlist.
    assert!(Manifest::parse(br#"{"schema":"keynet.measurements/v2","measurements":[]}"#).is_err());
    assert!(Manifest::parse(br#"{"schema":"keynet.measurements/v1","measurements":[]}"#).is_err());
    assert!(Manifest::parse(m("abcd").as_bytes()).is_err());
}

#[test]
fn product_sources_must_agree() {
    use attestation_verifier::kds::Product;
    let c = common::cases()
        .into_iter()
        .find(|c| c.name == "virtee-milan-v2")
        .unwrap_or_else(|| panic!("case"));
    let r = Report::parse(&c.report().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let mut i = c.inputs().unwrap_or_else(|| panic!("inputs"));
    i.product = Some(Product::Genoa);
    let v = verify_report(&r, &i, &Policy::default(), &TrustStore::amd())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!v.accepted);
    assert_eq!(status(&v, "product"), Status::Fail);
}
