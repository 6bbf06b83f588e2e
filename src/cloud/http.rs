//! A small HTTPS/HTTP client for cloud APIs: one hyper HTTP/1.1 connection per request, TLS by
//! rustls (the system's CA store, plus a cloud's own CA file), a deadline on every request, a
//! cap on every response body. It goes only where it is told: callers pass URLs that come from
//! clouds.yaml or the cloud's service catalog.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Secret;

/// A cloud API's answer larger than this is refused (a server list of thousands is far less).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What went wrong with one request, in words a user can act on; never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No complete answer within the deadline.
    Timeout { url: String, seconds: u64 },
    /// The request could not be made or its answer not read.
    Failed { url: String, reason: String },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout { url, seconds } => write!(
                f,
                "{url}: no answer within {seconds} s (is the cloud reachable from here? openstack.timeout raises the limit)"
            ),
            HttpError::Failed { url, reason } => write!(f, "{url}: {reason}"),
        }
    }
}

/// An answer: status, headers, the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Failed {
            url: url.to_string(),
            reason: format!("HTTP {}: the answer is not what the API reference describes: {e}", self.status),
        })
    }
}

#[derive(Clone)]
pub struct Http {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl Http {
    /// A client trusting the system's CA store, and `cacert` (a PEM file) when given.
    pub fn new(timeout: Duration, cacert: Option<&Path>) -> Result<Http, String> {
        let mut roots = rustls::RootCertStore::empty();
        // A store that cannot be read leaves `cacert` (or plain HTTP) usable.
        let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(file) = cacert {
            let pem = std::fs::read(file).map_err(|e| format!("cacert {}: {e}", file.display()))?;
            let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cacert {}: not PEM certificates: {e:?}", file.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("cacert {}: holds no usable certificate", file.display()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Http { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One request, within the client's deadline. `token` goes in `X-Auth-Token`; `headers`
    /// are added as given.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        token: Option<&Secret>,
        headers: &[(&'static str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, HttpError> {
        let failed = |reason: String| HttpError::Failed { url: url.to_string(), reason };
        let uri: Uri = url.parse().map_err(|e| failed(format!("not a URL: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(failed("only http:// and https:// URLs are used".into())),
        };
        let host = uri.host().ok_or_else(|| failed("the URL has no host".into()))?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut request = Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(HOST, uri.authority().map_or(host.as_str(), |a| a.as_str()))
            .header(USER_AGENT, concat!("clusterup/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose())
                .map_err(|_| failed("the token is not a header value".into()))?;
            value.set_sensitive(true);
            request = request.header("X-Auth-Token", value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| failed(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
                .await
                .map_err(|e| failed(format!("cannot connect: {e}")))?;
            let _ = tcp.set_nodelay(true);
            if https {
                let name = rustls::pki_types::ServerName::try_from(
                    host.trim_start_matches('[').trim_end_matches(']').to_string(),
                )
                .map_err(|e| failed(format!("not a TLS server name: {e}")))?;
                let tls = self.tls.connect(name, tcp).await.map_err(|e| failed(format!("TLS: {e}")))?;
                exchange(Io::new(tls), request).await.map_err(failed)
            } else {
                exchange(Io::new(tcp), request).await.map_err(failed)
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(reply) => reply,
            Err(_) => {
                Err(HttpError::Timeout { url: url.to_string(), seconds: self.timeout.as_secs().max(1) })
            }
        }
    }
}

async fn exchange<S>(io: Io<S>, request: Request<Full<Bytes>>) -> Result<Reply, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| format!("HTTP: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body })
    }
    .await;
    driver.abort();
    result
}

/// A tokio stream as hyper's I/O, read through a small buffer of its own (no unsafe code).
struct Io<S>(S, Box<[u8]>);

impl<S> Io<S> {
    fn new(stream: S) -> Io<S> {
        Io(stream, vec![0; 16 * 1024].into_boxed_slice())
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for Io<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let Io(stream, scratch) = self.get_mut();
        let room = buf.remaining().min(scratch.len());
        let mut read = ReadBuf::new(&mut scratch[..room]);
        match Pin::new(stream).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(read.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for Io<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn https_to_a_plain_http_server_fails_with_a_tls_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let http = Http::new(Duration::from_secs(5), None).unwrap();
        let e = http.request(Method::GET, &format!("https://127.0.0.1:{port}/v3"), None, &[], None).await;
        match e {
            Err(HttpError::Failed { reason, .. }) => assert!(reason.starts_with("TLS: "), "{reason}"),
            other => panic!("{other:?}"),
        }
        let plain = http.request(Method::GET, &format!("http://127.0.0.1:{port}/v3"), None, &[], None).await;
        assert_eq!(plain.unwrap().status, 200);
        let e = http.request(Method::GET, "ftp://127.0.0.1/x", None, &[], None).await.unwrap_err();
        assert!(e.to_string().contains("only http:// and https://"), "{e}");
    }
}
