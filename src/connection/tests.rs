//! The connection module against an in-process SSH server on loopback: real handshakes,
//! host-key policy, key authentication, stdin, exit status after EOF, timeouts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, Session as ServerSession};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;

use super::connect;
use crate::commands::{self, Input};
use crate::inventory::{Host, Inventory};
use crate::report::RunLog;
use crate::roles::Script;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The fake host: accepts one client key, runs "scripts" by answering from their stdin.
#[derive(Clone)]
struct FakeHost {
    allowed: PublicKey,
    stdin: Vec<u8>,
}

impl server::Handler for FakeHost {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if key.public_key.key_data() == self.allowed.key_data() {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _: &[u8],
        session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn data(&mut self, _: ChannelId, data: &[u8], _: &mut ServerSession) -> Result<(), Self::Error> {
        self.stdin.extend_from_slice(data);
        Ok(())
    }

    /// The whole script has arrived: answer it. `HANG` never answers; `EXIT=n` sets the status,
    /// which is sent after EOF, as real servers may do.
    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        let text = String::from_utf8_lossy(&self.stdin).into_owned();
        if text.contains("HANG") {
            return Ok(());
        }
        let status = text
            .lines()
            .find_map(|l| l.strip_prefix("export EXIT='").and_then(|v| v.strip_suffix('\'')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        session.data(channel, format!("stdin={} bytes\n", self.stdin.len()))?;
        session.extended_data(channel, 1, "a warning\n")?;
        session.eof(channel)?;
        session.exit_status_request(channel, status)?;
        session.close(channel)?;
        self.stdin.clear();
        Ok(())
    }
}

/// Starts the fake host on a loopback port; returns the port.
async fn start_server() -> u16 {
    let host_key =
        PrivateKey::from_openssh(std::fs::read_to_string(fixture("host_ed25519")).unwrap()).unwrap();
    let allowed =
        PublicKey::from_openssh(&std::fs::read_to_string(fixture("client_ed25519.pub")).unwrap()).unwrap();
    let config = Arc::new(server::Config {
        keys: vec![host_key],
        auth_rejection_time: Duration::from_millis(1),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        ..Default::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = FakeHost { allowed: allowed.clone(), stdin: Vec::new() };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(session) = server::run_stream(config, stream, handler).await {
                    let _ = session.await;
                }
            });
        }
    });
    port
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "clusterup-conn-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn host(dir: &Path, port: u16, key: &str, policy: &str, command_timeout: u64) -> Host {
    let text = format!(
        "cluster: {{name: t}}\nssh: {{user: admin, port: {port}, identity_file: {}, known_hosts: {}, \
         host_key_policy: {policy}, connect_timeout: 1, command_timeout: {command_timeout}}}\n\
         hosts:\n  - {{name: fake, address: 127.0.0.1, roles: [manager]}}\n",
        fixture(key).display(),
        dir.join("known_hosts").display()
    );
    Inventory::from_text(&dir.join("inv.yml"), &text).unwrap().hosts.remove(0)
}

fn script(body: &str) -> Script {
    Script { path: "test/fake.sh".into(), body: body.into() }
}

fn log() -> Arc<RunLog> {
    Arc::new(RunLog::disabled())
}

#[tokio::test]
async fn runs_a_script_with_stdin_and_reads_the_status_sent_after_eof() {
    let port = start_server().await;
    let dir = tempdir();
    let session = connect(&host(&dir, port, "client_ed25519", "accept-new", 5), log()).await.unwrap();
    assert!(session.sudo, "a non-root user runs scripts through sudo");
    // Larger than one SSH window, so the data has to be flow-controlled through.
    let big = "x".repeat(300_000);
    let invocation = commands::script(&script(&big), &[Input::new("EXIT", "7")], true);
    let expected = invocation.stdin.len();
    let out = session.run(&invocation).await.unwrap();
    assert_eq!(out.status, 7);
    assert_eq!(out.stdout, format!("stdin={expected} bytes\n"));
    assert_eq!(out.stderr, "a warning\n");
    // The connection is reused for the next command.
    let out = session.run(&commands::script(&script("true\n"), &[], true)).await.unwrap();
    assert!(out.success());
    let recorded = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    assert!(recorded.contains(&format!("[127.0.0.1]:{port}")), "{recorded}");
}

