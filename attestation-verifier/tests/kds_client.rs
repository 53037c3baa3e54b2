//! The KDS layer against a scripted HTTP/1.1 server on 127.0.0.1: URL formats per product,
//! caching (memory and disk), one request per URL under concurrency, 404 vs 429 vs 5xx,
//! bounded retries and total time; and offline certificate directories built from real
//! AMD files (see `tests/data/kds/PROVENANCE.md`).
//!
//! Timing assertions are hang guards only (generous bounds), never speed checks.

use std::collections::HashMap;
use std::error::Error;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use attestation_verifier::abi::tcb::Tcb;
use attestation_verifier::kds::client::KdsClient;
use attestation_verifier::kds::offline::{self, CertDir, X509_CRL};
use attestation_verifier::kds::urls::{self, KDS_BASE, KeyKind};
use attestation_verifier::kds::{KdsError, Product};

type TestResult = Result<(), Box<dyn Error>>;

// ---------------------------------------------------------------------------------------
// URLs

#[test]
fn vcek_urls_per_product() -> TestResult {
    let hwid64: Vec<u8> = (0u8..64).collect();
    let hex64 = hex::encode(&hwid64);

    // Milan: bl=3 tee=0 snp=8 ucode=115 (virtee-milan-v2's REPORTED_TCB).
    let tcb = Tcb::decode(0x7308_0000_0000_0003, Product::Milan);
    assert_eq!(
        urls::vcek_url(KDS_BASE, Product::Milan, &hwid64, &tcb)?,
        format!(
            "https://kdsintf.amd.com/vcek/v1/Milan/{hex64}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
        )
    );

    // Genoa: bl=10 tee=0 snp=27 ucode=88 (yaxi-genoa-v5).
    let tcb = Tcb::decode(0x581b_0000_0000_000a, Product::Genoa);
    assert_eq!(
        urls::vcek_url("http://127.0.0.1:1/", Product::Genoa, &hwid64, &tcb)?,
        format!(
            "http://127.0.0.1:1/vcek/v1/Genoa/{hex64}?blSPL=10&teeSPL=00&snpSPL=27&ucodeSPL=88"
        )
    );

    // Turin: 8-byte hwID, FMC SPL first; fmc=0 bl=0 tee=0 snp=0 ucode=9 is the TCB of
    // virtee's Turin VCEK, whose hwID is 1e550a8ee5cf9f4d.
    let mut chip_id = [0u8; 64];
    chip_id[..8].copy_from_slice(&hex::decode("1e550a8ee5cf9f4d")?);
    let hwid = urls::hwid_from_chip_id(Product::Turin, &chip_id)?;
    assert_eq!(hwid.len(), 8);
    let tcb = Tcb::decode(0x0900_0000_0000_0000, Product::Turin);
    assert_eq!(
        urls::vcek_url(KDS_BASE, Product::Turin, &hwid, &tcb)?,
        "https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d?fmcSPL=00&blSPL=00&teeSPL=00&snpSPL=00&ucodeSPL=09"
    );
    // fmc=3 bl=1 tee=2 snp=4 ucode=5: Turin puts FMC, BL, TEE, SNP in bytes 0-3.
    let tcb = Tcb::decode(0x0500_0000_0402_0103, Product::Turin);
    assert_eq!(
        urls::vcek_url(KDS_BASE, Product::Turin, &hwid, &tcb)?,
        "https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d?fmcSPL=03&blSPL=01&teeSPL=02&snpSPL=04&ucodeSPL=05"
    );
    Ok(())
}

