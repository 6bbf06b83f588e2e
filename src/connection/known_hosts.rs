//! Host-key verification against an OpenSSH known_hosts file, per the inventory's policy.
//!
//! A host may have several recorded keys (one per algorithm, or after a rotation); the
//! presented key is trusted when any recorded key equals it, and refused as *changed* when
//! the host has records but none matches.

use std::path::Path;
use std::sync::Mutex;

use russh::keys::{HashAlg, PublicKey};

use crate::inventory::HostKeyPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Learned,
    Unchecked,
}

/// Serialises appends to known_hosts files: hosts are connected to concurrently.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// `who` names the host in messages ("m1 (10.0.0.1:22)").
pub fn verify(
    who: &str,
    address: &str,
    port: u16,
    key: &PublicKey,
    known_hosts: &Path,
    policy: HostKeyPolicy,
) -> Result<Verdict, String> {
    if policy == HostKeyPolicy::Off {
        return Ok(Verdict::Unchecked);
    }
    let recorded = russh::keys::known_hosts::known_host_keys_path(address, port, known_hosts)
        .map_err(|e| format!("cannot read known_hosts {}: {e}", known_hosts.display()))?;
    if recorded.iter().any(|(_, k)| k.key_data() == key.key_data()) {
        return Ok(Verdict::Known);
    }
    let presented = fingerprint(key);
    let target = if port == 22 { address.to_string() } else { format!("[{address}]:{port}") };
    if let Some((line, old)) = recorded.first() {
        return Err(format!(
            "host key of {who} has CHANGED: {} line {line} records {} {}, the host now presents {} {presented}. \
             If the machine was re-created or reinstalled, remove the old entry with \
             `ssh-keygen -R '{target}' -f {}` and run again; if not, someone may be intercepting the connection.",
            known_hosts.display(),
            old.algorithm(),
            fingerprint(old),
            key.algorithm(),
            known_hosts.display(),
        ));
    }
    match policy {
        HostKeyPolicy::Strict => Err(format!(
            "host key of {who} is not in {} and host_key_policy is strict. Check that {} {presented} is the \
             host's key (on the host: `ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub`), then add it with \
             `ssh-keyscan -p {port} {address} >> {}`, or use host_key_policy: accept-new.",
            known_hosts.display(),
            key.algorithm(),
            key.algorithm().as_str().trim_start_matches("ssh-"),
            known_hosts.display(),
        )),
        _ => {
            let _guard = LEARN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            russh::keys::known_hosts::learn_known_hosts_path(address, port, key, known_hosts).map_err(
                |e| format!("cannot record the host key of {who} in {}: {e}", known_hosts.display()),
            )?;
            Ok(Verdict::Learned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAE4bTISEkNI3twXiH6WPERt+N5hejyGWGvRjWP+Yik";
    const KEY2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd3BwjIaChcrpVcgcltel0ls4657/PVtPbP0XZ84rcY";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    #[test]
    fn accept_new_learns_then_knows_then_refuses_a_changed_key() {
        let dir = tempdir();
        let file = dir.join("known_hosts");
        let (k1, k2) = (key(KEY1), key(KEY2));
        let v = |k: &PublicKey, p| verify("m1 (10.0.0.1:22)", "10.0.0.1", 22, k, &file, p);
        assert_eq!(v(&k1, HostKeyPolicy::AcceptNew), Ok(Verdict::Learned));
        assert_eq!(v(&k1, HostKeyPolicy::AcceptNew), Ok(Verdict::Known));
        assert_eq!(v(&k1, HostKeyPolicy::Strict), Ok(Verdict::Known));
        let err = v(&k2, HostKeyPolicy::AcceptNew).unwrap_err();
        assert!(err.contains("CHANGED"), "{err}");
        assert!(err.contains(&fingerprint(&k1)) && err.contains(&fingerprint(&k2)), "{err}");
        assert!(err.contains("ssh-keygen -R '10.0.0.1'"), "{err}");
        assert_eq!(v(&k2, HostKeyPolicy::Off), Ok(Verdict::Unchecked));
    }

    #[test]
    fn strict_refuses_an_unknown_host_and_says_how_to_add_it() {
        let dir = tempdir();
        let file = dir.join("known_hosts");
        let err = verify("w1", "10.0.0.2", 2222, &key(KEY1), &file, HostKeyPolicy::Strict).unwrap_err();
        assert!(err.contains("ssh-keyscan -p 2222 10.0.0.2"), "{err}");
        assert!(!file.exists());
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "clusterup-kh-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
