//! An exec channel as a byte stream: the command's stdin and stdout, and how it ended.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::watch;

use crate::connection::status_in_words;
use crate::report::RunLog;

/// At most this much of a command's stderr is kept for its error message.
const STDERR_KEPT: usize = 16 * 1024;

/// A started command's stdin and stdout as one byte stream ([`AsyncRead`] + [`AsyncWrite`]):
/// what is written goes to its stdin, what it prints on stdout is read. Shutting down the
/// writing side sends EOF; dropping the stream sends EOF too, then closes the channel.
///
/// A task of its own drains the channel all along (a channel nobody reads would stall the
/// whole SSH connection), keeping the command's stderr and exit status for [`ExecStream::exit`]:
/// why a stream ended early (`sudo: a password is required`, `docker: not found`).
pub struct ExecStream {
    io: DuplexStream,
    exit: ExitWatch,
}

impl ExecStream {
    /// Takes over `channel`, whose `command` has been started on `host`.
    pub fn start(channel: Channel<Msg>, host: &str, command: &str, log: Arc<RunLog>) -> ExecStream {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (report, exit) = watch::channel(None);
        let pump = Pump {
            host: host.to_string(),
            command: command.to_string(),
            log,
            started: Instant::now(),
            report,
        };
        tokio::spawn(pump.run(channel, theirs));
        ExecStream { io: ours, exit: ExitWatch(exit) }
    }

    /// Tells how the command ended, once it has; usable after the stream is gone.
    pub fn exit(&self) -> ExitWatch {
        self.exit.clone()
    }
}

impl AsyncRead for ExecStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How a streamed command ended: its exit status (`None` when the channel went away without
/// one) and the last of its stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitReport {
    pub status: Option<u32>,
    pub stderr: String,
}

impl std::fmt::Display for ExitReport {
    /// "exited 1: sudo: a password is required", for an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<&str> = self.stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let last = lines[lines.len().saturating_sub(3)..].join(" / ");
        match (self.status, last.is_empty()) {
            (Some(status), false) => write!(f, "exited {status}: {last}"),
            (Some(status), true) => write!(f, "ended: {}", status_in_words(status)),
            (None, false) => write!(f, "ended without an exit status: {last}"),
            (None, true) => write!(f, "ended without an exit status"),
        }
    }
}

/// Watches a streamed command for its end; see [`ExecStream::exit`].
#[derive(Clone)]
pub struct ExitWatch(watch::Receiver<Option<ExitReport>>);

impl ExitWatch {
    /// How the command ended, if it has by now.
    pub fn ended(&self) -> Option<ExitReport> {
        self.0.borrow().clone()
    }

    /// Waits up to `limit` for the command to end.
    pub async fn wait(&self, limit: Duration) -> Option<ExitReport> {
        let mut rx = self.0.clone();
        match tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await {
            Ok(Ok(report)) => report.clone(),
            _ => None,
        }
    }
}

/// The task behind an [`ExecStream`].
struct Pump {
    host: String,
    command: String,
    log: Arc<RunLog>,
    started: Instant,
    report: watch::Sender<Option<ExitReport>>,
}

impl Pump {
    async fn run(self, mut channel: Channel<Msg>, local: DuplexStream) {
        let (mut from_local, mut to_local) = tokio::io::split(local);
        let mut buf = vec![0u8; 32 * 1024];
        let mut stdin_done = false;
        let mut report = ExitReport::default();
        let mut stderr = Vec::new();
        loop {
            tokio::select! {
                read = from_local.read(&mut buf), if !stdin_done => match read {
                    // The local side shut down its writing half or went away: EOF to the
                    // command (`dial-stdio` then finishes and exits).
                    Ok(0) | Err(_) => {
                        stdin_done = true;
                        if channel.eof().await.is_err() {
                            break;
                        }
                    }
                    Ok(n) => {
                        if channel.data(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                },
                message = channel.wait() => match message {
                    None => break,
                    Some(ChannelMsg::Data { data }) => {
                        // Nobody reads the stream any more: stop the command.
                        if to_local.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        stderr.extend_from_slice(&data);
                        if stderr.len() > STDERR_KEPT {
                            stderr.drain(..stderr.len() - STDERR_KEPT);
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => report.status = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        stderr.extend_from_slice(format!("killed by signal {signal_name:?}\n").as_bytes());
                        report.status = Some(128);
                    }
                    Some(ChannelMsg::Failure) => {
                        stderr.extend_from_slice(b"the SSH server refused to run the command\n");
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = to_local.shutdown().await;
                    }
                    Some(_) => {}
                },
            }
        }
        let _ = to_local.shutdown().await;
        let _ = channel.close().await;
        report.stderr = String::from_utf8_lossy(&stderr).into_owned();
        let elapsed = self.started.elapsed().as_secs_f64();
        self.log.line(&self.host, &format!("{} -> channel closed, {report} ({elapsed:.2} s)", self.command));
        if !report.stderr.is_empty() && report.status != Some(0) {
            self.log.block(&self.host, "stderr", &report.stderr);
        }
        self.report.send_replace(Some(report));
    }
}