#[test]
fn vcek_url_rejects_mismatched_inputs() {
    let milan_tcb = Tcb::decode(0x7308_0000_0000_0003, Product::Milan);
    let turin_tcb = Tcb::decode(0x0500_0000_0402_0103, Product::Turin);

    match urls::vcek_url(KDS_BASE, Product::Turin, &[1; 64], &turin_tcb) {
        Err(KdsError::BadHwid {
            expected_len: 8,
            actual_len: 64,
        }) => {}
        other => panic!("64-byte hwID on Turin: {other:?}"),
    }
    match urls::vcek_url(KDS_BASE, Product::Milan, &[1; 8], &milan_tcb) {
        Err(KdsError::BadHwid {
            expected_len: 64,
            actual_len: 8,
        }) => {}
        other => panic!("8-byte hwID on Milan: {other:?}"),
    }
    match urls::vcek_url(KDS_BASE, Product::Turin, &[1; 8], &milan_tcb) {
        Err(KdsError::TcbLayout { .. }) => {}
        other => panic!("Turin URL from a TCB without FMC: {other:?}"),
    }
    match urls::vcek_url(KDS_BASE, Product::Genoa, &[1; 64], &turin_tcb) {
        Err(KdsError::TcbLayout { .. }) => {}
        other => panic!("Genoa URL from a TCB with FMC: {other:?}"),
    }
}

#[test]
fn hwid_from_chip_id_rules() -> TestResult {
    let mut chip_id = [0u8; 64];
    match urls::hwid_from_chip_id(Product::Milan, &chip_id) {
        Err(KdsError::MaskedChipId) => {}
        other => panic!("all-zero CHIP_ID: {other:?}"),
    }
    chip_id[..8].copy_from_slice(&[0xcd; 8]);
    assert_eq!(
        urls::hwid_from_chip_id(Product::Turin, &chip_id)?,
        vec![0xcd; 8]
    );
    assert_eq!(
        urls::hwid_from_chip_id(Product::Milan, &chip_id)?,
        chip_id.to_vec()
    );
    chip_id[9] = 1;
    match urls::hwid_from_chip_id(Product::Turin, &chip_id) {
        Err(KdsError::HwidPadding {
            product: Product::Turin,
        }) => {}
        other => panic!("Turin CHIP_ID with non-zero padding: {other:?}"),
    }
    assert_eq!(urls::hwid_from_chip_id(Product::Genoa, &chip_id)?.len(), 64);
    Ok(())
}

#[test]
fn chain_and_crl_urls() {
    let cases = [
        (Product::Milan, KeyKind::Vcek, "vcek", "Milan"),
        (Product::Genoa, KeyKind::Vlek, "vlek", "Genoa"),
        (Product::Turin, KeyKind::Vcek, "vcek", "Turin"),
        (Product::Turin, KeyKind::Vlek, "vlek", "Turin"),
    ];
    for (product, kind, seg, name) in cases {
        assert_eq!(
            urls::cert_chain_url(KDS_BASE, product, kind),
            format!("https://kdsintf.amd.com/{seg}/v1/{name}/cert_chain")
        );
        assert_eq!(
            urls::crl_url("http://127.0.0.1:9/", product, kind),
            format!("http://127.0.0.1:9/{seg}/v1/{name}/crl")
        );
    }
}

