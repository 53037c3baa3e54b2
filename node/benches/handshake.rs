//! How much a node's attested TLS 1.3 handshake costs a client, against plain rustls TLS
//! 1.3, over loopback TCP, in one run.
//!
//! Each row times sequential handshakes from one client task against one server task on
//! 127.0.0.1, in a tokio multi-thread runtime with 2 workers. Each handshake is a new TCP
//! connection (`TCP_NODELAY` on both ends), a full TLS 1.3 handshake (the client keeps no
//! session, so nothing is resumed), then one round trip of application data: the client
//! sends `ping` and waits for `pong`. The rows:
//!
//! 1. **plain**: rustls with a normal self-signed P-256 certificate (the node's key type,
//!    no evidence). The client accepts exactly that certificate by byte comparison and
//!    checks the TLS 1.3 `CertificateVerify` signature with
//!    [`rustls::crypto::verify_tls13_signature`], so its cryptographic work is that of an
//!    attested handshake with a warm cache; the server asks for no client certificate;
//! 2. **first contact**: the node's attested server (`NodeTls::server_config`, certificate
//!    with simulated SEV-SNP evidence whose roots are 2048-bit RSA), and a client with a
//!    fresh [`NodeVerifier`] for every handshake, so the evidence is verified in full each
//!    time: certificate parsing, the ARK/ASK/VCEK chain, the report signature, the policy
//!    and the REPORT_DATA binding of the TLS key;
//! 3. **warm**: the same server, and one [`NodeVerifier`] shared by all handshakes, which
//!    has accepted the certificate before timing starts, so each handshake costs a SHA-256
//!    of the certificate and a map lookup on top of the signature check;
//! 4. **warm / plain**: the issue's aim is within 1.2x. Printed, never asserted.
//!
//! A handshake's latency runs from the TCP connect to the receipt of `pong`. Teardown
//! (the server closes first, the client reads to the end) is outside the latency but inside
//! the time that gives handshakes per second, which is the number of handshakes over the
//! wall time of their connections, connect to close. Building the fresh verifier and
//! client configuration of row 2 is in neither.
//!
//! Every row first runs for a short pilot (which also warms the cache of row 3 and checks
//! that every row connects) to pick an iteration count giving about 2.5 s per row, unless
//! `--iters N` fixes it. The iterations are then split into ten rounds; each round runs
//! every row once, in an order that rotates from round to round, so that drift in the load
//! of the (shared) machine affects all rows alike. Per row the table gives handshakes per
//! second (median over rounds), and the median, 99th percentile and mean latency over all
//! handshakes; the ratio of a row to plain is the median over rounds of the ratio of their
//! median latencies in the same round. Any failed handshake aborts the bench.
//!
//! ```text
//! cargo bench -p keynode --bench handshake -- [--iters N] [--json]
//! ```

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use attestation_verifier::tls::{AttestedServerVerifier, NodeVerifier};
use attestation_verifier::validate::Policy;
use attestation_verifier::verify::roots::TrustStore;
use keynode::evidence::SimulatedProvider;
use keynode::evidence::simulated::{SimulatedOptions, SimulatedPlatform};
use keynode::identity::Identity;
use keynode::tls::NodeTls;
use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Target wall time of one row when the iteration count is automatic.
const TARGET_ROW: Duration = Duration::from_millis(2500);
/// Duration of the pilot that picks a row's iteration count.
const PILOT: Duration = Duration::from_millis(250);
/// Handshakes per row before timing when `--iters` is given (warm-up and a check).
const WARM_UP: u64 = 5;
/// Rounds each row is split into, alternating between the rows.
const ROUNDS: usize = 10;
/// The issue's aim for warm attested handshakes: within this factor of plain TLS.
const WARM_OVER_PLAIN_AIM: f64 = 1.2;
/// Longest a connection may take, on either end, before the bench gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Worker threads of the runtime.
const WORKERS: usize = 2;
/// The name the client asks for (SNI); both certificates carry it.
const SERVER_NAME: &str = "keynode";
const PING: &[u8; 4] = b"ping";
const PONG: &[u8; 4] = b"pong";

fn main() -> Result<()> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let options = Options::parse(&args)?;

    eprintln!("bench: generating the simulated platform and both certificates ...");
    let setup = Setup::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let document = runtime.block_on(async move {
        // The client runs as a task on the workers, like the servers, not on this thread.
        tokio::spawn(run(setup, options.iters))
            .await
            .context("the client task panicked")?
    })?;

    if options.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", table(&document));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// The bench's own flags. `--bench`, which cargo passes, is ignored.
struct Options {
    iters: Option<u64>,
    json: bool,
}