#[tokio::test]
async fn a_command_that_never_finishes_times_out() {
    let port = start_server().await;
    let dir = tempdir();
    let session = connect(&host(&dir, port, "client_ed25519", "accept-new", 1), log()).await.unwrap();
    let err = session.run(&commands::script(&script("HANG\n"), &[], true)).await.unwrap_err();
    assert!(err.to_string().contains("did not finish within 1 s"), "{err}");
}

#[tokio::test]
async fn a_refused_key_names_the_key_and_the_user() {
    let port = start_server().await;
    let dir = tempdir();
    let err = connect(&host(&dir, port, "other_ed25519", "accept-new", 5), log()).await.err().unwrap();
    let text = format!("{err:#}");
    assert!(
        text.contains("refused key") && text.contains("other_ed25519") && text.contains("`admin`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_passphrase_key_says_to_use_the_agent() {
    let port = start_server().await;
    let dir = tempdir();
    let err = connect(&host(&dir, port, "locked_ed25519", "accept-new", 5), log()).await.err().unwrap();
    assert!(format!("{err:#}").contains("ssh-agent"), "{err:#}");
}

#[tokio::test]
async fn strict_refuses_an_unknown_host_and_a_changed_key_is_always_refused() {
    let port = start_server().await;
    let dir = tempdir();
    let err = connect(&host(&dir, port, "client_ed25519", "strict", 5), log()).await.err().unwrap();
    assert!(format!("{err:#}").contains("host_key_policy is strict"), "{err:#}");

    let other = std::fs::read_to_string(fixture("other_ed25519.pub")).unwrap();
    let key = other.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    std::fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {key}\n")).unwrap();
    for policy in ["strict", "accept-new"] {
        let err = connect(&host(&dir, port, "client_ed25519", policy, 5), log()).await.err().unwrap();
        assert!(format!("{err:#}").contains("has CHANGED"), "{policy}: {err:#}");
    }
    // `off` connects anyway (labs only).
    assert!(connect(&host(&dir, port, "client_ed25519", "off", 5), log()).await.is_ok());
}

#[tokio::test]
async fn a_silent_port_times_out_and_a_closed_one_is_refused() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempdir();
    let err = connect(&host(&dir, port, "client_ed25519", "accept-new", 5), log()).await.err().unwrap();
    assert!(format!("{err:#}").contains("no SSH session within 1 s"), "{err:#}");
    drop(silent);
    let err = connect(&host(&dir, port, "client_ed25519", "accept-new", 5), log()).await.err().unwrap();
    assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
}

#[tokio::test]
async fn a_file_is_streamed_to_stdin_without_being_read_whole() {
    let port = start_server().await;
    let dir = tempdir();
    let session = connect(&host(&dir, port, "client_ed25519", "accept-new", 5), log()).await.unwrap();
    let archive = dir.join("image.tar");
    std::fs::write(&archive, vec![7u8; 3_000_000]).unwrap();
    let out = session.run(&commands::docker_load(&archive, 3_000_000, true)).await.unwrap();
    assert_eq!(out.stdout, "stdin=3000000 bytes\n");
}

#[test]
fn a_silent_failure_is_explained_by_its_exit_status() {
    let silent = super::Output { status: 127, stdout: String::new(), stderr: " \n".into() };
    assert_eq!(silent.tail(), "it printed nothing; exit 127: a command was not found on the host");
    let killed = super::Output { status: 137, stdout: String::new(), stderr: String::new() };
    assert!(killed.tail().contains("killed by signal 9"), "{}", killed.tail());
    let loud = super::Output { status: 1, stdout: String::new(), stderr: "boom\n".into() };
    assert_eq!(loud.tail(), "boom");
}

#[test]
fn the_process_group_marker_is_taken_out_of_stderr() {
    let mut stderr = b"clusterup-pgid 4242\nE: real trouble\n".to_vec();
    assert_eq!(super::session::take_group_marker(&mut stderr), Some(4242));
    assert_eq!(stderr, b"E: real trouble\n");
    let mut partial = b"clusterup-pgid 42".to_vec();
    assert_eq!(super::session::take_group_marker(&mut partial), None, "not whole yet");
    assert_eq!(partial, b"clusterup-pgid 42");
}
