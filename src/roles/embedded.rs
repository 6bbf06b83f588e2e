//! The files of `roles/`, compiled in. A test checks this list against the folder.

macro_rules! role_files {
    ($($path:literal),* $(,)?) => {
        pub static FILES: &[(&str, &str)] = &[
            $(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/roles/", $path)))),*
        ];
    };
}

role_files!(
    "common/require.sh",
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
    "swarm/lib.sh",
    "swarm/init.sh",
    "swarm/nodes.sh",
    "swarm/labels.sh",
    "swarm/promote.sh",
    "swarm/demote.sh",
    "swarm/drain.sh",
    "swarm/leave.sh",
    "swarm/remove.sh",
    "swarm/cert-stamp.sh",
    "swarm/settle.sh",
    "stacks/role.yml",
    "stacks/observe.sh",
    "stacks/network-create.sh",
    "stacks/secret-create.sh",
    "stacks/deploy.sh",
    "stacks/record.sh",
    "stacks/deployed.sh",
    "stacks/key-create.sh",
    "stacks/remove.sh",
    "stacks/secret-remove.sh",
    "stacks/services.sh",
    "stacks/volumes.sh",
    "state/role.yml",
    "state/lib.sh",
    "state/lock.sh",
    "state/refresh.sh",
    "state/unlock.sh",
    "state/audit.sh",
    "state/show.sh",
    "images/role.yml",
    "images/missing.sh",
);
