//! The HTTP side of the engine transport: one HTTP/1.1 connection per SSH channel (to the
//! engine's socket, or running `docker system dial-stdio`), a small pool of them, and the
//! request fixes the engine needs (origin-form target, `Host` header).

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper::rt::ReadBufCursor;
use hyper::{Request, Response, Uri};
use russh::Channel;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stream::{ExecStream, ExitWatch};
use crate::report::RunLog;

/// [`Session::channel_opener`](crate::connection::Session::channel_opener)'s type.
pub(super) type OpenChannel =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = anyhow::Result<Channel<Msg>>> + Send>> + Send + Sync>;

/// The authority bollard is given (`http://docker`), and so the `Host` header sent: the engine
/// requires the header but, on its socket, does not care what it says.
pub(super) const AUTHORITY: &str = "docker";

/// How long a request waits for a pooled connection that is still finishing its previous
/// response before it opens a channel of its own instead.
const REUSE_WAIT: Duration = Duration::from_millis(100);

/// How long a failed request waits for the remote command's exit status and stderr, which
/// say why the stream ended (`sudo: a password is required`, `docker: not found`, ...).
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// An HTTP/1.1 connection over one exec channel, and how to learn why the channel ended.
struct Conn<B> {
    sender: SendRequest<B>,
    exit: ExitWatch,
}

/// Sends bollard's requests over channels of one host's SSH connection.
pub(super) struct Transport<B> {
    host: String,
    open: OpenChannel,
    log: Arc<RunLog>,
    /// What `open` is given: the socket's path, or `docker system dial-stdio` (through
    /// `sudo -n` for a non-root SSH user).
    target: String,
    /// How the channel is named in the log and in errors.
    label: String,
    /// How many connections are kept for later requests (0: one channel per request).
    max_idle: usize,
    idle: Mutex<Vec<Conn<B>>>,
    /// The API version negotiated with the engine, once it is: the prefix of every path.
    version: OnceLock<String>,
}

impl<B> Transport<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    pub(super) fn new(
        host: &str,
        open: OpenChannel,
        log: Arc<RunLog>,
        target: String,
        label: String,
        max_idle: usize,
    ) -> Transport<B> {
        Transport {
            host: host.to_string(),
            open,
            log,
            target,
            label,
            max_idle,
            idle: Mutex::new(Vec::new()),
            version: OnceLock::new(),
        }
    }

    /// From now on, paths are prefixed with `/v{version}` (see [`origin_form`]).
    pub(super) fn set_version(&self, version: String) {
        let _ = self.version.set(version);
    }

    /// Sends one request: on a pooled connection when one is ready, else on a new channel.
    pub(super) async fn send(
        self: Arc<Self>,
        request: Request<B>,
    ) -> Result<Response<Incoming>, BollardError> {
        let request = origin_form(request, self.version.get().map(String::as_str))?;
        // The run log names each request and its answer, never its body (a join token, a
        // secret's value): the query never carries one.
        let what = format!("engine API: {} {}", request.method(), request.uri());
        let started = std::time::Instant::now();
        let result = self.send_once(request).await;
        let answer = match &result {
            Ok(response) => response.status().as_u16().to_string(),
            Err(e) => format!("failed: {e}"),
        };
        self.log.line(&self.host, &format!("{what} -> {answer} ({} ms)", started.elapsed().as_millis()));
        result
    }

    async fn send_once(&self, mut request: Request<B>) -> Result<Response<Incoming>, BollardError> {
        if let Some(mut conn) = self.checkout().await {
            match conn.sender.try_send_request(request).await {
                Ok(response) => {
                    self.checkin(conn);
                    return Ok(response);
                }
                Err(mut failed) => match failed.take_message() {
                    // Never written to the connection (it closed meanwhile): a new channel.
                    Some(unsent) => request = unsent,
                    // Written, so possibly acted upon: not sent twice.
                    None => return Err(self.explain(failed.into_error(), &conn.exit).await),
                },
            }
        }
        let mut conn = self.dial().await?;
        match conn.sender.send_request(request).await {
            Ok(response) => {
                self.checkin(conn);
                Ok(response)
            }
            Err(e) => Err(self.explain(e, &conn.exit).await),
        }
    }

    /// Opens a new channel to the engine and an HTTP/1.1 connection over it.
    async fn dial(&self) -> Result<Conn<B>, BollardError> {
        let channel =
            (self.open)(self.target.clone()).await.map_err(|e| io::Error::other(format!("{e:#}")))?;
        let stream = ExecStream::start(channel, &self.host, &self.label, self.log.clone());
        let exit = stream.exit();
        let (sender, connection) = match http1::handshake(HyperIo::new(stream)).await {
            Ok(parts) => parts,
            Err(e) => return Err(self.explain(e, &exit).await),
        };
        // Drives the connection until its last sender is gone and its last response read;
        // then the stream is dropped, which sends EOF and ends `dial-stdio`.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender, exit })
    }

    /// A pooled connection that can take a request now (or within [`REUSE_WAIT`]).
    async fn checkout(&self) -> Option<Conn<B>> {
        let mut conn = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|c| !c.sender.is_closed() && c.exit.ended().is_none());
            if let Some(i) = idle.iter().rposition(|c| c.sender.is_ready()) {
                return Some(idle.swap_remove(i));
            }
            // Busy, or done with its last response but not yet told so: wait a little for it.
            idle.pop()?
        };
        match tokio::time::timeout(REUSE_WAIT, conn.sender.ready()).await {
            Ok(Ok(())) => Some(conn),
            Ok(Err(_)) => None,
            Err(_) => {
                self.checkin(conn);
                None
            }
        }
    }

    /// Keeps a connection for later requests (it becomes ready once its response is read),
    /// or drops it: hyper then closes it after its response.
    fn checkin(&self, conn: Conn<B>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// An HTTP failure, with what the remote command said when it ended early.
    async fn explain(&self, error: hyper::Error, exit: &ExitWatch) -> BollardError {
        let host = &self.host;
        let message = match exit.wait(EXIT_WAIT).await {
            Some(report) => format!("`{}` on {host} {report} (HTTP: {error})", self.label),
            None => format!("HTTP over `{}` on {host} failed: {error}", self.label),
        };
        io::Error::other(message).into()
    }
}

