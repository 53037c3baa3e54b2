//! A blocking client for AMD's key distribution service (KDS), with a persistent on-disk
//! cache, one request at a time per URL, a bounded total time per fetch, and KDS's answers
//! told apart: 404 (no such certificate, never retried), 429 (rate-limited: `Retry-After`
//! is honoured within the budget) and 5xx (retried with exponential backoff).
//!
//! VCEKs and certificate chains never change for a URL, so they are cached forever. CRLs
//! are cached too, but [`KdsClient::fetch_crl`] takes a maximum age so stale lists are
//! refreshed (the cache file's modification time is the fetch time).
//!
//! Cache entries are written to a temporary file and renamed into place, so a crash never
//! leaves a torn entry. Bodies are sanity-checked (DER for VCEKs and CRLs, PEM certificates
//! for chains) before they are cached, so an error page served with status 200 is never
//! stored.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::abi::tcb::Tcb;
use crate::kds::offline::{self, CERTIFICATE};
use crate::kds::urls::{self, KDS_BASE, KeyKind};
use crate::kds::{KdsError, Product};

/// Default total time for one fetch, all attempts and waits included.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(30);

/// Default number of retries after the first attempt (for 429, 5xx and transport errors).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Default wait before the first retry; it doubles for each further retry.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// Longest wait between two attempts when KDS gives no `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Budgets above this are clamped, so deadline arithmetic cannot overflow.
const MAX_TIME_BUDGET: Duration = Duration::from_secs(24 * 60 * 60);

/// Largest body accepted: KDS artifacts are a few kilobytes.
const MAX_BODY: u64 = 1 << 20;

/// A KDS client. Share one per process (it is `Sync`): the one-request-per-URL guarantee
/// and the in-memory cache are per client.
pub struct KdsClient {
    base: String,
    cache_dir: Option<PathBuf>,
    budget: Duration,
    max_retries: u32,
    backoff: Duration,
    agent: ureq::Agent,
    /// Fetched bodies and when they were fetched, so a client without a cache directory
    /// still fetches each URL once.
    memory: Mutex<HashMap<String, (Vec<u8>, SystemTime)>>,
    in_flight: KeyLocks,
}

/// Configuration of a [`KdsClient`]; see [`KdsClient::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct KdsClientBuilder {
    base: String,
    cache_dir: Option<PathBuf>,
    budget: Duration,
    max_retries: u32,
    backoff: Duration,
    user_agent: String,
    env_proxy: bool,
}

impl KdsClient {
    /// A builder with the defaults: AMD's KDS, no persistent cache, a 30 s budget per fetch,
    /// 3 retries starting at 500 ms, proxy settings from the environment.
    pub fn builder() -> KdsClientBuilder {
        KdsClientBuilder {
            base: KDS_BASE.to_owned(),
            cache_dir: None,
            budget: DEFAULT_TIME_BUDGET,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: DEFAULT_RETRY_BACKOFF,
            user_agent: concat!("attestation-verifier/", env!("CARGO_PKG_VERSION")).to_owned(),
            env_proxy: true,
        }
    }

    /// The base URL requests go to (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The persistent cache directory, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// The VCEK (DER) of the chip whose report carries `chip_id`, at the report's TCB.
    pub fn fetch_vcek(
        &self,
        product: Product,
        chip_id: &[u8; 64],
        tcb: &Tcb,
    ) -> Result<Vec<u8>, KdsError> {
        let hwid = urls::hwid_from_chip_id(product, chip_id)?;
        let url = urls::vcek_url(&self.base, product, &hwid, tcb)?;
        self.fetch_checked(&url, None, Expect::Der)
    }

    /// The product's ASK then ARK (VCEK) or ASVK then ARK (VLEK), as the PEM KDS serves.
    pub fn fetch_cert_chain(&self, product: Product, kind: KeyKind) -> Result<Vec<u8>, KdsError> {
        let url = urls::cert_chain_url(&self.base, product, kind);
        self.fetch_checked(&url, None, Expect::PemCerts)
    }

    /// The product's ARK-signed CRL (DER). A cached copy older than `max_age` is fetched
    /// again (`Duration::ZERO` always refetches); if that fails, the error is returned rather
    /// than the stale copy.
    pub fn fetch_crl(
        &self,
        product: Product,
        kind: KeyKind,
        max_age: Duration,
    ) -> Result<Vec<u8>, KdsError> {
        let url = urls::crl_url(&self.base, product, kind);
        self.fetch_checked(&url, Some(max_age), Expect::Der)
    }

    /// Any URL's non-empty body, from the cache if there (cached forever), otherwise from
    /// the network with the client's retry and time-budget rules.
    pub fn fetch(&self, url: &str) -> Result<Vec<u8>, KdsError> {
        self.fetch_checked(url, None, Expect::NonEmpty)
    }

