//! HTTP/1.1 over attested TLS: one verified handshake, then many requests on the connection
//! ([`crate::pool`] keeps them alive). Answers are read whole, up to [`MAX_RESPONSE`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use attestation_verifier::tls::binding::{EXPORTER_LABEL, EXPORTER_LEN};
use keynet_protocol::api::{ErrorBody, ErrorCode};

/// The largest answer read (bytes).
pub const MAX_RESPONSE: usize = 4 << 20;

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// TCP connect failed or timed out.
    #[error("connecting to {endpoint}: {reason}")]
    Connect {
        /// host:port.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (for attested TLS: the node was not verified).
    #[error("TLS handshake with {endpoint}: {reason}")]
    Handshake {
        /// host:port.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The request failed after the connection was made.
    #[error("{endpoint}: {reason}")]
    Request {
        /// host:port.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// A verified connection: the server's certificate and this session's exporter value.
pub struct Opened {
    /// Sends requests on the connection.
    pub sender: SendRequest<Full<Bytes>>,
    /// The server's certificate (DER), verified during the handshake.
    pub cert: Vec<u8>,
    /// The TLS exporter value of this session (binds fresh evidence to it).
    pub exporter: [u8; EXPORTER_LEN],
}

/// Splits `host:port` (IPv6 hosts in brackets).
pub fn split_endpoint(endpoint: &str) -> Option<(String, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
}

/// Connects to `endpoint` (`host:port`) with `config`, which must verify the server.
pub async fn open(
    endpoint: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Opened, HttpError> {
    let connect = |reason: String| HttpError::Connect {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let handshake = |reason: String| HttpError::Handshake {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let (host, port) =
        split_endpoint(endpoint).ok_or_else(|| connect("expected host:port".into()))?;
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| connect(format!("timed out after {timeout:?}")))?
        .map_err(|e| connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host).map_err(|e| connect(e.to_string()))?;
    let tls = tokio::time::timeout(
        timeout,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| handshake(format!("timed out after {timeout:?}")))?
    .map_err(|e| handshake(e.to_string()))?;
    let (cert, exporter) = {
        let conn = tls.get_ref().1;
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .ok_or_else(|| handshake("no certificate".into()))?;
        let mut exporter = [0u8; EXPORTER_LEN];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None)
            .map_err(|e| handshake(e.to_string()))?;
        (cert, exporter)
    };
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| handshake(e.to_string()))?;
    tokio::spawn(async move {
        // Ends when either side closes; errors here only mean the connection is gone.
        let _ = connection.await;
    });
    Ok(Opened {
        sender,
        cert,
        exporter,
    })
}

/// Sends one request and reads the whole answer: (status, body).
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    endpoint: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let fail = |reason: String| HttpError::Request {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, endpoint)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail(e.to_string()))?;
    let exchange = async {
        sender.ready().await.map_err(|e| fail(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        // A node's answers are small; a peer or node that streams more is cut off.
        let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| fail(format!("answer: {e}")))?
            .to_bytes();
        Ok((status, body.to_vec()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer to {method} {path} within {timeout:?}")))?
}

/// A node's error body; an answer that is not one is kept as its text, code `unknown`.
pub fn error_body(answer: &[u8]) -> ErrorBody {
    serde_json::from_slice(answer).unwrap_or_else(|_| ErrorBody {
        code: ErrorCode::Unknown,
        message: String::from_utf8_lossy(answer).into_owned(),
        condition: None,
    })
}
