//! One SSH connection to a host, and running commands over it.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::{Channel, ChannelMsg};

use super::{auth, known_hosts};
use crate::commands::Invocation;
use crate::inventory::{Host, HostKeyPolicy};
use crate::report::RunLog;

/// The russh event handler of one connection: it checks the server's host key.
pub struct Client {
    who: String,
    address: String,
    port: u16,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    /// Why the host key was refused, for a message better than russh's "unknown key".
    rejection: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = key.public_key();
        match known_hosts::verify(&self.who, &self.address, self.port, &key, &self.known_hosts, self.policy) {
            Ok(_) => Ok(true),
            Err(reason) => {
                *self.rejection.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                Ok(false)
            }
        }
    }
}

pub struct Session {
    /// The inventory name of the host.
    pub host: String,
    /// Shared with the channel openers handed out ([`Session::channel_opener`]).
    handle: Arc<Handle<Client>>,
    /// The bastion's connection, kept open as long as the tunnel through it is used.
    _jump: Option<Handle<Client>>,
    /// Non-root users run host scripts through `sudo -n`.
    pub sudo: bool,
    command_timeout: Duration,
    log: Arc<RunLog>,
    /// Process groups of the steps started on the host and not seen to end (as
    /// `common/announce.sh` reports them): what [`Session::stop_unfinished`] stops.
    unfinished: Mutex<BTreeSet<u32>>,
}

/// The marker line `roles/common/announce.sh` prints on stderr.
const PGID_MARKER: &str = "clusterup-pgid ";

#[derive(Debug, Clone)]
pub struct Output {
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The last lines of stderr (or stdout), for an error message a person can act on; when
    /// the step printed nothing, what its exit status means.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return format!("it printed nothing; {}", status_in_words(self.status));
        }
        lines[lines.len().saturating_sub(6)..].join("\n")
    }
}

/// What a shell's exit status says about a step that printed nothing.
pub fn status_in_words(status: u32) -> String {
    match status {
        0 => "it succeeded".into(),
        126 => "exit 126: a command was found but could not be executed (permissions?)".into(),
        127 => "exit 127: a command was not found on the host".into(),
        129..=192 => format!("exit {status}: killed by signal {}", status - 128),
        _ => format!("exit {status}"),
    }
}

/// What [`Session::channel_opener`] returns.
pub type ChannelOpener =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Channel<client::Msg>>> + Send>> + Send + Sync>;

fn client_config() -> client::Config {
    client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

/// Opens and authenticates the connection to `host`, through its bastion if it has one.
pub async fn connect(host: &Host, log: Arc<RunLog>) -> Result<Session> {
    let ssh = &host.ssh;
    let who = format!("{} ({}:{})", host.name, host.address, ssh.port);
    let rejection = Arc::new(Mutex::new(None));
    let client = Client {
        who: who.clone(),
        address: host.address.clone(),
        port: ssh.port,
        known_hosts: ssh.known_hosts.clone(),
        policy: ssh.host_key_policy,
        rejection: rejection.clone(),
    };
    let config = Arc::new(client_config());
    let started = Instant::now();
    let attempt = async {
        let (mut handle, jump) = match &ssh.bastion {
            None => {
                let handle = client::connect(config, (host.address.as_str(), ssh.port), client)
                    .await
                    .map_err(|e| connect_error(&who, e, &rejection))?;
                (handle, None)
            }
            Some(b) => {
                let jwho = format!("bastion {}@{}:{}", b.user, b.host, b.port);
                let jrejection = Arc::new(Mutex::new(None));
                let jclient = Client {
                    who: jwho.clone(),
                    address: b.host.clone(),
                    port: b.port,
                    known_hosts: ssh.known_hosts.clone(),
                    policy: ssh.host_key_policy,
                    rejection: jrejection.clone(),
                };
                let mut jump = client::connect(config.clone(), (b.host.as_str(), b.port), jclient)
                    .await
                    .map_err(|e| connect_error(&jwho, e, &jrejection))?;
                auth::authenticate(&mut jump, &b.user, ssh.identity_file.as_deref(), &jwho).await?;
                let tunnel = jump
                    .channel_open_direct_tcpip(host.address.clone(), u32::from(ssh.port), "127.0.0.1", 0)
                    .await
                    .map_err(|e| anyhow!("{jwho} could not open a tunnel to {who}: {e}"))?;
                let handle = client::connect_stream(config, tunnel.into_stream(), client)
                    .await
                    .map_err(|e| connect_error(&who, e, &rejection))?;
                (handle, Some(jump))
            }
        };
        auth::authenticate(&mut handle, &ssh.user, ssh.identity_file.as_deref(), &who).await?;
        Ok::<_, anyhow::Error>((handle, jump))
    };
    let (handle, jump) = tokio::time::timeout(ssh.connect_timeout, attempt).await.map_err(|_| {
        anyhow!(
            "{who}: no SSH session within {} s (connect_timeout). Is the host up and the address right?",
            ssh.connect_timeout.as_secs()
        )
    })??;
    log.line(&host.name, &format!("connected as {} in {:.2} s", ssh.user, started.elapsed().as_secs_f64()));
    Ok(Session {
        host: host.name.clone(),
        handle: Arc::new(handle),
        _jump: jump,
        sudo: ssh.user != "root",
        command_timeout: ssh.command_timeout,
        log,
        unfinished: Mutex::new(BTreeSet::new()),
    })
}

fn connect_error(who: &str, error: russh::Error, rejection: &Mutex<Option<String>>) -> anyhow::Error {
    if let Some(reason) = rejection.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return anyhow!(reason);
    }
    match error {
        russh::Error::IO(e) => anyhow!("{who}: cannot connect: {e}"),
        e => anyhow!("{who}: SSH handshake failed: {e}"),
    }
}