/// bollard builds absolute-form targets (`http://docker/info`) and no `Host` header; the
/// engine answers such a request `400 Bad Request: missing required Host header`. Sends the
/// origin form with the authority as `Host`, as a client of a server does.
///
/// bollard 0.21 also drops the API version from its paths (it joins `/info` onto
/// `http://docker/v1.41/info`, which replaces the path), so the engine would answer in its own
/// newest version whatever was negotiated. Once `version` is known, paths get it back
/// (`/v1.41/info`), as the docker CLI sends them.
pub(super) fn origin_form<B>(request: Request<B>, version: Option<&str>) -> Result<Request<B>, BollardError> {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(HOST) {
        let authority = parts.uri.authority().map_or(AUTHORITY, |a| a.as_str());
        parts.headers.insert(HOST, HeaderValue::from_str(authority).map_err(http_error)?);
    }
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match version {
        Some(version) if !is_versioned(target) => format!("/v{version}{target}").parse::<Uri>()?,
        _ => target.parse::<Uri>()?,
    };
    Ok(Request::from_parts(parts, body))
}

/// Whether a path already names an API version (`/v1.41/...`).
fn is_versioned(target: &str) -> bool {
    let Some(rest) = target.strip_prefix("/v") else { return false };
    let version = rest.split(['/', '?']).next().unwrap_or_default();
    version.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    })
}

fn http_error(e: impl std::fmt::Display) -> BollardError {
    io::Error::other(format!("cannot build the request: {e}")).into()
}

/// An [`ExecStream`] as hyper's I/O. Reads go through a scratch buffer: a copy, but no
/// `unsafe` for uninitialised memory.
struct HyperIo<S> {
    inner: S,
    scratch: Box<[u8]>,
}

impl<S> HyperIo<S> {
    fn new(inner: S) -> HyperIo<S> {
        HyperIo { inner, scratch: vec![0; 16 * 1024].into_boxed_slice() }
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for HyperIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = buf.remaining().min(this.scratch.len());
        let mut scratch = ReadBuf::new(&mut this.scratch[..room]);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut scratch))?;
        buf.put_slice(scratch.filled());
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
