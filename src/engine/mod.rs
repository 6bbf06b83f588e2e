//! Each host's Docker Engine API, spoken with `bollard` through the host's SSH connection.
//!
//! [`swarm`] holds membership (init, joins, leaving, the node list, node updates for labels,
//! roles and drains, node removal) and [`objects`] the cluster objects (overlay networks,
//! secrets, the configs clusterup keeps, the services that use them). Stacks have no API call:
//! `docker stack deploy` and `docker stack rm` stay CLI steps under `roles/stacks/`.
//!
//! # Transport
//!
//! Every HTTP request goes over an SSH exec channel of the [`Session`] that runs
//! `docker system dial-stdio` on the host — `sudo -n docker system dial-stdio` when the SSH
//! user is not root, as for every other command of clusterup. That command connects to the
//! engine's socket on the host and copies bytes between it and its own stdin/stdout, so HTTP/1.1
//! spoken over the channel reaches the engine. It is the transport `docker -H ssh://HOST` uses.
//! Why this one:
//!
//! - the SSH user needs neither access to `/var/run/docker.sock` (root or the `docker` group)
//!   nor sshd's stream-local forwarding (`AllowStreamLocalForwarding no` forbids
//!   `direct-streamlocal` channels): the `sudo -n` clusterup already needs is enough;
//! - one SSH connection per host, the one clusterup already has: no system `ssh` beside it
//!   (bollard's `ssh` feature) and no TCP port for the engine;
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
//! on the host, far more than an HTTP round trip over a channel already open. So [`connect`]
//! keeps up to [`IDLE_CHANNELS`] HTTP connections (one channel each) open for later requests
//! of the same client; a request takes one that is ready, or opens a channel of its own when
//! all are busy (a log or event stream holds its connection until it is read to the end). The
//! channels end when the last clone of the client is dropped (EOF makes `dial-stdio` exit) or
//! the session closes. [`connect_with`] with `0` opens a fresh channel for every request.
//!
//! A pooled connection whose `dial-stdio` died (the engine restarted) is noticed as soon as
//! its channel ends, and not used again; a request already written to a connection that fails
//! is not sent a second time, since it may have been acted upon.
//!
//! # Versions
//!
//! [`connect`] negotiates the API version with the engine (`GET /version`, unversioned): Debian
//! 12's Docker 20.10 speaks API 1.41, Debian 13's 26.1 API 1.45, bollard 0.21 up to 1.53; every
//! later request names the lower of the two in its path, as the docker CLI does.

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

/// The command that connects a channel to the engine's socket on the host.
pub fn dial_command(sudo: bool) -> &'static str {
    if sudo { "sudo -n docker system dial-stdio" } else { "docker system dial-stdio" }
}

/// A Docker Engine API client for the host of `session`, its version negotiated, keeping up to
/// [`IDLE_CHANNELS`] exec channels open between requests. Errors name the host.
pub async fn connect(session: &Session) -> Result<Docker> {
    connect_with(session, IDLE_CHANNELS).await
}

/// As [`connect`], keeping at most `idle_channels` channels open between requests (`0`: one
/// channel per request, closed after its response).
pub async fn connect_with(session: &Session, idle_channels: usize) -> Result<Docker> {
    let host = session.host.clone();
    // bollard's timeout covers a request until its response head: an engine that takes longer
    // is as stuck as a host command that outlives `command_timeout`.
    let timeout = session.command_timeout().as_secs().max(1);
    let transport = Arc::new(Transport::new(
        &host,
        session.channel_opener(),
        session.run_log(),
        dial_command(session.sudo),
        idle_channels,
    ));
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
