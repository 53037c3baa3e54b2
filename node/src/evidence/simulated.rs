//! A simulated SEV-SNP platform, for tests and local development only.
//!
//! It has its own ARK, ASK and VCEK made with AMD's algorithms and formats (RSA-4096
//! RSASSA-PSS SHA-384/MGF1-SHA-384/salt 48 for ARK and ASK, ECDSA P-384 for the VCEK,
//! AMD's VCEK extensions) and produces attestation reports in the real byte layout, signed
//! by its VCEK. Nothing about it is secret from the host, so its reports prove nothing:
//! a verifier trusts its root only when handed it explicitly
//! (`TrustStore::amd().with_simulated(platform.anchor())`), and every verdict then says
//! `simulated`.
//!
//! RSA-4096 key generation takes seconds, so a platform can be saved
//! ([`SimulatedPlatform::state`]) and reloaded ([`SimulatedPlatform::from_state`]): a
//! development network generates one and every node loads it, each taking its own chip
//! with [`SimulatedPlatform::new_chip`].
//!
//! The `rsa` crate's timing side channel (RUSTSEC-2023-0071) does not matter here: these
//! keys protect nothing.

use std::str::FromStr;

use attestation_verifier::abi::report::{REPORT_LEN, SIGNED_LEN};
use attestation_verifier::kds::Product;
use attestation_verifier::verify::VerifyError;
use attestation_verifier::verify::cert::{AmdCert, PublicKey};
use attestation_verifier::verify::ext::{Spl, VekExtensions};
use attestation_verifier::verify::roots::Anchor;
use attestation_verifier::verify::sig;
use p384::ecdsa::signature::{Keypair, RandomizedSigner, SignatureEncoding, Signer};
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand_core::{OsRng, RngCore};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{RsaPrivateKey, pss};
use serde::{Deserialize, Serialize};
use sha2::Sha384;
use x509_cert::Certificate;
use x509_cert::der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use x509_cert::der::referenced::OwnedToRef;
use x509_cert::der::{DateTime, Decode, Encode, EncodePem, pem::LineEnding};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::spki::{DynSignatureAlgorithmIdentifier, ObjectIdentifier};
use x509_cert::time::{Time, Validity};
use x509_cert::{TbsCertificate, Version};
use zeroize::{Zeroize, Zeroizing};

/// Said wherever a simulated platform is in use: it is not AMD hardware.
pub use super::SIMULATED_WARNING as WARNING;

/// Guest policy of a typical production guest: ABI 0.0, SMT allowed, bit 17 (reserved,
/// must be one) set; no debugging, no migration agent.
pub const DEFAULT_POLICY: u64 = 0x30000;

/// RSA modulus size of ARK and ASK, as AMD's.
pub const AMD_RSA_BITS: usize = 4096;

/// productName in the VCEK: the simulated part is a Milan B0.
const PRODUCT_NAME: &str = "Milan-B0";
/// CPUID family, model, stepping of a Milan B0 (report v3 fields).
const CPUID: [u8; 3] = [0x19, 0x01, 0x01];
/// Report format version produced (Milan firmware 1.55 produces v3).
const REPORT_VERSION: u32 = 3;
/// PLATFORM_INFO as on a current Milan host (SMT, ECC, alias check complete).
const PLATFORM_INFO: u64 = 0x25;
/// Firmware version reported as current and committed: 1.55.29 (build, minor, major).
const FW_VERSION: [u8; 3] = [29, 55, 1];
/// Format number of [`SimulatedState`].
const STATE_FORMAT: u32 = 1;
/// Domain separation of [`SimulatedPlatform::sealing_key_bytes`]: the VCEK key signs reports
/// too, so everything keyed by it for sealing starts with this label.
const SEALING_LABEL: &[u8] = b"keynet/simulated-sealing-key/v1";