#[test]
fn base_url_is_validated() -> TestResult {
    for bad in [
        "ftp://kdsintf.amd.com",
        "http://",
        "kdsintf.amd.com",
        "https://x/?a=b",
    ] {
        match KdsClient::builder().base_url(bad).build() {
            Err(KdsError::BadBaseUrl { .. }) => {}
            Err(e) => panic!("{bad}: unexpected error {e}"),
            Ok(_) => panic!("{bad}: accepted"),
        }
    }
    let client = KdsClient::builder()
        .base_url("http://127.0.0.1:8080/")
        .build()?;
    assert_eq!(client.base_url(), "http://127.0.0.1:8080");
    assert_eq!(KdsClient::builder().build()?.base_url(), KDS_BASE);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Client against a local server

#[test]
fn fetch_vcek_requests_the_right_targets() -> TestResult {
    let vcek = data("turin-vcek.der")?;
    let body = vcek.clone();
    let server = Server::start(move |_, _| Reply::ok(body.clone()))?;
    let client = builder_for(&server).build()?;

    let mut chip_id = [0u8; 64];
    for (i, b) in chip_id.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    let full = hex::encode(chip_id);
    let milan = Tcb::decode(0x7308_0000_0000_0003, Product::Milan);
    let genoa = Tcb::decode(0x581b_0000_0000_000a, Product::Genoa);
    assert_eq!(client.fetch_vcek(Product::Milan, &chip_id, &milan)?, vcek);
    assert_eq!(client.fetch_vcek(Product::Genoa, &chip_id, &genoa)?, vcek);

    let mut turin_chip = [0u8; 64];
    turin_chip[..8].copy_from_slice(&hex::decode("1e550a8ee5cf9f4d")?);
    let turin = Tcb::decode(0x0900_0000_0000_0000, Product::Turin);
    assert_eq!(
        client.fetch_vcek(Product::Turin, &turin_chip, &turin)?,
        vcek
    );

    // A DER VCEK is not the PEM a chain must be; only the request target matters here.
    match client.fetch_cert_chain(Product::Genoa, KeyKind::Vlek) {
        Err(KdsError::BadResponse { .. }) => {}
        other => panic!("DER body as a cert chain: {other:?}"),
    }
    client.fetch_crl(Product::Milan, KeyKind::Vcek, Duration::ZERO)?;

    assert_eq!(
        server.requests(),
        vec![
            format!("/vcek/v1/Milan/{full}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"),
            format!("/vcek/v1/Genoa/{full}?blSPL=10&teeSPL=00&snpSPL=27&ucodeSPL=88"),
            "/vcek/v1/Turin/1e550a8ee5cf9f4d?fmcSPL=00&blSPL=00&teeSPL=00&snpSPL=00&ucodeSPL=09"
                .to_owned(),
            "/vlek/v1/Genoa/cert_chain".to_owned(),
            "/vcek/v1/Milan/crl".to_owned(),
        ]
    );
    Ok(())
}

#[test]
fn disk_cache_serves_repeat_and_new_clients() -> TestResult {
    let chain = data("turin-chain.pem")?;
    let body = chain.clone();
    let server = Server::start(move |_, _| Reply::ok(body.clone()))?;
    let dir = tempfile::tempdir()?;

    let first = builder_for(&server).cache_dir(dir.path()).build()?;
    assert_eq!(
        first.fetch_cert_chain(Product::Turin, KeyKind::Vcek)?,
        chain
    );
    assert_eq!(
        first.fetch_cert_chain(Product::Turin, KeyKind::Vcek)?,
        chain
    );
    assert_eq!(server.count(), 1, "second fetch must come from the cache");

    let second = builder_for(&server).cache_dir(dir.path()).build()?;
    assert_eq!(
        second.fetch_cert_chain(Product::Turin, KeyKind::Vcek)?,
        chain
    );
    assert_eq!(server.count(), 1, "a new client must find the disk cache");

    // One entry, readable prefix, no temporary files left behind.
    let names = file_names(dir.path())?;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("vcek_v1_Turin_cert_chain-") && names[0].ends_with(".bin"),
        "{names:?}"
    );
    Ok(())
}

#[test]
fn memory_cache_without_cache_dir() -> TestResult {
    let vcek = data("milan-vcek.der")?;
    let body = vcek.clone();
    let server = Server::start(move |_, _| Reply::ok(body.clone()))?;
    let client = builder_for(&server).build()?;
    let url = format!("{}/anything", server.base);
    assert_eq!(client.fetch(&url)?, vcek);
    assert_eq!(client.fetch(&url)?, vcek);
    assert_eq!(server.count(), 1);
    Ok(())
}

