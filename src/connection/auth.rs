//! Public-key authentication: the inventory's identity file, else the ssh-agent, else the
//! usual default key files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use russh::client::Handle;
use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};

use super::session::Client;

pub async fn authenticate(
    handle: &mut Handle<Client>,
    user: &str,
    identity_file: Option<&Path>,
    who: &str,
) -> Result<()> {
    let mut tried = Vec::new();
    if let Some(path) = identity_file {
        if try_key_file(handle, user, path).await? {
            return Ok(());
        }
        return Err(anyhow!(
            "{who}: the server refused key {} for user `{user}`. Is its public key in ~{user}/.ssh/authorized_keys on the host?",
            path.display()
        ));
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        tried.push("ssh-agent".to_string());
        if try_agent(handle, user).await? {
            return Ok(());
        }
    }
    for path in default_key_files() {
        tried.push(path.display().to_string());
        if try_key_file(handle, user, &path).await? {
            return Ok(());
        }
    }
    if tried.is_empty() {
        return Err(anyhow!(
            "{who}: no key to log in with: set ssh.identity_file in the inventory, or start ssh-agent"
        ));
    }
    Err(anyhow!(
        "{who}: the server refused every key for user `{user}` (tried {}). Set ssh.identity_file to the right key.",
        tried.join(", ")
    ))
}

fn default_key_files() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let dir = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"].iter().map(|n| dir.join(n)).filter(|p| p.is_file()).collect()
}

async fn try_key_file(handle: &mut Handle<Client>, user: &str, path: &Path) -> Result<bool> {
    let key = load_secret_key(path, None).map_err(|e| {
        if e.to_string().to_lowercase().contains("encrypted") {
            anyhow!(
                "key {} is protected by a passphrase: load it into ssh-agent (ssh-add) and remove identity_file, \
                 or give clusterup a key without one",
                path.display()
            )
        } else {
            anyhow!("cannot read key {}: {e}", path.display())
        }
    })?;
    let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .context("authentication")?;
    Ok(result.success())
}

async fn try_agent(handle: &mut Handle<Client>, user: &str) -> Result<bool> {
    let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await else {
        return Ok(false);
    };
    let identities = agent.request_identities().await.unwrap_or_default();
    let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
    for identity in identities {
        let key = identity.public_key().into_owned();
        if let Ok(result) = handle.authenticate_publickey_with(user, key, hash, &mut agent).await
            && result.success()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
