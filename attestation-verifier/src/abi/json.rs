//! Every parsed field of a report as JSON (hex for byte strings and 64-bit words, decoded
//! TCBs once the product is known), for `--json` output.

use serde_json::{Value, json};

use crate::abi::report::{Report, SigningKey};
use crate::abi::tcb::Tcb;
use crate::kds::Product;

fn tcb(raw: u64, product: Option<Product>) -> Value {
    match product {
        Some(p) => serde_json::to_value(Tcb::decode(raw, p)).unwrap_or(Value::Null),
        None => json!({ "raw": format!("{raw:016x}") }),
    }
}

/// The report's fields; TCBs are decoded only when the product is known.
pub fn report_json(r: &Report, product: Option<Product>) -> Value {
    let signing_key = match r.signing_key {
        SigningKey::Vcek => 0,
        SigningKey::Vlek => 1,
        SigningKey::None => 7,
        SigningKey::Reserved(v) => v,
    };
    let mut v = json!({
        "version": r.version,
        "guest_svn": r.guest_svn,
        "policy": format!("{:016x}", r.policy),
        "vmpl": r.vmpl,
        "signature_algo": r.signature_algo,
        "platform_info": format!("{:016x}", r.platform_info),
        "flags": r.flags,
        "author_key_en": u8::from(r.author_key_en),
        "mask_chip_key": u8::from(r.mask_chip_key),
        "signing_key": signing_key,
        "family_id": hex::encode(r.family_id),
        "image_id": hex::encode(r.image_id),
        "report_data": hex::encode(r.report_data),
        "measurement": hex::encode(r.measurement),
        "host_data": hex::encode(r.host_data),
        "id_key_digest": hex::encode(r.id_key_digest),
        "author_key_digest": hex::encode(r.author_key_digest),
        "report_id": hex::encode(r.report_id),
        "report_id_ma": hex::encode(r.report_id_ma),
        "chip_id": hex::encode(r.chip_id),
        "current_version": r.current_version.to_string(),
        "committed_version": r.committed_version.to_string(),
        "current_tcb": tcb(r.current_tcb, product),
        "reported_tcb": tcb(r.reported_tcb, product),
        "committed_tcb": tcb(r.committed_tcb, product),
        "launch_tcb": tcb(r.launch_tcb, product),
        "sha256": hex::encode(ring::digest::digest(&ring::digest::SHA256, &r.raw[..]).as_ref()),
    });
    if let Some(c) = r.cpuid {
        v["cpuid_fam_id"] = json!(c.family);
        v["cpuid_mod_id"] = json!(c.model);
        v["cpuid_step"] = json!(c.stepping);
    }
    if let (Some(l), Some(c)) = (r.launch_mit_vector, r.current_mit_vector) {
        v["launch_mit_vector"] = json!(format!("{l:016x}"));
        v["current_mit_vector"] = json!(format!("{c:016x}"));
    }
    v
}