/// Errors of the simulated platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatedError {
    /// The RSA key size is not offered (AMD's is 4096; 2048 and 3072 only save time).
    #[error("RSA key size {0} not supported (2048, 3072 or 4096)")]
    KeySize(usize),
    /// RSA key generation or decoding failed.
    #[error("RSA: {0}")]
    Rsa(#[from] rsa::Error),
    /// A key could not be encoded or decoded as PKCS#8/PKCS#1.
    #[error("key encoding: {0}")]
    Pkcs8(String),
    /// A certificate could not be encoded.
    #[error("certificate encoding: {0}")]
    Der(#[from] x509_cert::der::Error),
    /// A public key or algorithm identifier could not be encoded.
    #[error("SPKI: {0}")]
    Spki(#[from] x509_cert::spki::Error),
    /// Signing failed.
    #[error("signing: {0}")]
    Signature(#[from] p384::ecdsa::Error),
    /// The operating system gave no randomness.
    #[error("randomness: {0}")]
    Random(#[from] rand_core::Error),
    /// A certificate made or loaded is refused by the verifier's parser.
    #[error(transparent)]
    Verifier(#[from] VerifyError),
    /// The thread generating the second RSA key panicked.
    #[error("RSA key generation thread panicked")]
    KeyGenPanicked,
    /// A saved state is malformed, or keys, certificates, chip ID and TCB do not belong
    /// together.
    #[error("simulated platform: {0}")]
    Invalid(String),
}

type Result<T, E = SimulatedError> = std::result::Result<T, E>;

/// A Milan TCB_VERSION: the security patch levels the VCEK is issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilanTcb {
    /// Boot loader SPL (byte 0).
    pub bl: u8,
    /// PSP OS (TEE) SPL (byte 1).
    pub tee: u8,
    /// SNP firmware SPL (byte 6).
    pub snp: u8,
    /// Microcode SPL (byte 7).
    pub ucode: u8,
}

impl Default for MilanTcb {
    /// The TCB of current Milan hosts (2025); ucode >= 128 also exercises AMD's INTEGER
    /// encoding with a leading zero byte.
    fn default() -> Self {
        MilanTcb {
            bl: 4,
            tee: 0,
            snp: 24,
            ucode: 219,
        }
    }
}

impl MilanTcb {
    /// The packed u64 (Milan/Genoa layout).
    pub fn raw(self) -> u64 {
        u64::from_le_bytes([self.bl, self.tee, 0, 0, 0, 0, self.snp, self.ucode])
    }
}

/// How to make a new platform.
#[derive(Clone, Debug)]
pub struct SimulatedOptions {
    /// ARK and ASK modulus size: 4096 as AMD's; 2048 or 3072 only to save time.
    pub rsa_bits: usize,
    /// The TCB the VCEK is issued for and every report states.
    pub tcb: MilanTcb,
    /// The launch measurement reports carry.
    pub measurement: [u8; 48],
    /// The guest policy reports carry.
    pub policy: u64,
}

impl Default for SimulatedOptions {
    fn default() -> Self {
        SimulatedOptions {
            rsa_bits: AMD_RSA_BITS,
            tcb: MilanTcb::default(),
            measurement: [0; 48],
            policy: DEFAULT_POLICY,
        }
    }
}

/// A simulated SEV-SNP platform (Milan): roots, one chip with its VCEK, and one guest.
#[derive(Clone)]
pub struct SimulatedPlatform {
    ark_key: pss::SigningKey<Sha384>,
    ask_key: pss::SigningKey<Sha384>,
    vcek_key: p384::ecdsa::SigningKey,
    ark: AmdCert,
    ask: AmdCert,
    vcek: AmdCert,
    chip_id: [u8; 64],
    tcb: MilanTcb,
    measurement: [u8; 48],
    policy: u64,
    /// The guest's REPORT_ID: random per launch, i.e. per platform value made or loaded.
    report_id: [u8; 32],
}

impl std::fmt::Debug for SimulatedPlatform {
    /// Everything public; no key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedPlatform")
            .field("warning", &WARNING)
            .field("ark", &self.ark.subject_cn)
            .field("chip_id", &hex::encode(self.chip_id))
            .field("tcb", &self.tcb)
            .field("measurement", &hex::encode(self.measurement))
            .field("policy", &format_args!("{:#x}", self.policy))
            .finish_non_exhaustive()
    }
}

impl SimulatedPlatform {
    /// Makes a new platform: ARK, ASK (generated concurrently: each RSA-4096 key takes
    /// seconds), a chip and its VCEK.
    pub fn generate(opts: SimulatedOptions) -> Result<Self> {
        if ![2048, 3072, 4096].contains(&opts.rsa_bits) {
            return Err(SimulatedError::KeySize(opts.rsa_bits));
        }
        let bits = opts.rsa_bits;
        let (ark_key, ask_key) = std::thread::scope(|s| {
            let other = s.spawn(move || RsaPrivateKey::new(&mut OsRng, bits));
            let ark = RsaPrivateKey::new(&mut OsRng, bits);
            let ask = other.join().map_err(|_| SimulatedError::KeyGenPanicked);
            (ark, ask)
        });
        let ark_key = pss::SigningKey::<Sha384>::new(ark_key?);
        let ask_key = pss::SigningKey::<Sha384>::new(ask_key??);

        let ark_name = Name::from_str(&name("ARK-Simulated"))?;
        let ask_name = Name::from_str(&name("SEV-Simulated"))?;
        let ark_spki = SubjectPublicKeyInfoOwned::from_key(ark_key.verifying_key())?;
        let ask_spki = SubjectPublicKeyInfoOwned::from_key(ask_key.verifying_key())?;

        // Extensions as on AMD's ARK-Milan and SEV-Milan, less the CRL distribution point.
        let ark_ext = vec![
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).to_extension(&ark_name, &[])?,
            SubjectKeyIdentifier::try_from(ark_spki.owned_to_ref())?
                .to_extension(&ark_name, &[])?,
            BasicConstraints {
                ca: true,
                path_len_constraint: None,
            }
            .to_extension(&ark_name, &[])?,
        ];
        let ark_der = issue(
            &ark_key,
            random_serial()?,
            ark_name.clone(),
            ark_name.clone(),
            ark_spki.clone(),
            ark_ext,
        )?;
        let ask_ext = vec![
            SubjectKeyIdentifier::try_from(ask_spki.owned_to_ref())?
                .to_extension(&ask_name, &[])?,
            AuthorityKeyIdentifier::try_from(ark_spki.owned_to_ref())?
                .to_extension(&ask_name, &[])?,
            BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            }
            .to_extension(&ask_name, &[])?,
            KeyUsage(KeyUsages::KeyCertSign.into()).to_extension(&ask_name, &[])?,
        ];
        let ask_der = issue(
            &ark_key,
            random_serial()?,
            ark_name,
            ask_name,
            ask_spki,
            ask_ext,
        )?;

        let ark = AmdCert::parse("ARK", &ark_der)?;
        let ask = AmdCert::parse("ASK", &ask_der)?;
        let chip = Chip::new(&ask_key, &ask, opts.tcb)?;
        let platform = SimulatedPlatform {
            ark_key,
            ask_key,
            vcek_key: chip.key,
            ark,
            ask,
            vcek: chip.vcek,
            chip_id: chip.id,
            tcb: opts.tcb,
            measurement: opts.measurement,
            policy: opts.policy,
            report_id: random_report_id()?,
        };
        platform.check()?;
        Ok(platform)
    }

    /// Another chip of the same platform: same ARK and ASK (so one trust anchor covers
    /// both), new random chip ID and VCEK, same TCB, measurement and policy.
    pub fn new_chip(&self) -> Result<Self> {
        let chip = Chip::new(&self.ask_key, &self.ask, self.tcb)?;
        let platform = SimulatedPlatform {
            vcek_key: chip.key,
            vcek: chip.vcek,
            chip_id: chip.id,
            report_id: random_report_id()?,
            ..self.clone()
        };
        platform.check()?;
        Ok(platform)
    }

    /// Reloads a saved platform after checking that its keys, certificates, chip ID and
    /// TCB belong together. The guest gets a new REPORT_ID (a new launch).
    pub fn from_state(state: &SimulatedState) -> Result<Self> {
        if state.format != STATE_FORMAT {
            return Err(SimulatedError::Invalid(format!(
                "format {} (expected {STATE_FORMAT})",
                state.format
            )));
        }
        if state.product != Product::Milan.name() {
            return Err(SimulatedError::Invalid(format!(
                "product {} (only Milan is simulated)",
                state.product
            )));
        }
        let rsa_key = |what: &str, hex_der: &str| -> Result<pss::SigningKey<Sha384>> {
            let mut der = unhex(what, hex_der)?;
            let key = RsaPrivateKey::from_pkcs8_der(&der)
                .map_err(|e| SimulatedError::Pkcs8(format!("{what}: {e}")));
            der.zeroize();
            Ok(pss::SigningKey::new(key?))
        };
        let mut vcek_der = unhex("vcek_key", &state.vcek_key)?;
        let vcek_key = p384::ecdsa::SigningKey::from_pkcs8_der(&vcek_der)
            .map_err(|e| SimulatedError::Pkcs8(format!("vcek_key: {e}")));
        vcek_der.zeroize();
        let platform = SimulatedPlatform {
            ark_key: rsa_key("ark_key", &state.ark_key)?,
            ask_key: rsa_key("ask_key", &state.ask_key)?,
            vcek_key: vcek_key?,
            ark: AmdCert::parse("ARK", &unhex("ark_cert", &state.ark_cert)?)?,
            ask: AmdCert::parse("ASK", &unhex("ask_cert", &state.ask_cert)?)?,
            vcek: AmdCert::parse("VCEK", &unhex("vcek_cert", &state.vcek_cert)?)?,
            chip_id: unhex_array("chip_id", &state.chip_id)?,
            tcb: state.tcb,
            measurement: unhex_array("measurement", &state.measurement)?,
            policy: state.policy,
            report_id: random_report_id()?,
        };
        platform.check()?;
        Ok(platform)
    }

    /// Everything needed to reload this platform, private keys included (PKCS#8 DER).
    pub fn state(&self) -> Result<SimulatedState> {
        let pkcs8 = |what: &str, doc: std::result::Result<p384::pkcs8::SecretDocument, _>| {
            doc.map(|d| hex::encode(d.as_bytes()))
                .map_err(|e: p384::pkcs8::Error| SimulatedError::Pkcs8(format!("{what}: {e}")))
        };
        Ok(SimulatedState {
            warning: WARNING.to_owned(),
            format: STATE_FORMAT,
            product: Product::Milan.name().to_owned(),
            ark_key: pkcs8("ARK", self.ark_key.to_pkcs8_der())?,
            ask_key: pkcs8("ASK", self.ask_key.to_pkcs8_der())?,
            vcek_key: pkcs8("VCEK", self.vcek_key.to_pkcs8_der())?,
            ark_cert: hex::encode(&self.ark.der),
            ask_cert: hex::encode(&self.ask.der),
            vcek_cert: hex::encode(&self.vcek.der),
            chip_id: hex::encode(self.chip_id),
            tcb: self.tcb,
            measurement: hex::encode(self.measurement),
            policy: self.policy,
        })
    }

    /// A version 3 attestation report (1184 bytes, the real layout) carrying
    /// `report_data`, requested at VMPL 0 and signed by the VCEK. All four TCB fields are
    /// the platform's TCB.
    pub fn report(&self, report_data: [u8; 64]) -> Vec<u8> {
        let mut r = vec![0u8; REPORT_LEN];
        let mut put = |at: usize, bytes: &[u8]| r[at..at + bytes.len()].copy_from_slice(bytes);
        let tcb = self.tcb.raw().to_le_bytes();
        put(0x00, &REPORT_VERSION.to_le_bytes());
        put(0x08, &self.policy.to_le_bytes());
        put(0x30, &0u32.to_le_bytes()); // VMPL
        put(0x34, &1u32.to_le_bytes()); // ECDSA P-384 with SHA-384
        put(0x38, &tcb); // CURRENT_TCB
        put(0x40, &PLATFORM_INFO.to_le_bytes());
        put(0x48, &0u32.to_le_bytes()); // flags: signed by the VCEK, chip ID not masked
        put(0x50, &report_data);
        put(0x90, &self.measurement);
        put(0x140, &self.report_id);
        put(0x160, &[0xff; 32]); // REPORT_ID_MA: no migration agent
        put(0x180, &tcb); // REPORTED_TCB
        put(0x188, &CPUID);
        put(0x1a0, &self.chip_id);
        put(0x1e0, &tcb); // COMMITTED_TCB
        put(0x1e8, &FW_VERSION); // current build, minor, major
        put(0x1ec, &FW_VERSION); // committed
        put(0x1f0, &tcb); // LAUNCH_TCB
        // RFC 6979 P-384 signing with a valid key cannot fail; `sign` is its infallible form.
        let sig: p384::ecdsa::Signature = self.vcek_key.sign(&r[..SIGNED_LEN]);
        let (sig_r, sig_s) = sig.split_bytes();
        // R and S are little-endian in 72-byte fields; bytes 0x330.. stay zero.
        for (at, component) in [(0x2a0, sig_r), (0x2e8, sig_s)] {
            for (i, b) in component.iter().rev().enumerate() {
                r[at + i] = *b;
            }
        }
        r
    }

    /// The trust anchor a verifier must be given, explicitly, to accept this platform.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            product: Product::Milan,
            ark: self.ark.clone(),
            ask: self.ask.clone(),
            asvk: None,
            simulated: true,
        }
    }

    /// The ARK (self-signed root), DER.
    pub fn ark_der(&self) -> &[u8] {
        &self.ark.der
    }

    /// The ASK (signed by the ARK), DER.
    pub fn ask_der(&self) -> &[u8] {
        &self.ask.der
    }

    /// The VCEK (signed by the ASK), DER.
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek.der
    }

    /// The ARK, PEM.
    pub fn ark_pem(&self) -> Result<String> {
        pem(&self.ark.der)
    }

    /// The ASK, PEM.
    pub fn ask_pem(&self) -> Result<String> {
        pem(&self.ask.der)
    }

    /// The chip ID (the VCEK's hwID).
    pub fn chip_id(&self) -> [u8; 64] {
        self.chip_id
    }

    /// The TCB of the VCEK and the reports.
    pub fn tcb(&self) -> MilanTcb {
        self.tcb
    }

    /// The launch measurement reports carry.
    pub fn measurement(&self) -> [u8; 48] {
        self.measurement
    }

    /// Sets the launch measurement reports carry.
    pub fn set_measurement(&mut self, measurement: [u8; 48]) {
        self.measurement = measurement;
    }

    /// The guest policy reports carry.
    pub fn policy(&self) -> u64 {
        self.policy
    }

    /// Sets the guest policy reports carry (e.g. the DEBUG bit 19, to test refusal).
    pub fn set_policy(&mut self, policy: u64) {
        self.policy = policy;
    }

    /// The simulated counterpart of the SNP firmware's derived key (MSG_KEY_REQ with the VCEK
    /// root, measurement and policy mixed in): HMAC-SHA256 keyed by this chip's VCEK private
    /// scalar over `SEALING_LABEL || measurement (48) || policy (8, LE)`. Fixed-length fields,
    /// so the encoding is unambiguous. Depends only on what [`state`](Self::state) saves, so a
    /// reloaded platform (e.g. `keynode dev-network` outside the VM) derives the same key; another
    /// chip, measurement or policy derives another. Protects nothing from whoever holds the
    /// saved state.
    pub fn sealing_key_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut scalar = self.vcek_key.to_bytes();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &scalar[..]);
        scalar[..].zeroize();
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(SEALING_LABEL);
        ctx.update(&self.measurement);
        ctx.update(&self.policy.to_le_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        // An HMAC-SHA256 tag is exactly 32 bytes.
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The invariants every constructor ends with: the chain verifies with the verifier's
    /// own code, the keys are the certificates' keys, and the VCEK names this chip, TCB
    /// and product.
    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(SimulatedError::Invalid(what.to_owned()));
        if !sig::cert_signed_by(&self.ark, &self.ark) {
            return bad("ARK is not self-signed");
        }
        if !sig::cert_signed_by(&self.ask, &self.ark) {
            return bad("ASK is not signed by the ARK");
        }
        if !sig::cert_signed_by(&self.vcek, &self.ask) {
            return bad("VCEK is not signed by the ASK");
        }
        let rsa_pub = |k: &pss::SigningKey<Sha384>| {
            let public: &rsa::RsaPublicKey = k.as_ref().as_ref();
            public
                .to_pkcs1_der()
                .map(|d| PublicKey::Rsa(d.as_bytes().to_vec()))
                .map_err(|e| SimulatedError::Pkcs8(e.to_string()))
        };
        if rsa_pub(&self.ark_key)? != self.ark.public_key {
            return bad("ARK key does not match the ARK certificate");
        }
        if rsa_pub(&self.ask_key)? != self.ask.public_key {
            return bad("ASK key does not match the ASK certificate");
        }
        let point = self.vcek_key.verifying_key().to_encoded_point(false);
        if PublicKey::P384(point.as_bytes().to_vec()) != self.vcek.public_key {
            return bad("VCEK key does not match the VCEK certificate");
        }
        let ext = VekExtensions::read(&self.vcek);
        let t = self.tcb;
        let spls = [ext.bl, ext.tee, ext.snp, ext.ucode];
        if spls != [t.bl, t.tee, t.snp, t.ucode].map(Spl::Value) {
            return bad("VCEK SPLs differ from the TCB");
        }
        if ext.product() != Some(Product::Milan) {
            return bad("VCEK productName is not Milan");
        }
        if ext.hwid(Product::Milan).map(|(h, _)| h) != Some(self.chip_id.to_vec()) {
            return bad("VCEK hwID differs from the chip ID");
        }
        Ok(())
    }
}