impl Options {
    fn parse(args: &[OsString]) -> Result<Self> {
        let mut options = Options {
            iters: None,
            json: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.to_str() {
                Some("--iters") => {
                    let v = it.next().context("--iters needs a value")?;
                    let v = v
                        .to_str()
                        .with_context(|| format!("--iters: {v:?} is not UTF-8"))?;
                    options.iters =
                        Some(v.parse().ok().filter(|&n: &u64| n > 0).with_context(|| {
                            format!("--iters: {v:?} is not a positive integer")
                        })?);
                }
                Some("--json") => options.json = true,
                Some("--bench") => {}
                _ => eprintln!("bench: ignoring argument {arg:?}"),
            }
        }
        Ok(options)
    }
}

// ---------------------------------------------------------------------------------------
// The servers and the clients
// ---------------------------------------------------------------------------------------

/// Everything made before the runtime starts: the listeners (bound, so the node's
/// certificate can name its real endpoint) and the configurations of both ends.
struct Setup {
    plain_listener: std::net::TcpListener,
    attested_listener: std::net::TcpListener,
    plain_server: rustls::ServerConfig,
    attested_server: rustls::ServerConfig,
    plain_cert: CertificateDer<'static>,
    attested_cert: CertificateDer<'static>,
    trust: TrustStore,
    policy: Policy,
    provider: Arc<CryptoProvider>,
}

