//! Each host's Docker Engine API, spoken with `bollard` through the host's SSH connection.
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

mod stream;
mod transport;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::{Result, anyhow};
use bollard::models::SwarmJoinRequest;
use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};

use crate::connection::Session;
pub use stream::{ExecStream, ExitReport, ExitWatch};
use transport::Transport;

/// How many HTTP connections (exec channels) [`connect`] keeps open for later requests.
pub const IDLE_CHANNELS: usize = 2;

/// The port a swarm node listens on for other managers, as `docker swarm join` sets it.
const SWARM_LISTEN_ADDR: &str = "0.0.0.0:2377";

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

/// Joins the engine's host to the swarm a manager at `remote_addr` (`ADDRESS[:PORT]`, port
/// 2377 when left out) runs, advertising `advertise_addr` to the other nodes, as
/// `docker swarm join --token TOKEN --advertise-addr ADVERTISE REMOTE` does — except that the
/// token travels in the request body, never on a command line.
pub async fn swarm_join(
    docker: &Docker,
    join_token: &str,
    remote_addr: &str,
    advertise_addr: &str,
) -> Result<()> {
    docker
        .join_swarm(join_request(join_token, remote_addr, advertise_addr))
        .await
        .map_err(|e| anyhow!("joining the swarm of {remote_addr} (advertising {advertise_addr}): {e}"))
}

fn join_request(join_token: &str, remote_addr: &str, advertise_addr: &str) -> SwarmJoinRequest {
    SwarmJoinRequest {
        listen_addr: Some(SWARM_LISTEN_ADDR.to_string()),
        advertise_addr: Some(advertise_addr.to_string()),
        data_path_addr: None,
        remote_addrs: Some(vec![remote_addr.to_string()]),
        join_token: Some(join_token.to_string()),
    }
}

/// The swarm node ID of the engine's host (from `/info`); an error when it is in no swarm.
pub async fn node_id(docker: &Docker) -> Result<String> {
    let info = docker.info().await.map_err(|e| anyhow!("reading the engine's /info: {e}"))?;
    let name = info.name.unwrap_or_default();
    let swarm = info.swarm.unwrap_or_default();
    match swarm.node_id.filter(|id| !id.is_empty()) {
        Some(id) => Ok(id),
        None => {
            let state = swarm.local_node_state.map_or_else(|| "unknown".to_string(), |s| s.to_string());
            Err(anyhow!("the engine of {name} is in no swarm (its swarm state is '{state}')"))
        }
    }
}

/// The engine's swarm state as `docker info` names it: `inactive`, `pending`, `active`,
/// `error` or `locked`.
pub async fn swarm_state(docker: &Docker) -> Result<String> {
    let info = docker.info().await.map_err(|e| anyhow!("reading the engine's /info: {e}"))?;
    Ok(info.swarm.and_then(|s| s.local_node_state).map_or_else(|| "unknown".to_string(), |s| s.to_string()))
}

/// The swarm's join tokens, (worker, manager), from a manager's engine.
pub async fn join_tokens(docker: &Docker) -> Result<(String, String)> {
    let swarm = docker.inspect_swarm().await.map_err(|e| anyhow!("reading the swarm's join tokens: {e}"))?;
    let tokens = swarm.join_tokens.unwrap_or_default();
    match (tokens.worker.filter(|t| !t.is_empty()), tokens.manager.filter(|t| !t.is_empty())) {
        (Some(worker), Some(manager)) => Ok((worker, manager)),
        _ => Err(anyhow!("the swarm answered without join tokens")),
    }
}