impl Session {
    /// Runs one command, feeding it `stdin`, and waits for its exit status. The run log gets
    /// the invocation's display form (never its stdin, which may carry secrets).
    pub async fn run(&self, invocation: &Invocation) -> Result<Output> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.command_timeout, self.exec(invocation)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let output = match result {
            Err(_) => {
                self.log
                    .line(&self.host, &format!("{} -> timed out after {elapsed:.1} s", invocation.display));
                return Err(anyhow!(
                    "{}: `{}` did not finish within {} s (command_timeout)",
                    self.host,
                    invocation.display,
                    self.command_timeout.as_secs()
                ));
            }
            Ok(Err(e)) => {
                self.log.line(&self.host, &format!("{} -> failed: {e}", invocation.display));
                return Err(e);
            }
            Ok(Ok(output)) => output,
        };
        self.log
            .line(&self.host, &format!("{} -> exit {} ({elapsed:.2} s)", invocation.display, output.status));
        if !output.success() && !output.stderr.is_empty() {
            self.log.block(&self.host, "stderr", &output.stderr);
        }
        Ok(output)
    }

    /// As [`Session::run`], but a non-zero exit is an error naming the host, the step, the
    /// status and the last lines it printed.
    pub async fn run_ok(&self, invocation: &Invocation) -> Result<Output> {
        let output = self.run(invocation).await?;
        if !output.success() {
            return Err(anyhow!(
                "{}: `{}` failed (exit {}): {}",
                self.host,
                invocation.display,
                output.status,
                output.tail()
            ));
        }
        Ok(output)
    }

    async fn exec(&self, invocation: &Invocation) -> Result<Output> {
        let lost =
            |e: russh::Error| anyhow!("{}: connection lost during `{}`: {e}", self.host, invocation.display);
        let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
        channel.exec(true, invocation.command.as_bytes()).await.map_err(lost)?;
        if !invocation.stdin.is_empty() {
            channel.data(&invocation.stdin[..]).await.map_err(lost)?;
        }
        if let Some(path) = &invocation.stdin_file {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow!("{}: cannot read {}: {e}", self.host, path.display()))?;
            channel.data(tokio::io::BufReader::with_capacity(1 << 20, file)).await.map_err(lost)?;
        }
        channel.eof().await.map_err(lost)?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut status = None;
        let mut group = None;
        // Read until the channel is gone: the exit status may arrive after EOF.
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    stderr.extend_from_slice(&data);
                    if group.is_none() {
                        group = take_group_marker(&mut stderr);
                        if let Some(g) = group {
                            self.unfinished.lock().unwrap_or_else(|p| p.into_inner()).insert(g);
                        }
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    stderr.extend_from_slice(format!("killed by signal {signal_name:?}\n").as_bytes());
                    status = Some(128);
                }
                _ => {}
            }
        }
        if let Some(g) = group {
            self.unfinished.lock().unwrap_or_else(|p| p.into_inner()).remove(&g);
        }
        let status = status.ok_or_else(|| {
            anyhow!("{}: connection lost during `{}` (no exit status)", self.host, invocation.display)
        })?;
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Starts `command` on an exec channel of its own and returns the channel (see
    /// [`Session::channel_opener`]).
    pub async fn open_channel(&self, command: &str) -> Result<Channel<client::Msg>> {
        (self.channel_opener())(command.to_string()).await
    }

    /// What opens exec channels on this connection from anywhere, for as long as it is up: a
    /// cloneable, `'static` function of the command line (run as given: `sudo -n` is the
    /// caller's, see [`Session::sudo`]). Its future resolves once the command has been started
    /// (within `command_timeout`); errors name the host and the command, and the run log gets
    /// the command. The caller owns the channel and must drain it to its end (`wait()` until
    /// `None`): a channel nobody reads stalls the whole connection.
    ///
    /// Its type is spelled out (no alias of this module is reachable from outside):
    /// `Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = anyhow::Result<russh::Channel<russh::client::Msg>>> + Send>> + Send + Sync>`.
    pub fn channel_opener(&self) -> ChannelOpener {
        let host = self.host.clone();
        let handle = self.handle.clone();
        let limit = self.command_timeout;
        let log = self.log.clone();
        Arc::new(move |command: String| {
            let (host, handle, log) = (host.clone(), handle.clone(), log.clone());
            Box::pin(async move {
                let failed = |e: russh::Error| anyhow!("{host}: could not start `{command}`: {e}");
                let open = async {
                    let channel = handle.channel_open_session().await.map_err(failed)?;
                    channel.exec(true, command.as_bytes()).await.map_err(failed)?;
                    Ok::<_, anyhow::Error>(channel)
                };
                let channel = tokio::time::timeout(limit, open).await.map_err(|_| {
                    anyhow!(
                        "{host}: `{command}` did not start within {} s (command_timeout)",
                        limit.as_secs()
                    )
                })??;
                log.line(&host, &format!("{command} -> channel open"));
                Ok(channel)
            })
        })
    }

    /// As [`Session::channel_opener`], but the function's argument is the path of a Unix
    /// socket on the host, which sshd connects the channel to (a `direct-streamlocal`
    /// channel, as `ssh -L` with a socket path opens). sshd opens the socket as the SSH user,
    /// and refuses the channel when that user may not, or when `AllowStreamLocalForwarding`
    /// (or `DisableForwarding`) says no: no process is started on the host either way.
    pub fn socket_opener(&self) -> ChannelOpener {
        let host = self.host.clone();
        let handle = self.handle.clone();
        let limit = self.command_timeout;
        let log = self.log.clone();
        Arc::new(move |path: String| {
            let (host, handle, log) = (host.clone(), handle.clone(), log.clone());
            Box::pin(async move {
                let open = handle.channel_open_direct_streamlocal(path.clone());
                let channel = tokio::time::timeout(limit, open)
                    .await
                    .map_err(|_| {
                        anyhow!("{host}: the socket {path} did not answer within {} s", limit.as_secs())
                    })?
                    .map_err(|e| {
                        anyhow!("{host}: sshd did not connect a channel to the socket {path}: {e}")
                    })?;
                log.line(&host, &format!("socket {path} -> channel open"));
                Ok(channel)
            })
        })
    }

    /// The inventory's `command_timeout` for this host.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// The run log this session writes to.
    pub fn run_log(&self) -> Arc<RunLog> {
        self.log.clone()
    }

    /// Stops, on the host, the steps this session started and never saw end (their futures
    /// were dropped: the run was interrupted). Returns how many process groups it signalled.
    pub async fn stop_unfinished(&self) -> usize {
        let groups: Vec<String> =
            std::mem::take(&mut *self.unfinished.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .map(|g| g.to_string())
                .collect();
        if groups.is_empty() {
            return 0;
        }
        let script = crate::roles::standalone("common/stop.sh");
        let invocation = crate::commands::script(
            &script,
            &[crate::commands::Input::new("PGIDS", groups.join(" "))],
            self.sudo,
        );
        let _ = self.run(&invocation).await;
        groups.len()
    }

    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Takes the `clusterup-pgid N` line out of what a step printed on stderr, once it is whole.
pub(super) fn take_group_marker(stderr: &mut Vec<u8>) -> Option<u32> {
    let text = std::str::from_utf8(stderr).ok()?;
    let start = text.find(PGID_MARKER)?;
    let end = start + text[start..].find('\n')?;
    let group = text[start + PGID_MARKER.len()..end].trim().parse().ok();
    stderr.drain(start..=end);
    group
}
