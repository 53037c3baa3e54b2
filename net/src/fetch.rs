//! A plain `GET` of an `http://` or `https://` URL, for documents whose integrity comes from
//! their own signature (the staking registry): `https` is verified against the web's roots
//! compiled in (`webpki-roots`; the guest has no CA store) all the same. Bounded: one time
//! budget for every attempt together, answers cut at a size, at most [`MAX_REDIRECTS`]
//! redirects (never from `https` to `http`). Transient failures (no connection, a 5xx, a
//! cut answer) are retried with backoff while the budget lasts; a 4xx is final.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct FetchError {
    /// The URL.
    pub url: String,
    /// Why (the last attempt's reason when the budget ran out).
    pub reason: String,
}

/// Redirects followed at most (a registry behind a release-asset or CDN URL redirects once
/// or twice).
pub const MAX_REDIRECTS: usize = 5;

enum Attempt {
    Retry(String),
    Final(String),
    Redirect(String),
}

/// The body of `url` if it answers 200 within `budget`, at most `max_bytes` long.
pub async fn fetch(url: &str, budget: Duration, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let fail = |reason: String| FetchError {
        url: url.to_owned(),
        reason,
    };
    let mut target = Target::parse(url).map_err(fail)?;
    let deadline = Instant::now() + budget;
    let mut backoff = Duration::from_millis(250);
    let mut redirects = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let reason = match tokio::time::timeout(remaining, target.get(max_bytes)).await {
            Ok(Ok(body)) => return Ok(body),
            Ok(Err(Attempt::Final(reason))) => return Err(fail(reason)),
            Ok(Err(Attempt::Redirect(location))) => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(fail(format!("more than {MAX_REDIRECTS} redirects")));
                }
                target = target.follow(&location).map_err(fail)?;
                continue;
            }
            Ok(Err(Attempt::Retry(reason))) => reason,
            Err(_) => format!("no answer within {budget:?}"),
        };
        if Instant::now() + backoff >= deadline {
            return Err(fail(reason));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => return Err(format!("scheme {other:?}: only http and https")),
        };
        let host = uri.host().ok_or("no host")?;
        Ok(Target {
            tls,
            host: host.trim_matches(['[', ']']).to_owned(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    /// Where a redirect to `location` (absolute, or a path on the same server) leads.
    fn follow(&self, location: &str) -> Result<Target, String> {
        let next = if location.starts_with('/') {
            Target {
                path: location.to_owned(),
                host: self.host.clone(),
                ..*self
            }
        } else {
            Target::parse(location).map_err(|e| format!("redirect to {location:?}: {e}"))?
        };
        if self.tls && !next.tls {
            return Err(format!("refusing a redirect from https to {location}"));
        }
        Ok(next)
    }

    async fn get(&self, max_bytes: usize) -> Result<Vec<u8>, Attempt> {
        let retry = |what: &str, e: &dyn std::fmt::Display| Attempt::Retry(format!("{what}: {e}"));
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| retry("connecting", &e))?;
        if self.tls {
            let name = ServerName::try_from(self.host.clone())
                .map_err(|e| Attempt::Final(format!("host: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(web_config().map_err(Attempt::Final)?)
                .connect(name, tcp)
                .await
                .map_err(|e| retry("TLS", &e))?;
            self.exchange(hyper_util::rt::TokioIo::new(stream), max_bytes)
                .await
        } else {
            self.exchange(hyper_util::rt::TokioIo::new(tcp), max_bytes)
                .await
        }
    }

    async fn exchange<IO>(&self, io: IO, max_bytes: usize) -> Result<Vec<u8>, Attempt>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let retry = |e: &dyn std::fmt::Display| Attempt::Retry(e.to_string());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| retry(&e))?;
        tokio::spawn(async move {
            // Ends with the connection; an error here only means it is gone.
            let _ = conn.await;
        });
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let req = hyper::Request::get(self.path.as_str())
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| Attempt::Final(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| retry(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            return match resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            {
                Some(l) => Err(Attempt::Redirect(l.to_owned())),
                None => Err(Attempt::Final(format!(
                    "answered {status} without a Location"
                ))),
            };
        }
        if status.is_server_error() {
            return Err(Attempt::Retry(format!("answered {status}")));
        }
        if status != hyper::StatusCode::OK {
            return Err(Attempt::Final(format!("answered {status}")));
        }
        let body = http_body_util::Limited::new(resp.into_body(), max_bytes)
            .collect()
            .await
            .map_err(
                |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                    Some(_) => Attempt::Final(format!("larger than {max_bytes} bytes")),
                    None => Attempt::Retry(format!("reading the answer: {e}")),
                },
            )?;
        Ok(body.to_bytes().to_vec())
    }
}

/// TLS for web servers: the web's roots, TLS 1.2 and 1.3, ring; built once.
fn web_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| format!("TLS configuration: {e}"))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering every connection with `status`, `body` and extra header lines;
    /// returns its port.
    async fn serve(status: &'static str, body: Vec<u8>) -> u16 {
        serve_with(status, body, String::new()).await
    }

    async fn serve_with(status: &'static str, body: Vec<u8>, headers: String) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let body = body.clone();
                let headers = headers.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn fetches_refuses_and_bounds() {
        let port = serve("200 OK", b"signed document".to_vec()).await;
        let url = format!("http://127.0.0.1:{port}/registry.json");
        let got = fetch(&url, Duration::from_secs(5), 1024).await;
        assert_eq!(got.ok(), Some(b"signed document".to_vec()));
        let cut = fetch(&url, Duration::from_secs(5), 4).await;
        assert!(
            cut.as_ref()
                .is_err_and(|e| e.reason.contains("larger than 4 bytes")),
            "{cut:?}"
        );
        let missing = serve("404 Not Found", vec![]).await;
        let e = fetch(
            &format!("http://127.0.0.1:{missing}/r"),
            Duration::from_secs(5),
            1024,
        )
        .await;
        assert!(e.as_ref().is_err_and(|e| e.reason.contains("404")), "{e:?}");
        // Nothing listens: retried until the budget ends, then the last reason.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let e = fetch(
            &format!("http://127.0.0.1:{closed}/r"),
            Duration::from_millis(800),
            1024,
        )
        .await;
        assert!(
            e.as_ref().is_err_and(|e| e.reason.contains("connecting")),
            "{e:?}"
        );
        // Redirects: followed (a path on the same server, an absolute URL), bounded.
        let moved = serve_with(
            "302 Found",
            vec![],
            format!("Location: http://127.0.0.1:{port}/registry.json\r\n"),
        )
        .await;
        let relative = serve_with("301 Moved", vec![], "Location: /elsewhere\r\n".to_owned()).await;
        let got = fetch(
            &format!("http://127.0.0.1:{moved}/r"),
            Duration::from_secs(5),
            1024,
        )
        .await;
        assert_eq!(got.ok(), Some(b"signed document".to_vec()));
        let looped = fetch(
            &format!("http://127.0.0.1:{relative}/r"),
            Duration::from_secs(5),
            1024,
        )
        .await;
        assert!(
            looped
                .as_ref()
                .is_err_and(|e| e.reason.contains("more than 5 redirects")),
            "{looped:?}"
        );
        let https = Target::parse("https://example.org/r").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            https.follow("http://example.org/r").is_err(),
            "no downgrade"
        );
        assert!(
            https
                .follow("/other")
                .is_ok_and(|t| t.tls && t.path == "/other")
        );
        for bad in ["ftp://x/r", "not a url", "http:///nohost"] {
            assert!(
                fetch(bad, Duration::from_secs(1), 10).await.is_err(),
                "{bad}"
            );
        }
    }
}