/// A saved [`SimulatedPlatform`], for serde (binary values hex). Holds private keys:
/// zeroized on drop, never printed by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct SimulatedState {
    /// Always [`WARNING`] when written, so the file says what it is; ignored when read.
    warning: String,
    format: u32,
    product: String,
    ark_key: String,
    ask_key: String,
    vcek_key: String,
    ark_cert: String,
    ask_cert: String,
    vcek_cert: String,
    chip_id: String,
    tcb: MilanTcb,
    measurement: String,
    policy: u64,
}

impl Drop for SimulatedState {
    fn drop(&mut self) {
        self.ark_key.zeroize();
        self.ask_key.zeroize();
        self.vcek_key.zeroize();
    }
}

impl std::fmt::Debug for SimulatedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedState")
            .field("warning", &self.warning)
            .field("product", &self.product)
            .field("chip_id", &self.chip_id)
            .finish_non_exhaustive()
    }
}

/// One chip: its ID, its VCEK key and the VCEK certificate.
struct Chip {
    id: [u8; 64],
    key: p384::ecdsa::SigningKey,
    vcek: AmdCert,
}

impl Chip {
    /// A random chip ID and VCEK key, and the VCEK the ASK issues for them: serial 0,
    /// AMD's extensions in AMD's order (unused SPLs 4-7 zero), hwID the raw chip ID, no
    /// other X.509 extensions (as on AMD's).
    fn new(ask_key: &pss::SigningKey<Sha384>, ask: &AmdCert, tcb: MilanTcb) -> Result<Chip> {
        let mut id = [0u8; 64];
        OsRng.try_fill_bytes(&mut id)?;
        let key = p384::ecdsa::SigningKey::random(&mut OsRng);
        let spl = |arc: u32, v: u8| amd_ext(&[3, arc], der_uint(v));
        let extensions = vec![
            amd_ext(&[1], der_uint(0))?, // structVersion
            amd_ext(
                &[2],
                [
                    &[0x16, PRODUCT_NAME.len() as u8][..],
                    PRODUCT_NAME.as_bytes(),
                ]
                .concat(),
            )?,
            spl(1, tcb.bl)?,
            spl(2, tcb.tee)?,
            spl(4, 0)?,
            spl(5, 0)?,
            spl(6, 0)?,
            spl(7, 0)?,
            spl(3, tcb.snp)?,
            spl(8, tcb.ucode)?,
            amd_ext(&[4], id.to_vec())?,
        ];
        // The issuer is the ASK's subject, byte for byte.
        let ask_name = Certificate::from_der(&ask.der)?.tbs_certificate.subject;
        let der = issue(
            ask_key,
            SerialNumber::new(&[0])?,
            ask_name,
            Name::from_str(&name("SEV-VCEK"))?,
            SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())?,
            extensions,
        )?;
        Ok(Chip {
            id,
            key,
            vcek: AmdCert::parse("VCEK", &der)?,
        })
    }
}