    /// The fetch procedure: wait for the URL's lock, answer from the cache, or download,
    /// check and cache — all within one deadline.
    fn fetch_checked(
        &self,
        url: &str,
        max_age: Option<Duration>,
        expect: Expect,
    ) -> Result<Vec<u8>, KdsError> {
        let deadline = Instant::now() + self.budget;
        let timeout = || KdsError::Timeout {
            url: url.to_owned(),
            after: self.budget,
        };
        // Concurrent callers for one URL queue here; the first downloads, the others then
        // find its result in the cache.
        let _guard = self.in_flight.acquire(url, deadline).ok_or_else(timeout)?;
        if let Some(hit) = self.cached(url, max_age, expect)? {
            return Ok(hit);
        }
        let body = self.download(url, deadline)?;
        expect
            .check(&body)
            .map_err(|reason| KdsError::BadResponse {
                url: url.to_owned(),
                reason,
            })?;
        self.store(url, &body)?;
        Ok(body)
    }

    /// A fresh, well-formed cached body: from memory, else from disk. Entries that are
    /// stale or fail the check are misses (and will be overwritten).
    fn cached(
        &self,
        url: &str,
        max_age: Option<Duration>,
        expect: Expect,
    ) -> Result<Option<Vec<u8>>, KdsError> {
        if let Some((body, fetched)) = lock(&self.memory).get(url)
            && is_fresh(*fetched, max_age)
            && expect.check(body).is_ok()
        {
            return Ok(Some(body.clone()));
        }
        let Some(dir) = &self.cache_dir else {
            return Ok(None);
        };
        let path = dir.join(cache_file_name(url));
        let cache_err = |source| KdsError::Cache {
            path: path.clone(),
            source,
        };
        let body = match fs::read(&path) {
            Ok(body) => body,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_err(e)),
        };
        let fetched = fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(cache_err)?;
        if !is_fresh(fetched, max_age) || expect.check(&body).is_err() {
            return Ok(None);
        }
        lock(&self.memory).insert(url.to_owned(), (body.clone(), fetched));
        Ok(Some(body))
    }

    /// Puts a checked body in the disk cache (atomically) and the memory cache. A disk
    /// failure is an error: a configured cache that silently does not cache would make
    /// every verification hit KDS.
    fn store(&self, url: &str, body: &[u8]) -> Result<(), KdsError> {
        if let Some(dir) = &self.cache_dir {
            write_atomically(dir, &cache_file_name(url), body)?;
        }
        lock(&self.memory).insert(url.to_owned(), (body.to_vec(), SystemTime::now()));
        Ok(())
    }

    /// Attempts the download until success, a final answer, the retry limit or the deadline.
    fn download(&self, url: &str, deadline: Instant) -> Result<Vec<u8>, KdsError> {
        let mut backoff = self.backoff;
        let mut retries = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(KdsError::Timeout {
                    url: url.to_owned(),
                    after: self.budget,
                });
            }
            let (err, wait) = match self.attempt(url, remaining) {
                Attempt::Done(body) => return Ok(body),
                Attempt::Final(err) => return Err(err),
                Attempt::Retry { err, wait } => (err, wait.unwrap_or(backoff)),
            };
            // Give up with the real cause when out of retries, or when the wait alone
            // would overrun the budget (e.g. a Retry-After of an hour).
            let remaining = deadline.saturating_duration_since(Instant::now());
            if retries >= self.max_retries || wait >= remaining {
                return Err(err);
            }
            thread::sleep(wait);
            retries += 1;
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
        }
    }

    /// One GET, limited to the remaining budget, classified.
    fn attempt(&self, url: &str, remaining: Duration) -> Attempt {
        let transport = |e: ureq::Error| match e {
            ureq::Error::Timeout(_) => Attempt::Final(KdsError::Timeout {
                url: url.to_owned(),
                after: self.budget,
            }),
            e => {
                let transient = is_transient(&e);
                let err = KdsError::Transport {
                    url: url.to_owned(),
                    reason: e.to_string(),
                };
                if transient {
                    Attempt::Retry { err, wait: None }
                } else {
                    Attempt::Final(err)
                }
            }
        };
        let response = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(remaining))
            .build()
            .call();
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let url = url.to_owned();
        match response.status().as_u16() {
            200 => match response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
            {
                Ok(body) => Attempt::Done(body),
                Err(e) => transport(e),
            },
            404 => Attempt::Final(KdsError::NotFound { url }),
            429 => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                Attempt::Retry {
                    err: KdsError::RateLimited { url, retry_after },
                    wait: retry_after,
                }
            }
            status @ 500..=599 => Attempt::Retry {
                err: KdsError::Server { url, status },
                wait: None,
            },
            status => Attempt::Final(KdsError::UnexpectedStatus { url, status }),
        }
    }
}

