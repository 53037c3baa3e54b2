//! A self-made ARK/ASK/VCEK chain (ECDSA P-384, AMD's extension layout) and a report signed
//! by its VCEK, for what real AMD data cannot show: a CRL that revokes the ASK in use, and
//! a self-made ARK passed off as AMD's. Such roots are only ever trusted through
//! `TrustStore::with_simulated`.

use attestation_verifier::kds::Product;
use attestation_verifier::verify::cert::AmdCert;
use attestation_verifier::verify::roots::Anchor;
use p384::ecdsa::signature::Signer;
use p384::pkcs8::EncodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    IsCa, Issuer, KeyIdMethod, KeyPair, PKCS_ECDSA_P384_SHA384, RevokedCertParams, SerialNumber,
};

pub const ASK_SERIAL: u8 = 0x71;

#[derive(Clone)]
pub struct Synthetic {
    pub ark_der: Vec<u8>,
    pub ask_der: Vec<u8>,
    pub vcek_der: Vec<u8>,
    pub report: Vec<u8>,
    /// ARK-signed CRL revoking the ASK.
    pub crl_revoking_ask: Vec<u8>,
    /// ARK-signed CRL revoking nothing.
    pub crl_clean: Vec<u8>,
    /// The VCEK's key, to sign further reports.
    pub vcek_key: p384::ecdsa::SigningKey,
    /// The chip ID in the VCEK.
    pub chip_id: [u8; 64],
    /// The measurement of [`Synthetic::report`].
    pub measurement: [u8; 48],
}

fn int_ext(arc: u64, v: u8) -> CustomExtension {
    let content = if v >= 0x80 {
        vec![0x02, 0x02, 0x00, v]
    } else {
        vec![0x02, 0x01, v]
    };
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 3704, 1, 3, arc], content)
}

fn ca(cn: &str, serial: u8) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.serial_number = Some(SerialNumber::from(vec![serial]));
    p.not_before = time::macros::datetime!(2020-01-01 0:00 UTC);
    p.not_after = time::macros::datetime!(2045-01-01 0:00 UTC);
    p
}

fn crl(revoked: Vec<u8>, issuer: &Issuer<'_, &KeyPair>) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update: time::macros::datetime!(2024-01-01 0:00 UTC),
        next_update: time::macros::datetime!(2030-01-01 0:00 UTC),
        crl_number: SerialNumber::from(vec![1]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .into_iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(vec![s]),
                revocation_time: time::macros::datetime!(2024-01-01 0:00 UTC),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(issuer)
        .unwrap_or_else(|e| panic!("{e}"))
        .der()
        .to_vec()
}

/// A Milan-shaped chain and a v3 report with CPUID 0x19/0x01, TCB bl=3 tee=0 snp=8
/// ucode=115 and a random chip ID.
pub fn build() -> Synthetic {
    build_with(false)
}

/// As [`build`]; with `wrap_hwid` the VCEK's hwID is a DER OCTET STRING instead of raw.
pub fn build_with(wrap_hwid: bool) -> Synthetic {
    let ark_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap_or_else(|e| panic!("{e}"));
    let ark_params = ca("ARK-Test", 0x70);
    let ark = ark_params
        .self_signed(&ark_key)
        .unwrap_or_else(|e| panic!("{e}"));
    let ark_issuer = Issuer::from_params(&ark_params, &ark_key);

    let ask_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap_or_else(|e| panic!("{e}"));
    let ask_params = ca("SEV-Test", ASK_SERIAL);
    let ask = ask_params
        .signed_by(&ask_key, &ark_issuer)
        .unwrap_or_else(|e| panic!("{e}"));
    let ask_issuer = Issuer::from_params(&ask_params, &ask_key);

    let vcek_sk = p384::ecdsa::SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
    let pkcs8 = vcek_sk.to_pkcs8_der().unwrap_or_else(|e| panic!("{e}"));
    let vcek_kp = KeyPair::try_from(pkcs8.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut chip_id = [0u8; 64];
    chip_id.copy_from_slice(&ring_random(64));
    let mut vp = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    vp.distinguished_name.push(DnType::CommonName, "SEV-VCEK");
    vp.serial_number = Some(SerialNumber::from(vec![0]));
    vp.not_before = time::macros::datetime!(2023-01-01 0:00 UTC);
    vp.not_after = time::macros::datetime!(2030-01-01 0:00 UTC);
    vp.custom_extensions = vec![
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 3704, 1, 1], vec![0x02, 0x01, 0x00]),
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 3704, 1, 2],
            [&[0x16u8, 8][..], b"Milan-B0"].concat(),
        ),
        int_ext(1, 3),
        int_ext(2, 0),
        int_ext(3, 8),
        int_ext(8, 115),
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 3704, 1, 4],
            if wrap_hwid {
                [&[0x04u8, 64][..], &chip_id].concat()
            } else {
                chip_id.to_vec()
            },
        ),
    ];
    let vcek = vp
        .signed_by(&vcek_kp, &ask_issuer)
        .unwrap_or_else(|e| panic!("{e}"));

    let mut measurement = [0u8; 48];
    measurement.copy_from_slice(&ring_random(48));
    let r = sign_report(&vcek_sk, &chip_id, &measurement, [0u8; 64], 0x30000);

    Synthetic {
        ark_der: ark.der().to_vec(),
        ask_der: ask.der().to_vec(),
        vcek_der: vcek.der().to_vec(),
        report: r,
        crl_revoking_ask: crl(vec![ASK_SERIAL], &ark_issuer),
        crl_clean: crl(vec![], &ark_issuer),
        vcek_key: vcek_sk,
        chip_id,
        measurement,
    }
}

/// A v3 Milan report with these fields, signed by `key`.
pub fn sign_report(
    key: &p384::ecdsa::SigningKey,
    chip_id: &[u8; 64],
    measurement: &[u8; 48],
    report_data: [u8; 64],
    policy: u64,
) -> Vec<u8> {
    let mut r = vec![0u8; 0x4a0];
    r[0..4].copy_from_slice(&3u32.to_le_bytes());
    r[8..16].copy_from_slice(&policy.to_le_bytes());
    r[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
    r[0x50..0x90].copy_from_slice(&report_data);
    let tcb: u64 = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
    for at in [0x38, 0x180, 0x1e0, 0x1f0] {
        r[at..at + 8].copy_from_slice(&tcb.to_le_bytes());
    }
    r[0x188] = 0x19;
    r[0x189] = 0x01;
    r[0x18a] = 0x01;
    r[0x1a0..0x1e0].copy_from_slice(chip_id);
    r[0x90..0xc0].copy_from_slice(measurement);
    let sig: p384::ecdsa::Signature = key.sign(&r[..0x2a0]);
    let (rr, ss) = sig.split_bytes();
    for (i, b) in rr.iter().rev().enumerate() {
        r[0x2a0 + i] = *b;
    }
    for (i, b) in ss.iter().rev().enumerate() {
        r[0x2e8 + i] = *b;
    }
    r
}

fn ring_random(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut v = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut v)
        .unwrap_or_else(|_| panic!("no randomness"));
    v
}

impl Synthetic {
    /// The anchor to add with `TrustStore::with_simulated`.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            product: Product::Milan,
            ark: AmdCert::parse("ARK", &self.ark_der).unwrap_or_else(|e| panic!("{e}")),
            ask: AmdCert::parse("ASK", &self.ask_der).unwrap_or_else(|e| panic!("{e}")),
            asvk: None,
            simulated: true,
        }
    }
}