impl Setup {
    fn new() -> Result<Self> {
        let bind = || -> Result<std::net::TcpListener> {
            let l =
                std::net::TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?;
            l.set_nonblocking(true)
                .context("cannot make a listener non-blocking")?;
            Ok(l)
        };
        let plain_listener = bind()?;
        let attested_listener = bind()?;
        let endpoint = attested_listener
            .local_addr()
            .context("the attested listener has no address")?
            .to_string();
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        // The node: simulated platform (2048-bit roots, as in the tests), identity key,
        // TLS key and certificate with evidence, and the node's own server configuration.
        let platform = SimulatedPlatform::generate(SimulatedOptions {
            rsa_bits: 2048,
            ..SimulatedOptions::default()
        })
        .context("cannot generate the simulated platform")?;
        let trust = TrustStore::amd().with_simulated(platform.anchor());
        let policy = Policy {
            measurements: vec![platform.measurement()],
            ..Policy::default()
        };
        let identity = Identity::generate().public_compressed();
        let node = NodeTls::create(&SimulatedProvider(platform), &identity, &endpoint, &[0; 32])
            .context("cannot create the node's attested TLS identity")?;
        // Users present no certificate, so the server's peer verifier is never consulted.
        let attested_server = node
            .server_config(Arc::new(NodeVerifier::new(trust.clone(), policy.clone())))
            .context("cannot build the node's server configuration")?;
        let attested_cert = CertificateDer::from(node.cert_der().to_vec());

        // Plain TLS: the same key type and names, no evidence.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .context("cannot generate the plain server's P-256 key")?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_owned()])
            .context("cannot make the plain certificate's parameters")?;
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        let cert = params
            .self_signed(&key)
            .context("cannot self-sign the plain certificate")?;
        let plain_cert = CertificateDer::from(cert.der().to_vec());
        let plain_server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("ring does not offer TLS 1.3")?
            .with_no_client_auth()
            .with_single_cert(
                vec![plain_cert.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .context("cannot build the plain server configuration")?;

        Ok(Setup {
            plain_listener,
            attested_listener,
            plain_server,
            attested_server,
            plain_cert,
            attested_cert,
            trust,
            policy,
            provider,
        })
    }
}

/// Accepts the plain server's certificate only, byte for byte, and verifies the handshake
/// signature as any verifier must: the cryptographic work of an attested verifier whose
/// cache already holds the certificate.
#[derive(Debug)]
struct PinnedServerVerifier {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() && intermediates.is_empty() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rows, in their table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    Plain,
    FirstContact,
    Warm,
}

const ROWS: [Row; 3] = [Row::Plain, Row::FirstContact, Row::Warm];

impl Row {
    fn index(self) -> usize {
        match self {
            Row::Plain => 0,
            Row::FirstContact => 1,
            Row::Warm => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Row::Plain => "plain",
            Row::FirstContact => "first contact",
            Row::Warm => "warm",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Row::Plain => "(1) plain rustls, pinned P-256 self-signed",
            Row::FirstContact => "(2) attested, first contact (fresh verifier)",
            Row::Warm => "(3) attested, warm cache (shared verifier)",
        }
    }
}

/// The client's side of every row.
struct Client {
    plain_addr: SocketAddr,
    attested_addr: SocketAddr,
    plain: TlsConnector,
    /// Row 3's verifier, shared by all its handshakes.
    warm_nodes: Arc<NodeVerifier>,
    warm: TlsConnector,
    attested_cert: CertificateDer<'static>,
    trust: TrustStore,
    policy: Policy,
    provider: Arc<CryptoProvider>,
    server_name: ServerName<'static>,
}

/// A TLS 1.3 client configuration with this verifier and without session resumption, so
/// that every handshake is a full one.
fn connector(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<TlsConnector> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("ring does not offer TLS 1.3")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Client {
    /// A verifier that has verified nothing yet.
    fn fresh_nodes(&self) -> Arc<NodeVerifier> {
        Arc::new(NodeVerifier::new(self.trust.clone(), self.policy.clone()))
    }

    /// What one handshake of `row` connects with, and to where. Row 2 gets a new verifier
    /// and configuration each time (made before its timing starts).
    fn target(&self, row: Row) -> Result<(TlsConnector, SocketAddr)> {
        Ok(match row {
            Row::Plain => (self.plain.clone(), self.plain_addr),
            Row::FirstContact => (
                connector(
                    &self.provider,
                    Arc::new(AttestedServerVerifier::new(self.fresh_nodes())),
                )?,
                self.attested_addr,
            ),
            Row::Warm => (self.warm.clone(), self.attested_addr),
        })
    }

    /// One timed handshake of `row`.
    async fn handshake(&self, row: Row) -> Result<Sample> {
        let (connector, addr) = self.target(row)?;
        tokio::time::timeout(
            IO_TIMEOUT,
            exchange(&connector, self.server_name.clone(), addr),
        )
        .await
        .with_context(|| format!("{}: no answer within {IO_TIMEOUT:?}", row.name()))?
        .with_context(|| format!("{}: handshake failed", row.name()))
    }
}

/// One connection's timings.
struct Sample {
    /// Connect to `pong` received.
    latency: Duration,
    /// Connect to the end of the connection.
    cycle: Duration,
}

/// The client's side of one connection: connect, handshake, `ping`/`pong`, teardown.
async fn exchange(
    connector: &TlsConnector,
    server_name: ServerName<'static>,
    addr: SocketAddr,
) -> Result<Sample> {
    let start = Instant::now();
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let mut tls = connector
        .connect(server_name, tcp)
        .await
        .context("TLS handshake")?;
    tls.write_all(PING).await.context("sending ping")?;
    tls.flush().await.context("sending ping")?;
    let mut reply = [0u8; PONG.len()];
    tls.read_exact(&mut reply).await.context("reading pong")?;
    let latency = start.elapsed();
    ensure!(&reply == PONG, "the server answered {reply:?}, not pong");
    // The server closes first (close_notify, then FIN), so TIME_WAIT stays on its side and
    // the client's ephemeral ports are not used up.
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)
        .await
        .context("waiting for the server to close")?;
    ensure!(
        rest.is_empty(),
        "the server sent {} bytes after pong",
        rest.len()
    );
    drop(tls);
    Ok(Sample {
        latency,
        cycle: start.elapsed(),
    })
}

/// One server task: answers connections one at a time, as the client makes them.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, name: &'static str) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                eprintln!("bench: {name} server: accept failed, stopping: {e}");
                return;
            }
        };
        match tokio::time::timeout(IO_TIMEOUT, answer(&acceptor, tcp)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("bench: {name} server: {e:#}"),
            Err(_) => eprintln!("bench: {name} server: connection timed out"),
        }
    }
}