impl KdsClientBuilder {
    /// Where KDS is: AMD's by default; e.g. `http://127.0.0.1:8080` for a test server or a
    /// caching proxy.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.base = base.into();
        self
    }

    /// A directory for the persistent cache (created on first write).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Total time for one fetch: waiting for a concurrent fetch of the same URL, every
    /// attempt and every wait between attempts. Clamped to 24 hours.
    pub fn time_budget(mut self, budget: Duration) -> Self {
        self.budget = budget.min(MAX_TIME_BUDGET);
        self
    }

    /// Retries after the first attempt for 429, 5xx and transient transport errors.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait before the first retry when KDS gives no `Retry-After`; it doubles for each
    /// further retry, up to 8 s.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff.min(MAX_BACKOFF);
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Whether to use a proxy from `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` (default true).
    pub fn use_env_proxy(mut self, yes: bool) -> Self {
        self.env_proxy = yes;
        self
    }

    /// The client. Fails if the base URL is not an absolute http(s) URL.
    pub fn build(self) -> Result<KdsClient, KdsError> {
        let base = self.base.trim_end_matches('/').to_owned();
        check_base(&base).map_err(|reason| KdsError::BadBaseUrl {
            base: self.base.clone(),
            reason,
        })?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(self.user_agent.as_str());
        if !self.env_proxy {
            config = config.proxy(None);
        }
        Ok(KdsClient {
            base,
            cache_dir: self.cache_dir,
            budget: self.budget,
            max_retries: self.max_retries,
            backoff: self.backoff,
            agent: config.build().into(),
            memory: Mutex::new(HashMap::new()),
            in_flight: KeyLocks::default(),
        })
    }
}

/// What a body must look like to be returned and cached.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Anything but empty.
    NonEmpty,
    /// Exactly one DER SEQUENCE (a certificate or CRL).
    Der,
    /// PEM text with at least one certificate.
    PemCerts,
}

impl Expect {
    fn check(self, body: &[u8]) -> Result<(), String> {
        if body.is_empty() {
            return Err("empty body".to_owned());
        }
        match self {
            Expect::NonEmpty => Ok(()),
            Expect::Der => match offline::der_sequence_len(body) {
                Ok(len) if len == body.len() => Ok(()),
                Ok(len) => Err(format!("{} bytes after the DER SEQUENCE", body.len() - len)),
                Err(reason) => Err(format!("not DER: {reason}")),
            },
            Expect::PemCerts => {
                let text = std::str::from_utf8(body).map_err(|_| "not PEM text".to_owned())?;
                offline::pem_blocks(text, CERTIFICATE, Path::new("response"))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// How one attempt ended.
enum Attempt {
    Done(Vec<u8>),
    /// No point retrying.
    Final(KdsError),
    /// Worth retrying, after `wait` if the server said so.
    Retry {
        err: KdsError,
        wait: Option<Duration>,
    },
}

/// Errors that may go away on their own: connection and I/O trouble, DNS hiccups.
fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// `Retry-After` as delay-seconds or an HTTP-date (past dates mean "now").
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// Whether an entry fetched at `fetched` may still be used; `None` means forever. A
/// modification time in the future (clock change) counts as fresh.
fn is_fresh(fetched: SystemTime, max_age: Option<Duration>) -> bool {
    match max_age {
        None => true,
        Some(max) => SystemTime::now()
            .duration_since(fetched)
            .map_or(true, |age| age <= max),
    }
}

/// Rejects base URLs that would build nonsense URLs: not http(s), no host, or carrying a
/// query or fragment.
fn check_base(base: &str) -> Result<(), &'static str> {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

/// A readable, collision-free cache file name: a sanitized prefix of the URL's path (e.g.
/// `vcek_v1_Milan_cert_chain`) and the SHA-256 of the whole URL, base included.
fn cache_file_name(url: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let mut prefix = String::new();
    for c in path.chars() {
        if prefix.len() >= 40 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            prefix.push(c);
        } else if !prefix.is_empty() && !prefix.ends_with('_') {
            prefix.push('_');
        }
    }
    let prefix = prefix.trim_end_matches('_');
    format!("{prefix}-{}.bin", hex::encode(digest.as_ref()))
}

/// Writes `dir/name` so that readers see either the old file or the complete new one:
/// a uniquely named temporary file in the same directory, synced, then renamed over.
fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> Result<(), KdsError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(dir).map_err(|source| KdsError::Cache {
        path: dir.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let target = dir.join(name);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &target)
    })();
    if let Err(source) = written {
        // Best effort: the temporary file is garbage either way.
        let _ = fs::remove_file(&tmp);
        return Err(KdsError::Cache {
            path: target,
            source,
        });
    }
    // Make the rename itself durable where directories can be synced (not on Windows).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a single map operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The URLs being fetched right now, so at most one request per URL is in flight; waiters
/// give up at their deadline.
#[derive(Default)]
struct KeyLocks {
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// Holds a URL's slot in [`KeyLocks`] until dropped.
struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
}

impl KeyLocks {
    /// Waits until no one else holds `key`, then holds it; `None` if `deadline` passes first.
    fn acquire(&self, key: &str, deadline: Instant) -> Option<KeyGuard<'_>> {
        let mut busy = lock(&self.busy);
        while busy.contains(key) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return None;
            }
            busy = self
                .freed
                .wait_timeout(busy, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        busy.insert(key.to_owned());
        Some(KeyGuard {
            locks: self,
            key: key.to_owned(),
        })
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.locks.busy).remove(&self.key);
        self.locks.freed.notify_all();
    }
}
