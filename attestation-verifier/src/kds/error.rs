//! Errors of the KDS layer: building URLs, fetching from AMD's key distribution service,
//! the on-disk cache, and reading offline certificate directories.
//!
//! Every variant names the URL or file involved, so a failed verification can say exactly
//! which artifact could not be obtained and why.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::kds::Product;

/// Why a KDS URL could not be built, a certificate could not be fetched, or an offline
/// certificate file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KdsError {
    /// KDS answered 404: it has no such certificate (wrong hardware ID, product or TCB).
    /// Never retried: asking again cannot make it appear.
    #[error("KDS has no certificate at {url} (HTTP 404): check the product, hardware ID and TCB")]
    NotFound {
        /// The URL requested.
        url: String,
    },

    /// KDS kept answering 429 (too many requests) until the retries or the time budget ran out.
    #[error(
        "KDS rate-limited the request for {url} (HTTP 429){}",
        match retry_after {
            Some(d) => format!("; it asked to retry after {} s", d.as_secs()),
            None => String::new(),
        }
    )]
    RateLimited {
        /// The URL requested.
        url: String,
        /// The last `Retry-After` delay KDS asked for, if any.
        retry_after: Option<Duration>,
    },

    /// KDS kept failing with a 5xx status until the retries or the time budget ran out.
    #[error("KDS server error for {url}: HTTP {status} (retries exhausted)")]
    Server {
        /// The URL requested.
        url: String,
        /// The last status received.
        status: u16,
    },

    /// KDS answered with a status that is neither success, 404, 429 nor 5xx; not retried.
    #[error("unexpected HTTP status {status} from KDS for {url}")]
    UnexpectedStatus {
        /// The URL requested.
        url: String,
        /// The status received.
        status: u16,
    },

    /// The total time budget for the fetch (all attempts, waits and retries) ran out.
    #[error("fetching {url} did not finish within its time budget of {after:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The budget that was exceeded.
        after: Duration,
    },

    /// The request could not be sent or the response could not be read (DNS, connection,
    /// TLS, I/O), after any retries.
    #[error("could not reach KDS for {url}: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What the HTTP client reported.
        reason: String,
    },

    /// KDS answered 200 but the body is not what the URL serves (empty, not DER, no PEM
    /// certificates); such a body is never cached.
    #[error("KDS response for {url} is unusable: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong with the body.
        reason: String,
    },

    /// The base URL is not an absolute http(s) URL.
    #[error("KDS base URL '{base}' is unusable: {reason}")]
    BadBaseUrl {
        /// The base URL given.
        base: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Reading or writing the persistent certificate cache failed.
    #[error("KDS certificate cache error at {}: {source}", path.display())]
    Cache {
        /// The cache file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// A hardware ID has the wrong length for its product (64 bytes; 8 on Turin).
    #[error("hardware ID is {actual_len} bytes, but KDS expects {expected_len} for this product")]
    BadHwid {
        /// The length the product uses.
        expected_len: usize,
        /// The length given.
        actual_len: usize,
    },

    /// A Turin CHIP_ID has non-zero bytes after its 8-byte hardware ID, so it is not a Turin
    /// CHIP_ID (or the product is wrong).
    #[error(
        "CHIP_ID is not an 8-byte {product} hardware ID followed by 56 zero bytes; wrong product?"
    )]
    HwidPadding {
        /// The product the CHIP_ID was read for.
        product: Product,
    },

    /// The CHIP_ID is all zeros (MASK_CHIP_ID was set, or the report is VLEK-signed), so no
    /// VCEK can be requested for it.
    #[error("CHIP_ID is all zeros (masked, or a VLEK-signed report): no VCEK can be fetched")]
    MaskedChipId,

    /// The TCB's FMC SPL does not match the product: Turin needs one, Milan/Genoa have none.
    #[error("TCB does not fit {product}: {reason}")]
    TcbLayout {
        /// The product the URL was built for.
        product: Product,
        /// What does not fit.
        reason: &'static str,
    },

    /// A file claimed to be PEM is malformed.
    #[error("bad PEM in {}, line {line}: {reason}", file.display())]
    Pem {
        /// The file (or a description of in-memory input).
        file: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A file claimed to be DER is malformed.
    #[error("bad DER in {}: {reason}", file.display())]
    Der {
        /// The file (or a description of in-memory input).
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A file is neither PEM (no `-----BEGIN` line) nor DER (does not start with a SEQUENCE).
    #[error("{} is neither PEM nor DER", file.display())]
    NotPemOrDer {
        /// The file (or a description of in-memory input).
        file: PathBuf,
    },

    /// A certificate file holds more certificates than its role allows (e.g. an `ark.pem`
    /// with two certificates), so which is which would be a guess.
    #[error("{} holds {found} certificates, at most {max} expected", file.display())]
    TooManyCertificates {
        /// The file.
        file: PathBuf,
        /// The number found.
        found: usize,
        /// The most this file may hold.
        max: usize,
    },

    /// Two files in a certificate directory disagree about the same certificate (e.g.
    /// `ark.pem` and the ARK appended to `ask.pem`), or both a `.pem` and a `.der` exist.
    #[error("conflicting {cert} certificates in {}: {detail}", dir.display())]
    Conflict {
        /// The directory.
        dir: PathBuf,
        /// Which certificate ("ARK", "ASK", ...).
        cert: &'static str,
        /// The files involved.
        detail: String,
    },

    /// A certificate directory holds none of the expected files.
    #[error("no certificate files in {}: expected any of {}", dir.display(), names.join(", "))]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The file names looked for.
        names: Vec<String>,
    },

    /// Reading an offline certificate file or directory failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}
