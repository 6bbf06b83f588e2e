//! The files of `roles/`, compiled in. A test checks this list against the folder.

macro_rules! role_files {
    ($($path:literal),* $(,)?) => {
        pub static FILES: &[(&str, &str)] = &[
            $(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/roles/", $path)))),*
        ];
    };
}

role_files!(
    "common/announce.sh",
    "common/require.sh",
    "common/stop.sh",
    "facts/gather.sh",
    "docker/role.yml",
    "docker/lib.sh",
    "docker/check.sh",
    "docker/apply.sh",
    "docker/settle.sh",
    "nfs-client/role.yml",
    "nfs-client/check.sh",
    "nfs-client/apply.sh",
    "nfs-client/probe.sh",
    "firewall/role.yml",
    "firewall/lib.sh",
    "firewall/check.sh",
    "firewall/apply.sh",
    "nfs-server/role.yml",
    "nfs-server/lib.sh",
    "nfs-server/check.sh",
    "nfs-server/apply.sh",
    "swarm/role.yml",
    "swarm/cert-stamp.sh",
    "swarm/settle.sh",
    "stacks/role.yml",
    "stacks/deploy.sh",
    "stacks/remove.sh",
    "state/role.yml",
    "state/lib.sh",
    "state/lock.sh",
    "state/refresh.sh",
    "state/unlock.sh",
    "state/audit.sh",
    "state/show.sh",
    "backup/role.yml",
    "backup/snapshot.sh",
    "backup/unpack.sh",
    "backup/store.sh",
);