/// The server's side of one connection.
async fn answer(acceptor: &TlsAcceptor, tcp: TcpStream) -> Result<()> {
    tcp.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let mut tls = acceptor.accept(tcp).await.context("TLS handshake")?;
    let mut request = [0u8; PING.len()];
    tls.read_exact(&mut request).await.context("reading ping")?;
    ensure!(&request == PING, "the client sent {request:?}, not ping");
    tls.write_all(PONG).await.context("sending pong")?;
    tls.shutdown().await.context("closing")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------

/// Starts both servers, checks every row, times the rows and summarises them.
async fn run(setup: Setup, iters: Option<u64>) -> Result<Document> {
    let plain_addr = setup
        .plain_listener
        .local_addr()
        .context("the plain listener has no address")?;
    let attested_addr = setup
        .attested_listener
        .local_addr()
        .context("the attested listener has no address")?;
    let servers = [
        tokio::spawn(serve(
            TcpListener::from_std(setup.plain_listener).context("cannot adopt a listener")?,
            TlsAcceptor::from(Arc::new(setup.plain_server)),
            "plain",
        )),
        tokio::spawn(serve(
            TcpListener::from_std(setup.attested_listener).context("cannot adopt a listener")?,
            TlsAcceptor::from(Arc::new(setup.attested_server)),
            "attested",
        )),
    ];

    let warm_nodes = Arc::new(NodeVerifier::new(setup.trust.clone(), setup.policy.clone()));
    let client = Client {
        plain_addr,
        attested_addr,
        plain: connector(
            &setup.provider,
            Arc::new(PinnedServerVerifier {
                cert: setup.plain_cert.clone(),
                provider: setup.provider.clone(),
            }),
        )?,
        warm: connector(
            &setup.provider,
            Arc::new(AttestedServerVerifier::new(warm_nodes.clone())),
        )?,
        warm_nodes,
        attested_cert: setup.attested_cert.clone(),
        trust: setup.trust,
        policy: setup.policy,
        provider: setup.provider,
        server_name: ServerName::try_from(SERVER_NAME)
            .context("the server name is not a DNS name")?
            .to_owned(),
    };

    let result = measure(&client, iters).await;
    for server in &servers {
        server.abort();
    }
    let rows = result?;

    let [plain, first, warm] = rows;
    Ok(Document {
        transport: "TCP over 127.0.0.1, TCP_NODELAY, one client task, one server task per \
                    server (plain, attested)",
        runtime: format!("tokio multi-thread, {WORKERS} workers"),
        iterations: iters.map_or_else(
            || format!("auto (~{:.1} s per row)", TARGET_ROW.as_secs_f64()),
            |n| n.to_string(),
        ),
        rounds: ROUNDS,
        plain_cert_bytes: setup.plain_cert.len(),
        attested_cert_bytes: setup.attested_cert.len(),
        first_over_plain: paired_ratio(&first, &plain),
        warm_over_plain: paired_ratio(&warm, &plain),
        warm_over_plain_of_medians: warm.median_us / plain.median_us,
        warm_over_plain_aim: WARM_OVER_PLAIN_AIM,
        plain,
        first_contact: first,
        warm,
    })
}

/// Picks each row's iteration count (a pilot, unless `iters` fixes it; either way the
/// warm row's cache is filled), then runs the rows in [`ROUNDS`] rounds in rotating
/// order.
async fn measure(client: &Client, iters: Option<u64>) -> Result<[RowResult; 3]> {
    let mut counts = [0u64; 3];
    for row in ROWS {
        counts[row.index()] = match iters {
            Some(n) => {
                for _ in 0..WARM_UP {
                    client.handshake(row).await?;
                }
                n
            }
            None => {
                let start = Instant::now();
                let mut n: u64 = 0;
                while n < 3 || start.elapsed() < PILOT {
                    client.handshake(row).await?;
                    n += 1;
                }
                let per_handshake = start.elapsed().as_secs_f64() / n as f64;
                ((TARGET_ROW.as_secs_f64() / per_handshake).ceil() as u64)
                    .clamp(ROUNDS as u64, 10_000_000)
            }
        };
        eprintln!(
            "bench: {:<13} {} handshakes",
            row.name(),
            counts[row.index()]
        );
    }
    ensure!(
        client
            .warm_nodes
            .cached(&client.attested_cert, unix_now())
            .is_some(),
        "the shared verifier did not cache the node's certificate: row 3 would not be warm"
    );

    let mut samples: [Vec<Vec<Sample>>; 3] = std::array::from_fn(|_| Vec::with_capacity(ROUNDS));
    for round in 0..ROUNDS {
        for k in 0..ROWS.len() {
            let row = ROWS[(round + k) % ROWS.len()];
            let i = row.index();
            // Spread the count over the rounds; the first rounds take the remainder.
            let n =
                counts[i] / ROUNDS as u64 + u64::from((round as u64) < counts[i] % ROUNDS as u64);
            let mut this_round = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for _ in 0..n {
                this_round.push(client.handshake(row).await?);
            }
            samples[i].push(this_round);
        }
    }
    Ok(ROWS.map(|row| RowResult::of(row, &samples[row.index()])))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Document {
    transport: &'static str,
    runtime: String,
    /// Handshakes per row, or how their number was chosen.
    iterations: String,
    rounds: usize,
    plain_cert_bytes: usize,
    /// The node's certificate, evidence included.
    attested_cert_bytes: usize,
    /// (1) plain rustls TLS 1.3.
    plain: RowResult,
    /// (2) attested, a fresh verifier per handshake.
    first_contact: RowResult,
    /// (3) attested, one verifier with the certificate cached.
    warm: RowResult,
    /// Median over rounds of (first contact's median latency / plain's) in each round.
    first_over_plain: f64,
    /// (4) median over rounds of (warm's median latency / plain's) in each round.
    warm_over_plain: f64,
    /// Warm's median latency over plain's, over all handshakes.
    warm_over_plain_of_medians: f64,
    warm_over_plain_aim: f64,
}

#[derive(Serialize)]
struct RowResult {
    row: &'static str,
    handshakes: usize,
    /// Median over rounds of handshakes per second of connection wall time.
    handshakes_per_s: f64,
    /// Latency, connect to `pong`, over all handshakes.
    median_us: f64,
    p99_us: f64,
    mean_us: f64,
    min_us: f64,
    max_us: f64,
    rounds: Vec<RoundResult>,
}

#[derive(Serialize)]
struct RoundResult {
    handshakes: usize,
    median_us: f64,
    handshakes_per_s: f64,
}

impl RowResult {
    fn of(row: Row, rounds: &[Vec<Sample>]) -> Self {
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let rounds_out: Vec<RoundResult> = rounds
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| RoundResult {
                handshakes: r.len(),
                median_us: median(r.iter().map(|s| micros(s.latency)).collect()),
                handshakes_per_s: r.len() as f64
                    / r.iter().map(|s| s.cycle.as_secs_f64()).sum::<f64>(),
            })
            .collect();
        let mut all: Vec<f64> = rounds.iter().flatten().map(|s| micros(s.latency)).collect();
        all.sort_by(f64::total_cmp);
        RowResult {
            row: row.name(),
            handshakes: all.len(),
            handshakes_per_s: median(rounds_out.iter().map(|r| r.handshakes_per_s).collect()),
            median_us: median(all.clone()),
            p99_us: percentile(&all, 0.99),
            mean_us: all.iter().sum::<f64>() / all.len() as f64,
            min_us: all.first().copied().unwrap_or(f64::NAN),
            max_us: all.last().copied().unwrap_or(f64::NAN),
            rounds: rounds_out,
        }
    }
}

/// The nearest-rank percentile `p` (0 to 1) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median over rounds of `row`'s median latency over `base`'s in the same round
/// (adjacent in time, so equally affected by slow changes in machine load).
fn paired_ratio(row: &RowResult, base: &RowResult) -> f64 {
    median(
        row.rounds
            .iter()
            .zip(&base.rounds)
            .map(|(r, b)| r.median_us / b.median_us)
            .collect(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[mid],
        _ => (v[mid - 1] + v[mid]) / 2.0,
    }
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

fn table(d: &Document) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "TLS 1.3 handshakes over loopback: plain rustls vs the node's attested TLS \
         (simulated SEV-SNP, 2048-bit RSA roots)"
    );
    let _ = writeln!(
        w,
        "{}; {}; each handshake a new connection, full handshake (no resumption) + \
         4-byte ping/pong",
        d.transport, d.runtime
    );
    let _ = writeln!(
        w,
        "handshakes per row: {}, in {} rounds rotating between rows; certificates: plain {} \
         bytes, attested {} bytes",
        d.iterations, d.rounds, d.plain_cert_bytes, d.attested_cert_bytes
    );
    let _ = writeln!(
        w,
        "latency = connect to pong; hs/s = median over rounds of handshakes per second of \
         connection time (connect to close); x plain = median over rounds of the ratio of \
         median latencies"
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  {:<46} {:>7} {:>8} {:>10} {:>10} {:>10} {:>8}",
        "row", "n", "hs/s", "median µs", "p99 µs", "mean µs", "x plain"
    );
    for (r, ratio) in [
        (&d.plain, 1.0),
        (&d.first_contact, d.first_over_plain),
        (&d.warm, d.warm_over_plain),
    ] {
        let label = ROWS
            .iter()
            .find(|row| row.name() == r.row)
            .map_or(r.row, |row| row.label());
        let _ = writeln!(
            w,
            "  {:<46} {:>7} {:>8.0} {:>10.1} {:>10.1} {:>10.1} {:>8.2}",
            label, r.handshakes, r.handshakes_per_s, r.median_us, r.p99_us, r.mean_us, ratio
        );
    }
    let _ = writeln!(
        w,
        "  {:<46} {:.2}x plain ({:.2}x by overall medians; aim: within {:.1}x: {})",
        "(4) warm / plain, per-round median",
        d.warm_over_plain,
        d.warm_over_plain_of_medians,
        d.warm_over_plain_aim,
        if d.warm_over_plain <= d.warm_over_plain_aim {
            "met"
        } else {
            "NOT met"
        }
    );
    s
}
