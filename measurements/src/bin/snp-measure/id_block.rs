//! `snp-measure id-block`: the SNP ID block and ID authentication structure.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use snp_measure::id_block::{IdBlock, IdKey, sign};
use zeroize::Zeroizing;

use crate::args::{IdBlockArgs, UsageError};

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// Accepts 96 hex digits or base64 of 48 bytes.
fn parse_measurement(s: &str) -> Result<[u8; 48]> {
    let s = s.trim();
    let bytes = if s.len() == 96 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(s).map_err(|e| usage(format!("--measurement: {e}")))?
    } else {
        B64.decode(s).map_err(|e| {
            usage(format!(
                "--measurement: neither 96 hex digits nor base64: {e}"
            ))
        })?
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| usage(format!("--measurement: expected 48 bytes, got {}", b.len())))
}

fn parse_id(flag: &str, s: Option<&str>) -> Result<[u8; 16]> {
    let Some(s) = s else { return Ok([0; 16]) };
    let bytes = hex::decode(s.trim()).map_err(|e| usage(format!("{flag}: not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        usage(format!(
            "{flag}: expected 16 bytes (32 hex digits), got {}",
            b.len()
        ))
    })
}

fn load_key(which: &'static str, path: &std::path::Path) -> Result<IdKey> {
    let pem = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {which} key {}", path.display()))?,
    );
    Ok(IdKey::from_pem(which, &pem)?)
}

pub fn run(a: &IdBlockArgs) -> Result<()> {
    let block = IdBlock {
        family_id: parse_id("--family-id", a.family_id.as_deref())?,
        image_id: parse_id("--image-id", a.image_id.as_deref())?,
        guest_svn: a.guest_svn,
        policy: a.policy,
        ..IdBlock::new(parse_measurement(&a.measurement)?)
    };
    let id_key = load_key("ID", &a.idkey)?;
    let author = a
        .authorkey
        .as_deref()
        .map(|p| load_key("author", p))
        .transpose()?;
    let signed = sign(&block, &id_key, author.as_ref());
    let (block_b64, auth_b64) = (B64.encode(signed.block), B64.encode(&signed.auth));
    if a.json {
        let rec = json!({
            "id_block": block_b64,
            "id_auth": auth_b64,
            "id_key_digest": hex::encode(signed.id_key_digest),
            "author_key_digest": signed.author_key_digest.map(hex::encode),
            "launch_digest": hex::encode(block.launch_digest),
            "family_id": hex::encode(block.family_id),
            "image_id": hex::encode(block.image_id),
            "guest_svn": block.guest_svn,
            "policy": format!("{:#x}", block.policy),
            "author_key_enabled": author.is_some(),
        });
        println!("{}", serde_json::to_string_pretty(&rec)?);
        return Ok(());
    }
    // Same text as snp-create-id-block.
    println!("id-block={block_b64},id-auth={auth_b64}");
    println!("id_key_hash: {}", B64.encode(signed.id_key_digest));
    if let Some(d) = signed.author_key_digest {
        println!("author_key: {}", B64.encode(d));
    }
    Ok(())
}
