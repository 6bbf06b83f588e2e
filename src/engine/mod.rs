//! Each host's Docker Engine API, spoken with `bollard` through the host's SSH connection.
//!
//! [`swarm`] holds membership (init, joins, leaving, the node list, node updates for labels,
//! roles and drains, node removal), [`objects`] the cluster objects (overlay networks,
//! secrets, the configs clusterup keeps, the services that use them) and [`node`] a node's own
//! (the preloaded images it lacks, its NFS-backed volumes). Stacks have no API call:
//! `docker stack deploy` and `docker stack rm` stay CLI steps under `roles/stacks/`.
//!
//! # Transport
//!
//! Every HTTP request goes over a channel of the host's [`Session`]. [`connect`] first asks
//! sshd for a `direct-streamlocal` channel to the engine's socket ([`SOCKET`]): sshd connects
//! it as the SSH user, so it works for root and for a user in the `docker` group (which `init`
//! adds the SSH user to), and starts no process on the host. Where sshd refuses it (the user
//! may not open the socket, `AllowStreamLocalForwarding no`, no engine yet), the channel is an
//! exec channel running `docker system dial-stdio` (`sudo -n docker system dial-stdio` when
//! the SSH user is not root, as for every other command of clusterup), which connects to the
//! socket on the host and copies bytes between it and its own stdin/stdout: the transport
//! `docker -H ssh://HOST` uses. Both are byte streams HTTP/1.1 is spoken over. Why these:
//!
//! - no TCP port for the engine, and the one SSH connection per host clusterup already has:
//!   no system `ssh` beside it (bollard's `ssh` feature);
//! - the socket costs the host nothing per run; `dial-stdio` needs only the `sudo -n`
//!   clusterup needs anyway (starting sudo and the docker command is about 40 ms of a small
//!   host's CPU: on a converged cluster the facts phase asks the engine over the socket);
//! - values go in request bodies: a swarm join token is never on a command line, so never in
//!   `ps` on the host or in sudo's log (the `docker swarm join --token` of a shell script is).
//!
//! bollard builds absolute-form targets (`http://docker/info`) without a `Host` header, which
//! the engine refuses (`400 missing required Host header`): the transport sends the origin
//! form with `Host: docker`. bollard 0.21 also leaves the API version out of its paths (see
//! `transport::origin_form`): the transport puts the negotiated one in (`/v1.41/info`).
//!
//! # Channels
//!
//! Starting `sudo -n docker system dial-stdio` costs a channel open, an exec and two processes
//! on the host, and even a socket channel costs a round trip: far more than an HTTP round trip
//! over a channel already open. So [`connect`] keeps up to [`IDLE_CHANNELS`] HTTP connections
//! (one channel each) open for later requests of the same client; a request takes one that is
//! ready, or opens a channel of its own when all are busy (a log or event stream holds its
//! connection until it is read to the end). The
//! channels end when the last clone of the client is dropped (EOF makes `dial-stdio` exit) or
//! the session closes. [`connect_with`] with `0` opens a fresh channel for every request.
//!
//! A pooled connection whose channel ended (the engine restarted) is noticed as soon as
//! its channel ends, and not used again; a request already written to a connection that fails
//! is not sent a second time, since it may have been acted upon.
//!
//! # Versions
//!
//! [`connect`] negotiates the API version with the engine (`GET /version`, unversioned): Debian
//! 12's Docker 20.10 speaks API 1.41, Debian 13's 26.1 API 1.45, bollard 0.21 up to 1.53; every
//! later request names the lower of the two in its path, as the docker CLI does.

pub mod node;
pub mod objects;
mod stream;
pub mod swarm;
mod transport;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::{Result, anyhow};
use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};

use crate::connection::Session;
pub use stream::{ExecStream, ExitReport, ExitWatch};
use transport::Transport;

/// How many HTTP connections (exec channels) [`connect`] keeps open for later requests.
pub const IDLE_CHANNELS: usize = 2;

/// The engine's socket, where every supported system's Docker packages put it.
pub const SOCKET: &str = "/var/run/docker.sock";

/// The command that connects a channel to the engine's socket on the host.
pub fn dial_command(sudo: bool) -> &'static str {
    if sudo { "sudo -n docker system dial-stdio" } else { "docker system dial-stdio" }
}

/// How a channel reaches the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dial {
    /// A `direct-streamlocal` channel to [`SOCKET`], opened by sshd as the SSH user.
    Socket,
    /// An exec channel running [`dial_command`].
    Stdio,
}

/// A Docker Engine API client for the host of `session`, its version negotiated, keeping up to
/// [`IDLE_CHANNELS`] channels open between requests. Errors name the host.
pub async fn connect(session: &Session) -> Result<Docker> {
    connect_with(session, IDLE_CHANNELS).await
}

/// As [`connect`], keeping at most `idle_channels` channels open between requests (`0`: one
/// channel per request, closed after its response). The socket is tried first, since it
/// starts nothing on the host; where sshd or the socket's permissions refuse it,
/// `dial-stdio` (through `sudo -n`) is used.
pub async fn connect_with(session: &Session, idle_channels: usize) -> Result<Docker> {
    match connect_via(session, Dial::Socket, idle_channels).await {
        Ok(docker) => Ok(docker),
        Err(e) => {
            session.run_log().line(&session.host, &format!("{e:#}; using `{}`", dial_command(session.sudo)));
            connect_via(session, Dial::Stdio, idle_channels).await
        }
    }
}

/// A client over the engine's socket only (see [`Session::socket_opener`]), or the reason
/// there is none: the facts phase asks the engine this way when it can, and else lets the
/// facts script ask it through `sudo`.
pub async fn connect_socket(session: &Session) -> Result<Docker> {
    connect_via(session, Dial::Socket, IDLE_CHANNELS).await
}

/// A client over `dial-stdio` only: for a host whose socket was already refused in this run
/// (the facts phase tried it), so that it is not asked again.
pub async fn connect_stdio(session: &Session) -> Result<Docker> {
    connect_via(session, Dial::Stdio, IDLE_CHANNELS).await
}

async fn connect_via(session: &Session, dial: Dial, idle_channels: usize) -> Result<Docker> {
    let host = session.host.clone();
    // bollard's timeout covers a request until its response head: an engine that takes longer
    // is as stuck as a host command that outlives `command_timeout`.
    let timeout = session.command_timeout().as_secs().max(1);
    let (open, target, label) = match dial {
        Dial::Socket => (session.socket_opener(), SOCKET.to_string(), format!("socket {SOCKET}")),
        Dial::Stdio => {
            let command = dial_command(session.sudo).to_string();
            (session.channel_opener(), command.clone(), command)
        }
    };
    let transport = Arc::new(Transport::new(&host, open, session.run_log(), target, label, idle_channels));
    let sender = transport.clone();
    let docker = Docker::connect_with_custom_transport(
        move |request: BollardRequest| sender.clone().send(request),
        Some(format!("http://{}", transport::AUTHORITY)),
        timeout,
        API_DEFAULT_VERSION,
    )
    .map_err(|e| anyhow!("{host}: cannot set up a Docker engine client: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| anyhow!("{host}: cannot talk to the Docker engine: {e}"))?;
    transport.set_version(docker.client_version().to_string());
    Ok(docker)
}
