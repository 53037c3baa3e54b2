//! The simulated SEV-SNP platform against the real verifier: accepted only when its root
//! is given explicitly, with every authenticity check passing; refused otherwise; its
//! certificates carry exactly AMD's algorithms, as an independent tool (openssl) confirms.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use attestation_verifier::abi::Report;
use attestation_verifier::kds::Product;
use attestation_verifier::validate::Policy;
use attestation_verifier::validate::policy::bits;
use attestation_verifier::verdict::{Status, Verdict};
use attestation_verifier::verify::cert::{AmdCert, PublicKey, SigAlg};
use attestation_verifier::verify::ext::{Spl, VekExtensions};
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify::{Inputs, Vek};
use attestation_verifier::verify_report;
use keynode::evidence::simulated::{
    DEFAULT_POLICY, SimulatedError, SimulatedOptions, SimulatedPlatform, SimulatedState, WARNING,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every check a verification of a VCEK-signed report makes before policy.
const AUTHENTICITY: [&str; 12] = [
    "report_version",
    "signature_algo",
    "signing_key",
    "product",
    "ark_pinned",
    "ark_self_signed",
    "ask_signed_by_ark",
    "vcek_signed_by_ask",
    "cert_validity",
    "report_signature",
    "reported_tcb_matches_vek",
    "chip_id_matches_hwid",
];

/// One platform for the whole test binary: RSA-4096 generation takes seconds.
fn platform() -> &'static SimulatedPlatform {
    static CELL: OnceLock<SimulatedPlatform> = OnceLock::new();
    CELL.get_or_init(|| {
        let start = Instant::now();
        let p = SimulatedPlatform::generate(SimulatedOptions {
            measurement: [0x4d; 48],
            ..SimulatedOptions::default()
        })
        .unwrap_or_else(|e| panic!("generating the simulated platform: {e}"));
        eprintln!(
            "simulated platform (RSA-4096 x2) generated in {:?}",
            start.elapsed()
        );
        p
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_else(|e| panic!("clock before 1970: {e}"))
}

fn verify(p: &SimulatedPlatform, report: &[u8], trust: &TrustStore) -> Result<Verdict, String> {
    verify_with(p, report, trust, None)
}

fn verify_with(
    p: &SimulatedPlatform,
    report: &[u8],
    trust: &TrustStore,
    ark: Option<Vec<u8>>,
) -> Result<Verdict, String> {
    let report = Report::parse(report).map_err(|e| e.to_string())?;
    let inputs = Inputs {
        vek: Vek::Vcek(p.vcek_der().to_vec()),
        ark,
        intermediate: None,
        crl: None,
        at: now(),
        product: None,
    };
    verify_report(&report, &inputs, &Policy::default(), trust).map_err(|e| e.to_string())
}

fn status(v: &Verdict, check: &str) -> Option<Status> {
    v.checks.iter().find(|c| c.check == check).map(|c| c.status)
}

fn trusting(p: &SimulatedPlatform) -> TrustStore {
    TrustStore::amd().with_simulated(p.anchor())
}

/// Asserts acceptance with every authenticity check passed, and the simulated marking.
fn assert_accepted(v: &Verdict) {
    for name in AUTHENTICITY {
        assert_eq!(
            status(v, name),
            Some(Status::Pass),
            "{name}: {:#?}",
            v.checks
        );
    }
    assert!(v.accepted, "{:#?}", v.checks);
    assert!(v.simulated);
    assert_eq!(v.product, Some(Product::Milan));
    assert_eq!(status(v, "root"), Some(Status::Skipped));
}

#[test]
fn report_verifies_when_the_simulated_root_is_trusted() -> TestResult {
    let p = platform();
    let mut data = [0u8; 64];
    data[..5].copy_from_slice(b"hello");
    let bytes = p.report(data);
    assert_eq!(bytes.len(), 1184);
    let v = verify(p, &bytes, &trusting(p))?;
    assert_accepted(&v);
    assert_eq!(status(&v, "policy_debug"), Some(Status::Pass));

    // The fields are where the real layout puts them.
    let r = Report::parse(&bytes)?;
    assert_eq!(r.version, 3);
    assert_eq!(r.vmpl, 0);
    assert_eq!(r.signature_algo, 1);
    assert_eq!(r.policy, DEFAULT_POLICY);
    assert_eq!(r.report_data, data);
    assert_eq!(r.measurement, [0x4d; 48]);
    assert_eq!(r.chip_id, p.chip_id());
    let tcb = p.tcb().raw();
    for (name, got) in [
        ("current", r.current_tcb),
        ("reported", r.reported_tcb),
        ("committed", r.committed_tcb),
        ("launch", r.launch_tcb),
    ] {
        assert_eq!(got, tcb, "{name}_tcb");
    }
    let cpuid = r.cpuid.ok_or("v3 report without CPUID")?;
    assert_eq!(
        (cpuid.family, cpuid.model, cpuid.stepping),
        (0x19, 0x01, 0x01)
    );
    assert!(r.raw[0x330..].iter().all(|b| *b == 0));

    // The same guest keeps its REPORT_ID; the ECDSA signature is deterministic (RFC 6979).
    let again = Report::parse(&p.report(data))?;
    assert_eq!(again.report_id, r.report_id);
    assert_ne!(r.report_id, [0; 32]);
    Ok(())
}

#[test]
fn amd_roots_alone_never_trust_it() -> TestResult {
    let p = platform();
    let bytes = p.report([7; 64]);
    let v = verify(p, &bytes, &TrustStore::amd())?;
    assert!(!v.accepted);
    assert!(!v.simulated);
    assert_eq!(status(&v, "vcek_signed_by_ask"), Some(Status::Fail));

    let v = verify(p, &bytes, &TrustStore::default())?;
    assert!(!v.accepted, "the default trust store must not trust it");

    // Nor does passing its ARK off as the one to use.
    let v = verify_with(p, &bytes, &TrustStore::amd(), Some(p.ark_der().to_vec()))?;
    assert!(!v.accepted);
    assert_eq!(status(&v, "ark_pinned"), Some(Status::Fail));
    Ok(())
}

#[test]
fn a_flipped_byte_breaks_the_report_signature() -> TestResult {
    let p = platform();
    let good = p.report([1; 64]);
    // REPORT_DATA, MEASUREMENT, CHIP_ID, the last signed byte, and the signature's R.
    for at in [0x50, 0x90, 0x1a0, 0x29f, 0x2a0] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let v = verify(p, &bad, &trusting(p))?;
        assert!(!v.accepted, "byte {at:#x}");
        assert_eq!(
            status(&v, "report_signature"),
            Some(Status::Fail),
            "byte {at:#x}"
        );
        assert_eq!(status(&v, "vcek_signed_by_ask"), Some(Status::Pass));
    }
    // The reserved tail of the signature field is outside the signed range: still refused.
    let mut bad = good.clone();
    bad[0x4a0 - 1] = 1;
    let v = verify(p, &bad, &trusting(p))?;
    assert_eq!(status(&v, "report_signature"), Some(Status::Fail));
    Ok(())
}

#[test]
fn certificates_use_exactly_amds_algorithms() -> TestResult {
    let p = platform();
    let ark = AmdCert::parse("ARK", p.ark_der())?;
    let ask = AmdCert::parse("ASK", p.ask_der())?;
    let vcek = AmdCert::parse("VCEK", p.vcek_der())?;
    for c in [&ark, &ask, &vcek] {
        assert_eq!(c.sig_alg, SigAlg::RsaPssSha384, "{}", c.subject_cn);
        assert!(c.valid_at(now()));
    }
    for c in [&ark, &ask] {
        // RSAPublicKey DER of a 4096-bit modulus: 512 bytes of modulus plus framing.
        match &c.public_key {
            PublicKey::Rsa(k) => assert!((520..=530).contains(&k.len()), "{}", k.len()),
            other => panic!("{} key {other:?}", c.subject_cn),
        }
    }
    assert!(matches!(vcek.public_key, PublicKey::P384(_)));
    assert_eq!(ark.subject_cn, "ARK-Simulated");
    assert_eq!(ark.issuer_cn, "ARK-Simulated");
    assert_eq!(ask.subject_cn, "SEV-Simulated");
    assert_eq!(ask.issuer_cn, "ARK-Simulated");
    assert_eq!(vcek.subject_cn, "SEV-VCEK");
    assert_eq!(vcek.issuer_cn, "SEV-Simulated");
    assert_eq!(vcek.serial, [0]);

    // AMD's VCEK extensions, with AMD's INTEGER encoding (ucode 219 has a leading zero).
    let ext = VekExtensions::read(&vcek);
    let t = p.tcb();
    assert_eq!(ext.struct_version, Some(0));
    assert_eq!(ext.product_name.as_deref(), Some("Milan-B0"));
    assert_eq!(
        [ext.bl, ext.tee, ext.snp, ext.ucode],
        [t.bl, t.tee, t.snp, t.ucode].map(Spl::Value)
    );
    assert_eq!(ext.fmc, Spl::Absent);
    assert_eq!(ext.hwid_raw.as_deref(), Some(&p.chip_id()[..]));
    assert!(t.ucode >= 0x80);
    assert_eq!(
        vcek.extension("1.3.6.1.4.1.3704.1.3.8"),
        Some(&[0x02, 0x02, 0x00, t.ucode][..])
    );
    Ok(())
}

#[test]
fn state_round_trip_keeps_the_platform() -> TestResult {
    let p = platform();
    let json = serde_json::to_string(&p.state()?)?;
    assert!(json.contains(WARNING), "the saved file must say what it is");
    let state: SimulatedState = serde_json::from_str(&json)?;
    let q = SimulatedPlatform::from_state(&state)?;
    assert_eq!(q.ark_der(), p.ark_der());
    assert_eq!(q.ask_der(), p.ask_der());
    assert_eq!(q.vcek_der(), p.vcek_der());
    assert_eq!(q.ark_pem()?, p.ark_pem()?);
    assert_eq!(q.chip_id(), p.chip_id());
    assert_eq!(q.tcb(), p.tcb());
    assert_eq!(q.measurement(), p.measurement());
    assert_eq!(q.policy(), p.policy());
    // Its reports verify under the original's anchor and its own.
    assert_accepted(&verify(&q, &q.report([2; 64]), &trusting(p))?);
    assert_accepted(&verify(&q, &q.report([2; 64]), &trusting(&q))?);
    // Debug never shows key material.
    let saved: serde_json::Value = serde_json::from_str(&json)?;
    let key = saved["ark_key"].as_str().ok_or("no ark_key")?;
    assert!(!format!("{state:?}").contains(&key[..64]));
    Ok(())
}

#[test]
fn inconsistent_state_is_refused() -> TestResult {
    let p = platform();
    let other = p.new_chip()?;
    // A VCEK key that is not the VCEK certificate's key.
    let mut mixed: serde_json::Value = serde_json::to_value(p.state()?)?;
    mixed["vcek_key"] = serde_json::to_value(other.state()?)?["vcek_key"].clone();
    let state: SimulatedState = serde_json::from_value(mixed)?;
    match SimulatedPlatform::from_state(&state) {
        Err(SimulatedError::Invalid(why)) => assert!(why.contains("VCEK key"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A chip ID that is not the VCEK's hwID.
    let mut mixed: serde_json::Value = serde_json::to_value(p.state()?)?;
    mixed["chip_id"] = serde_json::to_value(other.state()?)?["chip_id"].clone();
    let state: SimulatedState = serde_json::from_value(mixed)?;
    assert!(SimulatedPlatform::from_state(&state).is_err());
    Ok(())
}

#[test]
fn another_chip_shares_the_roots() -> TestResult {
    let p = platform();
    let q = p.new_chip()?;
    assert_eq!(q.ark_der(), p.ark_der());
    assert_eq!(q.ask_der(), p.ask_der());
    assert_ne!(q.vcek_der(), p.vcek_der());
    assert_ne!(q.chip_id(), p.chip_id());
    assert_accepted(&verify(&q, &q.report([3; 64]), &trusting(p))?);
    // A report of one chip with the other chip's VCEK fails.
    let v = verify(&q, &p.report([3; 64]), &trusting(p))?;
    assert_eq!(status(&v, "report_signature"), Some(Status::Fail));
    assert_eq!(status(&v, "chip_id_matches_hwid"), Some(Status::Fail));
    Ok(())
}

#[test]
fn a_debug_guest_is_refused_by_the_default_policy() -> TestResult {
    let mut p = platform().clone();
    p.set_policy(DEFAULT_POLICY | bits::DEBUG);
    let v = verify(&p, &p.report([4; 64]), &trusting(&p))?;
    assert!(!v.accepted);
    assert_eq!(status(&v, "policy_debug"), Some(Status::Fail));
    for name in AUTHENTICITY {
        assert_eq!(status(&v, name), Some(Status::Pass), "{name}");
    }
    Ok(())
}

#[test]
fn unsupported_key_sizes_are_refused() {
    let r = SimulatedPlatform::generate(SimulatedOptions {
        rsa_bits: 1024,
        ..SimulatedOptions::default()
    });
    assert!(matches!(r, Err(SimulatedError::KeySize(1024))));
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "keynode-simulated-{tag}-{}-{}",
            std::process::id(),
            now()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.0.join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs openssl and returns its standard output; a missing openssl fails the test, never
/// skips it.
fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the openssl CLI (apt-get install openssl): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// DER of a non-negative INTEGER from big-endian bytes.
fn der_int(be: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = trimmed;
    if v.first().is_none_or(|b| *b >= 0x80) {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

#[test]
fn openssl_reads_the_chain_and_checks_it_and_the_report() -> TestResult {
    let p = platform();
    let dir = Scratch::new("openssl")?;
    dir.write("ark.der", p.ark_der())?;
    dir.write("ark.pem", p.ark_pem()?.as_bytes())?;
    dir.write("ask.pem", p.ask_pem()?.as_bytes())?;
    dir.write("vcek.der", p.vcek_der())?;

    let ark = openssl(
        &[
            "x509", "-inform", "der", "-in", "ark.der", "-noout", "-text",
        ],
        &dir.0,
    );
    for needle in [
        "Signature Algorithm: rsassaPss",
        "Hash Algorithm: sha384",
        "Mask Algorithm: mgf1 with sha384",
        "Salt Length: 0x30",
        "Public-Key: (4096 bit)",
        "CN = ARK-Simulated",
        "SIMULATED",
    ] {
        assert!(ark.contains(needle), "{needle:?} not in:\n{ark}");
    }
    let vcek = openssl(
        &[
            "x509", "-inform", "der", "-in", "vcek.der", "-noout", "-text",
        ],
        &dir.0,
    );
    for needle in [
        "Serial Number: 0",
        "secp384r1",
        "1.3.6.1.4.1.3704.1.4",
        "Salt Length: 0x30",
    ] {
        assert!(vcek.contains(needle), "{needle:?} not in:\n{vcek}");
    }

    // An independent chain check: ARK -> ASK -> VCEK, RSA-PSS signatures and validity.
    openssl(
        &[
            "x509", "-inform", "der", "-in", "vcek.der", "-out", "vcek.pem",
        ],
        &dir.0,
    );
    let verified = openssl(
        &[
            "verify",
            "-CAfile",
            "ark.pem",
            "-untrusted",
            "ask.pem",
            "vcek.pem",
        ],
        &dir.0,
    );
    assert!(verified.contains("vcek.pem: OK"), "{verified}");

    // An independent report signature check: ECDSA P-384/SHA-384 over bytes 0..0x2a0.
    let report = p.report([5; 64]);
    let r = Report::parse(&report)?;
    let body = [der_int(&r.signature_r), der_int(&r.signature_s)].concat();
    let sig = [&[0x30, body.len() as u8][..], &body].concat();
    dir.write("signed.bin", &report[..0x2a0])?;
    dir.write("sig.der", &sig)?;
    let public = openssl(&["x509", "-in", "vcek.pem", "-noout", "-pubkey"], &dir.0);
    dir.write("vcek-pub.pem", public.as_bytes())?;
    let out = openssl(
        &[
            "dgst",
            "-sha384",
            "-verify",
            "vcek-pub.pem",
            "-signature",
            "sig.der",
            "signed.bin",
        ],
        &dir.0,
    );
    assert!(out.contains("Verified OK"), "{out}");
    Ok(())
}