#[test]
fn unusable_body_is_neither_returned_nor_cached() -> TestResult {
    let server = Server::start(|_, _| Reply::ok(b"<html>maintenance</html>".to_vec()))?;
    let dir = tempfile::tempdir()?;
    let client = builder_for(&server).cache_dir(dir.path()).build()?;
    let chip_id = [7u8; 64];
    let tcb = Tcb::decode(0, Product::Milan);
    for _ in 0..2 {
        match client.fetch_vcek(Product::Milan, &chip_id, &tcb) {
            Err(KdsError::BadResponse { .. }) => {}
            other => panic!("HTML as VCEK: {other:?}"),
        }
    }
    match client.fetch_cert_chain(Product::Milan, KeyKind::Vcek) {
        Err(KdsError::BadResponse { .. }) => {}
        other => panic!("HTML as cert chain: {other:?}"),
    }
    assert_eq!(server.count(), 3, "a bad body must not be cached");
    assert!(file_names(dir.path())?.is_empty());
    Ok(())
}

#[test]
fn crl_max_age_forces_refresh() -> TestResult {
    let crl_pem = data("milan-crl-2025-05-06.pem")?;
    let crl = offline::pem_blocks(
        std::str::from_utf8(&crl_pem)?,
        X509_CRL,
        Path::new("milan-crl-2025-05-06.pem"),
    )?
    .remove(0);
    let body = crl.clone();
    let server = Server::start(move |_, _| Reply::ok(body.clone()))?;
    let dir = tempfile::tempdir()?;
    let hour = Duration::from_secs(3600);

    let client = builder_for(&server).cache_dir(dir.path()).build()?;
    assert_eq!(client.fetch_crl(Product::Milan, KeyKind::Vcek, hour)?, crl);
    assert_eq!(client.fetch_crl(Product::Milan, KeyKind::Vcek, hour)?, crl);
    assert_eq!(server.count(), 1);
    assert_eq!(
        client.fetch_crl(Product::Milan, KeyKind::Vcek, Duration::ZERO)?,
        crl
    );
    assert_eq!(server.count(), 2, "max_age zero must refetch");

    let other = builder_for(&server).cache_dir(dir.path()).build()?;
    assert_eq!(other.fetch_crl(Product::Milan, KeyKind::Vcek, hour)?, crl);
    assert_eq!(server.count(), 2, "a fresh disk entry must be used");
    assert_eq!(server.requests()[0], "/vcek/v1/Milan/crl");
    Ok(())
}

#[test]
fn not_found_is_final() -> TestResult {
    let server = Server::start(|_, _| Reply::status(404))?;
    let client = builder_for(&server).max_retries(5).build()?;
    let url = format!("{}/vcek/v1/Milan/cert_chain", server.base);
    match client.fetch(&url) {
        Err(KdsError::NotFound { url: u }) => assert_eq!(u, url),
        other => panic!("404: {other:?}"),
    }
    assert_eq!(server.count(), 1, "404 must not be retried");
    Ok(())
}

#[test]
fn other_client_errors_are_not_retried() -> TestResult {
    let server = Server::start(|_, _| Reply::status(403))?;
    let client = builder_for(&server).max_retries(5).build()?;
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::UnexpectedStatus { status: 403, .. }) => {}
        other => panic!("403: {other:?}"),
    }
    assert_eq!(server.count(), 1);
    Ok(())
}

#[test]
fn rate_limit_honours_retry_after_then_succeeds() -> TestResult {
    let server = Server::start(|_, n| {
        if n == 0 {
            Reply::status(429).header("Retry-After", "0")
        } else if n == 1 {
            // An HTTP-date in the past means "now".
            Reply::status(429).header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
        } else {
            Reply::ok(b"fine".to_vec())
        }
    })?;
    let client = builder_for(&server).max_retries(3).build()?;
    assert_eq!(client.fetch(&format!("{}/x", server.base))?, b"fine");
    assert_eq!(server.count(), 3);
    Ok(())
}

#[test]
fn rate_limit_retries_are_bounded() -> TestResult {
    let server = Server::start(|_, _| Reply::status(429).header("Retry-After", "1"))?;
    let client = builder_for(&server).max_retries(1).build()?;
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("429: {other:?}"),
    }
    assert_eq!(server.count(), 2, "one attempt plus one retry");
    Ok(())
}