/// A subject name that says what it is wherever it is shown.
fn name(cn: &str) -> String {
    format!("CN={cn},O=Keynet simulated SEV-SNP platform,OU=SIMULATED - not AMD hardware")
}

/// Validity 2020-01-01 to 2050-01-01, covering any test run: UTCTime before 2050 and
/// GeneralizedTime from 2050 on, as RFC 5280 requires.
fn validity() -> Result<Validity> {
    let jan1 = |year| DateTime::new(year, 1, 1, 0, 0, 0);
    Ok(Validity {
        not_before: Time::UtcTime(UtcTime::from_date_time(jan1(2020)?)?),
        not_after: Time::GeneralTime(GeneralizedTime::from_date_time(jan1(2050)?)),
    })
}

/// A positive 64-bit random serial.
fn random_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 8];
    OsRng.try_fill_bytes(&mut b)?;
    b[0] = (b[0] & 0x7f) | 0x01;
    Ok(SerialNumber::new(&b)?)
}

fn random_report_id() -> Result<[u8; 32]> {
    let mut id = [0u8; 32];
    OsRng.try_fill_bytes(&mut id)?;
    Ok(id)
}

/// Signs a certificate with RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48 (the signing
/// key's default for SHA-384, and exactly AMD's parameters).
fn issue(
    signer: &pss::SigningKey<Sha384>,
    serial_number: SerialNumber,
    issuer: Name,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<Vec<u8>> {
    let signature = signer.signature_algorithm_identifier()?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number,
        signature: signature.clone(),
        issuer,
        validity: validity()?,
        subject,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let sig: pss::Signature = signer.try_sign_with_rng(&mut OsRng, &tbs.to_der()?)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: signature,
        signature: BitString::from_bytes(&sig.to_bytes())?,
    };
    Ok(cert.to_der()?)
}

