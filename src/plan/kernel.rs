//! What the hosts' kernels must offer for the inventory to work. An encrypted overlay network
//! is IPsec ESP in the kernel: on a kernel without it the engine still creates the network and
//! its tasks still start, but their traffic between nodes is dropped without an error anywhere.
//! So the run stops before any change instead of reporting a cluster that cannot talk.

use std::collections::BTreeMap;

use crate::facts::{Facts, Ipsec};
use crate::inventory::Inventory;

/// Hosts refused (with the reason) and warnings, for the swarm nodes among `facts`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KernelCheck {
    pub refused: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

pub fn check(inv: &Inventory, facts: &BTreeMap<String, Facts>) -> KernelCheck {
    let mut result = KernelCheck::default();
    let encrypted: Vec<_> = inv.networks.iter().filter(|n| n.encrypted).collect();
    if encrypted.is_empty() {
        return result;
    }
    let names: Vec<String> =
        encrypted.iter().map(|n| format!("`{}` ({} line {})", n.name, inv.path.display(), n.line)).collect();
    let names = names.join(", ");
    let mut unknown = Vec::new();
    for host in inv.hosts.iter().filter(|h| h.is_swarm_node()) {
        match facts.get(&host.name).map(|f| &f.ipsec) {
            Some(Ipsec::Missing(options)) => result.refused.push((
                host.name.clone(),
                format!(
                    "encrypted network {names}: this host's kernel lacks {}, so the engine would create the \
                     network and silently drop its traffic between nodes. Use a kernel with IPsec ESP and \
                     AES-GCM (Debian's and Ubuntu's have them as modules), or set `encrypted: false`.",
                    options.join(", ")
                ),
            )),
            Some(Ipsec::Unknown) => unknown.push(host.name.clone()),
            Some(Ipsec::Yes) | None => {}
        }
    }
    if !unknown.is_empty() {
        result.warnings.push(format!(
            "cannot tell whether the kernels of {} carry encrypted network {names}: neither /proc/config.gz \
             nor /boot/config-<release> is readable there",
            unknown.join(", ")
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn inventory(encrypted: bool) -> Inventory {
        let text = format!(
            "cluster: {{name: t}}\nhosts:\n\
             - {{name: m1, address: 10.0.0.1, roles: [manager]}}\n\
             - {{name: w1, address: 10.0.0.2, roles: [worker]}}\n\
             - {{name: w2, address: 10.0.0.3, roles: [worker]}}\n\
             networks:\n  - {{name: reverse-proxy}}\n  - {{name: database, encrypted: {encrypted}}}\n"
        );
        Inventory::from_text(Path::new("/inv/t.yml"), &text).unwrap()
    }

    fn facts(ipsec: [Ipsec; 3]) -> BTreeMap<String, Facts> {
        ["m1", "w1", "w2"]
            .into_iter()
            .zip(ipsec)
            .map(|(name, ipsec)| (name.to_string(), Facts { ipsec, ..Default::default() }))
            .collect()
    }

    #[test]
    fn a_kernel_without_esp_refuses_the_host_naming_the_network_and_its_line() {
        let missing = || Ipsec::Missing(vec!["CONFIG_INET_ESP".into()]);
        let check = check(&inventory(true), &facts([Ipsec::Yes, missing(), missing()]));
        let hosts: Vec<&str> = check.refused.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(hosts, ["w1", "w2"]);
        let reason = &check.refused[0].1;
        assert!(
            reason.contains("`database` (/inv/t.yml line 8)")
                && reason.contains("lacks CONFIG_INET_ESP")
                && reason.contains("encrypted: false"),
            "{reason}"
        );
        assert!(check.warnings.is_empty());
    }

    #[test]
    fn no_encrypted_network_needs_nothing_of_the_kernel() {
        let missing = || Ipsec::Missing(vec!["CONFIG_INET_ESP".into()]);
        assert_eq!(
            check(&inventory(false), &facts([missing(), missing(), missing()])),
            KernelCheck::default()
        );
    }

    #[test]
    fn an_unreadable_kernel_configuration_is_a_warning_not_a_refusal() {
        let check = check(&inventory(true), &facts([Ipsec::Yes, Ipsec::Unknown, Ipsec::Unknown]));
        assert!(check.refused.is_empty());
        assert_eq!(check.warnings.len(), 1);
        assert!(check.warnings[0].contains("kernels of w1, w2"), "{}", check.warnings[0]);
    }
}