#[test]
fn retry_after_beyond_budget_gives_up_at_once() -> TestResult {
    let server = Server::start(|_, _| Reply::status(429).header("Retry-After", "3600"))?;
    let client = builder_for(&server)
        .max_retries(5)
        .time_budget(Duration::from_secs(5))
        .build()?;
    let start = Instant::now();
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)));
        }
        other => panic!("429 with long Retry-After: {other:?}"),
    }
    assert_eq!(server.count(), 1);
    assert!(start.elapsed() < Duration::from_secs(60), "hang guard");
    Ok(())
}

#[test]
fn server_errors_are_retried() -> TestResult {
    let server = Server::start(|_, n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::ok(b"ok".to_vec())
        }
    })?;
    let client = builder_for(&server).max_retries(2).build()?;
    assert_eq!(client.fetch(&format!("{}/x", server.base))?, b"ok");
    assert_eq!(server.count(), 2);
    Ok(())
}

#[test]
fn server_error_retries_are_bounded() -> TestResult {
    let server = Server::start(|_, _| Reply::status(500))?;
    let client = builder_for(&server).max_retries(2).build()?;
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::Server { status: 500, .. }) => {}
        other => panic!("500: {other:?}"),
    }
    assert_eq!(server.count(), 3, "one attempt plus two retries");
    Ok(())
}

#[test]
fn transport_errors_are_retried_and_reported() -> TestResult {
    // A port nobody listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let client = KdsClient::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .use_env_proxy(false)
        .max_retries(2)
        .retry_backoff(Duration::from_millis(10))
        .time_budget(Duration::from_secs(10))
        .build()?;
    let start = Instant::now();
    match client.fetch_cert_chain(Product::Milan, KeyKind::Vcek) {
        Err(KdsError::Transport { url, .. }) => assert!(url.ends_with("/vcek/v1/Milan/cert_chain")),
        other => panic!("connection refused: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(30), "hang guard");
    Ok(())
}

#[test]
fn dropped_connections_are_retried_and_bounded() -> TestResult {
    let server = Server::start(|_, _| Reply::hang_up())?;
    let client = builder_for(&server).max_retries(2).build()?;
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::Transport { .. }) => {}
        other => panic!("connection closed without a response: {other:?}"),
    }
    assert_eq!(server.count(), 3, "one attempt plus two retries");
    Ok(())
}

#[test]
fn https_base_speaks_tls() -> TestResult {
    // A plain-text peer behind an https:// base: the TLS handshake must fail cleanly (this
    // also proves the ring-based TLS provider is wired in: a missing one would panic).
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let client = KdsClient::builder()
        .base_url(format!("https://127.0.0.1:{port}"))
        .use_env_proxy(false)
        .max_retries(0)
        .time_budget(Duration::from_secs(10))
        .build()?;
    let start = Instant::now();
    match client.fetch_cert_chain(Product::Turin, KeyKind::Vlek) {
        Err(KdsError::Transport { .. } | KdsError::Timeout { .. }) => {}
        other => panic!("TLS to a plain-text peer: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(30), "hang guard");
    Ok(())
}

#[test]
fn slow_server_hits_the_total_deadline() -> TestResult {
    let server = Server::start(|_, _| Reply::ok(b"late".to_vec()).delay(Duration::from_secs(20)))?;
    let budget = Duration::from_secs(1);
    let client = builder_for(&server).time_budget(budget).build()?;
    let start = Instant::now();
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::Timeout { after, .. }) => assert_eq!(after, budget),
        other => panic!("slow server: {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?} with a 1 s budget",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn deadline_bounds_many_retries() -> TestResult {
    let server = Server::start(|_, _| Reply::status(500))?;
    let client = builder_for(&server)
        .max_retries(1000)
        .retry_backoff(Duration::from_millis(100))
        .time_budget(Duration::from_secs(1))
        .build()?;
    let start = Instant::now();
    match client.fetch(&format!("{}/x", server.base)) {
        Err(KdsError::Server { status: 500, .. } | KdsError::Timeout { .. }) => {}
        other => panic!("endless 500s: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10), "hang guard");
    assert!(server.count() < 1000);
    Ok(())
}

#[test]
fn concurrent_fetches_of_one_url_make_one_request() -> TestResult {
    for use_disk in [false, true] {
        let vcek = data("milan-vcek.der")?;
        let body = vcek.clone();
        let server =
            Server::start(move |_, _| Reply::ok(body.clone()).delay(Duration::from_millis(300)))?;
        let dir = tempfile::tempdir()?;
        let mut builder = builder_for(&server);
        if use_disk {
            builder = builder.cache_dir(dir.path());
        }
        let client = builder.build()?;
        let url = format!("{}/vcek/v1/Milan/same", server.base);
        let results: Vec<Result<Vec<u8>, KdsError>> = thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| client.fetch(&url))).collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(_) => panic!("fetch thread panicked"),
                })
                .collect()
        });
        for r in results {
            assert_eq!(r?, vcek);
        }
        assert_eq!(server.count(), 1, "disk cache: {use_disk}");
    }
    Ok(())
}