/// An AMD extension 1.3.6.1.4.1.3704.1.`arcs`, non-critical, with raw contents.
fn amd_ext(arcs: &[u32], contents: Vec<u8>) -> Result<Extension> {
    let dotted = arcs
        .iter()
        .fold("1.3.6.1.4.1.3704.1".to_owned(), |s, a| format!("{s}.{a}"));
    Ok(Extension {
        extn_id: ObjectIdentifier::new(&dotted)
            .map_err(|e| SimulatedError::Invalid(format!("OID {dotted}: {e}")))?,
        critical: false,
        extn_value: OctetString::new(contents)?,
    })
}

/// A DER INTEGER 0-255: values >= 128 take a leading zero byte, as in AMD's VCEKs.
fn der_uint(v: u8) -> Vec<u8> {
    if v >= 0x80 {
        vec![0x02, 0x02, 0x00, v]
    } else {
        vec![0x02, 0x01, v]
    }
}

fn pem(der: &[u8]) -> Result<String> {
    Ok(Certificate::from_der(der)?.to_pem(LineEnding::LF)?)
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>> {
    hex::decode(s).map_err(|e| SimulatedError::Invalid(format!("{what}: not hex: {e}")))
}

fn unhex_array<const N: usize>(what: &str, s: &str) -> Result<[u8; N]> {
    let v = unhex(what, s)?;
    <[u8; N]>::try_from(v.as_slice())
        .map_err(|_| SimulatedError::Invalid(format!("{what}: {} bytes, expected {N}", v.len())))
}