#[test]
fn different_urls_are_not_serialized_into_one() -> TestResult {
    let server = Server::start(|path, _| Reply::ok(path.as_bytes().to_vec()))?;
    let client = builder_for(&server).build()?;
    thread::scope(|s| {
        for i in 0..4 {
            let client = &client;
            let base = server.base.clone();
            s.spawn(move || match client.fetch(&format!("{base}/u{i}")) {
                Ok(body) => assert_eq!(body, format!("/u{i}").into_bytes()),
                Err(e) => panic!("fetch /u{i}: {e}"),
            });
        }
    });
    assert_eq!(server.count(), 4);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Offline directories and PEM/DER decoding

// SHA-256 of the DER certificates, from /work/shared/vectors/snp/PROVENANCE.md.
const MILAN_ARK: &str = "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd";
const MILAN_ASK: &str = "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b";
const GENOA_ARK: &str = "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1";
const GENOA_ASK: &str = "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521";
const TURIN_ARK: &str = "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a";
const TURIN_ASK: &str = "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185";
const MILAN_CRL: &str = "53a61dc059e525ef637c4f28b7ab2542f64ef1ad0a485eca425bafe722e15f58";

#[test]
fn offline_dir_pem_roots_and_der_vcek() -> TestResult {
    let dir = tempfile::tempdir()?;
    copy("milan-ark.pem", dir.path(), "ark.pem")?;
    copy("milan-ask.pem", dir.path(), "ask.pem")?;
    copy("milan-vcek.der", dir.path(), "vcek.der")?;
    let certs = CertDir::load(dir.path())?;
    assert_eq!(sha256(certs.ark.as_deref()), MILAN_ARK);
    assert_eq!(sha256(certs.ask.as_deref()), MILAN_ASK);
    assert_eq!(certs.vcek, Some(data("milan-vcek.der")?));
    assert_eq!((certs.asvk, certs.vlek), (None, None));
    Ok(())
}

#[test]
fn offline_dir_crlf_cert_chain_supplies_the_ark() -> TestResult {
    let chain = data("turin-chain.pem")?;
    assert!(
        chain.windows(2).any(|w| w == b"\r\n"),
        "turin-chain.pem lost its CRLF line endings (git normalization?)"
    );
    let dir = tempfile::tempdir()?;
    copy("turin-chain.pem", dir.path(), "ask.pem")?;
    copy("turin-vcek.der", dir.path(), "vcek.der")?;
    let certs = CertDir::load(dir.path())?;
    assert_eq!(sha256(certs.ask.as_deref()), TURIN_ASK);
    assert_eq!(sha256(certs.ark.as_deref()), TURIN_ARK);
    assert_eq!(certs.vcek, Some(data("turin-vcek.der")?));
    Ok(())
}

#[test]
fn offline_dir_commented_vcek_chain() -> TestResult {
    let chain = data("genoa-vcek-chain.pem")?;
    assert!(chain.starts_with(b"# "), "expected a comment line first");
    let dir = tempfile::tempdir()?;
    copy("genoa-vcek-chain.pem", dir.path(), "vcek.pem")?;
    let certs = CertDir::load(dir.path())?;
    assert!(sha256(certs.vcek.as_deref()).starts_with("e38ccf0f7c392605"));
    assert_eq!(sha256(certs.ask.as_deref()), GENOA_ASK);
    assert_eq!(sha256(certs.ark.as_deref()), GENOA_ARK);
    Ok(())
}

#[test]
fn offline_dir_agreeing_duplicates_are_fine() -> TestResult {
    // The ARK both in ark.pem and trailing the chain in ask.pem: identical, so accepted.
    let dir = tempfile::tempdir()?;
    copy("turin-chain.pem", dir.path(), "ask.pem")?;
    let ark = offline::pem_or_der_certs(&data("turin-chain.pem")?)?.remove(1);
    fs::write(dir.path().join("ark.der"), &ark)?;
    let certs = CertDir::load(dir.path())?;
    assert_eq!(sha256(certs.ark.as_deref()), TURIN_ARK);
    Ok(())
}

#[test]
fn offline_dir_conflicts_and_missing_files() -> TestResult {
    // ark.pem (Milan) disagrees with the ARK after the ASK in ask.pem (Turin).
    let dir = tempfile::tempdir()?;
    copy("milan-ark.pem", dir.path(), "ark.pem")?;
    copy("turin-chain.pem", dir.path(), "ask.pem")?;
    match CertDir::load(dir.path()) {
        Err(KdsError::Conflict { cert: "ARK", .. }) => {}
        other => panic!("conflicting ARKs: {other:?}"),
    }

    // Both encodings of one certificate.
    let dir = tempfile::tempdir()?;
    copy("milan-vcek.der", dir.path(), "vcek.der")?;
    copy("genoa-vcek-chain.pem", dir.path(), "vcek.pem")?;
    match CertDir::load(dir.path()) {
        Err(KdsError::Conflict { cert: "VCEK", .. }) => {}
        other => panic!("vcek.pem and vcek.der: {other:?}"),
    }

    // Two certificates in ark.pem.
    let dir = tempfile::tempdir()?;
    copy("turin-chain.pem", dir.path(), "ark.pem")?;
    match CertDir::load(dir.path()) {
        Err(KdsError::TooManyCertificates {
            found: 2, max: 1, ..
        }) => {}
        other => panic!("two certs in ark.pem: {other:?}"),
    }

    // Nothing there.
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("readme.txt"), "not a cert")?;
    match CertDir::load(dir.path()) {
        Err(KdsError::MissingFile { names, .. }) => assert!(names.contains(&"ark.pem".to_owned())),
        other => panic!("empty dir: {other:?}"),
    }
    match CertDir::load(dir.path().join("absent")) {
        Err(KdsError::Io { .. }) => {}
        other => panic!("absent dir: {other:?}"),
    }
    Ok(())
}

#[test]
fn malformed_files_are_named_in_errors() -> TestResult {
    let ark = String::from_utf8(data("milan-ark.pem")?)?;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "mismatched END",
            ark.replace("-----END CERTIFICATE-----", "-----END X509 CRL-----")
                .into_bytes(),
        ),
        (
            "other label",
            ark.replace("CERTIFICATE", "PRIVATE KEY").into_bytes(),
        ),
        (
            "unterminated",
            ark.replace("-----END CERTIFICATE-----", "").into_bytes(),
        ),
        ("bad base64", ark.replacen("MII", "M*I", 1).into_bytes()),
        (
            "header line",
            ark.replacen(
                "-----BEGIN CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n",
                1,
            )
            .into_bytes(),
        ),
        ("neither", b"hello".to_vec()),
        ("truncated DER", data("milan-vcek.der")?[..100].to_vec()),
    ];
    for (what, bytes) in cases {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("ark.pem"), &bytes)?;
        match CertDir::load(dir.path()) {
            Err(
                e @ (KdsError::Pem { .. } | KdsError::Der { .. } | KdsError::NotPemOrDer { .. }),
            ) => {
                assert!(e.to_string().contains("ark.pem"), "{what}: {e}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn pem_or_der_decoding() -> TestResult {
    let turin = offline::pem_or_der_certs(&data("turin-chain.pem")?)?;
    assert_eq!(turin.len(), 2);
    assert_eq!(sha256(Some(&turin[0])), TURIN_ASK);

    let vcek = data("milan-vcek.der")?;
    assert_eq!(offline::pem_or_der_certs(&vcek)?, vec![vcek.clone()]);
    let two = [vcek.as_slice(), turin[1].as_slice()].concat();
    assert_eq!(offline::pem_or_der_certs(&two)?.len(), 2);

    // Text that happens to start with '0' (the DER SEQUENCE tag) is still PEM.
    let zero_first = [b"0 = the Milan ARK\n".as_slice(), &data("milan-ark.pem")?].concat();
    assert_eq!(
        sha256(
            offline::pem_or_der_certs(&zero_first)?
                .first()
                .map(Vec::as_slice)
        ),
        MILAN_ARK
    );

    let crl_pem = data("milan-crl-2025-05-06.pem")?;
    let crls = offline::pem_or_der(&crl_pem, X509_CRL, Path::new("crl.pem"))?;
    assert_eq!(crls.len(), 1);
    assert_eq!(sha256(Some(&crls[0])), MILAN_CRL);
    match offline::pem_or_der_certs(&crl_pem) {
        Err(KdsError::Pem { .. }) => {}
        other => panic!("a CRL read as certificates: {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Helpers

fn data(name: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let path = data_dir().join(name);
    fs::read(&path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kds")
}

fn copy(name: &str, dir: &Path, as_name: &str) -> Result<(), Box<dyn Error>> {
    fs::write(dir.join(as_name), data(name)?)?;
    Ok(())
}

fn sha256(der: Option<&[u8]>) -> String {
    match der {
        Some(der) => hex::encode(ring::digest::digest(&ring::digest::SHA256, der)),
        None => panic!("certificate missing"),
    }
}

fn file_names(dir: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// A client for the test server: fast retries, no proxy from the environment.
fn builder_for(server: &Server) -> attestation_verifier::kds::client::KdsClientBuilder {
    KdsClient::builder()
        .base_url(&server.base)
        .use_env_proxy(false)
        .retry_backoff(Duration::from_millis(10))
        .time_budget(Duration::from_secs(20))
}

/// One scripted HTTP response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Reply {
        Reply {
            body,
            ..Reply::status(200)
        }
    }

    fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Close the connection without answering.
    fn hang_up() -> Reply {
        Reply::status(0)
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// A minimal HTTP/1.1 server on 127.0.0.1: one thread per connection, `Connection: close`,
/// every request target logged. The handler gets the target and how many earlier requests
/// had the same target.
struct Server {
    base: String,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(
        handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, stop2) = (log.clone(), stop.clone());
        thread::spawn(move || {
            let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, log, seen) = (handler.clone(), log2.clone(), seen.clone());
                thread::spawn(move || serve(conn, &*handler, &log, &seen));
            }
        });
        Ok(Server {
            base: format!("http://{addr}"),
            addr,
            log,
            stop,
        })
    }

    fn requests(&self) -> Vec<String> {
        match self.log.lock() {
            Ok(log) => log.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn count(&self) -> usize {
        self.requests().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut conn: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<String>>,
    seen: &Mutex<HashMap<String, usize>>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (Some("GET"), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let n = {
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        let n = seen.entry(target.to_owned()).or_insert(0);
        *n += 1;
        *n - 1
    };
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(target.to_owned());
    let reply = handler(target, n);
    thread::sleep(reply.delay);
    if reply.status == 0 {
        return;
    }
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(&reply.body);
    let _ = conn.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
