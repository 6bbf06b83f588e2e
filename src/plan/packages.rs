//! Which packages give a host a working Docker engine *and* the `docker` command. Chosen from
//! what the host's apt sources offer (facts), with a table of known systems for a host whose
//! package lists were never downloaded.

use crate::facts::Facts;
use crate::inventory::DockerSource;

/// Systems whose distribution packages ship the `docker` command in a package of its own,
/// `docker-cli`, that `docker.io` only recommends.
const CLI_SPLIT: &[(&str, &str)] = &[("debian", "13")];

/// The packages to install, in the order apt gets them.
pub fn engine_packages(source: DockerSource, facts: &Facts) -> Vec<&'static str> {
    let mut packages = match source {
        DockerSource::Docker => vec!["docker-ce", "docker-ce-cli", "containerd.io"],
        DockerSource::Distro => {
            let lists_known = !facts.apt_candidates.is_empty();
            let split = if lists_known {
                facts.apt_candidates.contains_key("docker-cli")
            } else {
                CLI_SPLIT.iter().any(|(id, v)| *id == facts.os_id && *v == facts.os_version)
            };
            if split { vec!["docker.io", "docker-cli"] } else { vec!["docker.io"] }
        }
    };
    // Without AppArmor's userspace tools no container starts on a kernel that enforces it.
    if facts.apparmor_enabled {
        packages.push("apparmor");
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(os: &str, version: &str, candidates: &[&str]) -> Facts {
        Facts {
            os_id: os.into(),
            os_version: version.into(),
            apt_candidates: candidates.iter().map(|c| (c.to_string(), "1".to_string())).collect(),
            ..Facts::default()
        }
    }

    #[test]
    fn the_cli_package_is_added_where_the_sources_offer_it() {
        let trixie = facts("debian", "13", &["docker.io", "docker-cli"]);
        assert_eq!(engine_packages(DockerSource::Distro, &trixie), ["docker.io", "docker-cli"]);
        let bookworm = facts("debian", "12", &["docker.io"]);
        assert_eq!(engine_packages(DockerSource::Distro, &bookworm), ["docker.io"]);
        // The sources decide, not the version number: a system that splits the CLI later is
        // handled without a new table entry.
        let ubuntu = facts("ubuntu", "26.04", &["docker.io", "docker-cli"]);
        assert_eq!(engine_packages(DockerSource::Distro, &ubuntu), ["docker.io", "docker-cli"]);
        let noble = facts("ubuntu", "24.04", &["docker.io"]);
        assert_eq!(engine_packages(DockerSource::Distro, &noble), ["docker.io"]);
    }

    #[test]
    fn without_package_lists_the_table_of_known_systems_decides() {
        assert_eq!(
            engine_packages(DockerSource::Distro, &facts("debian", "13", &[])),
            ["docker.io", "docker-cli"]
        );
        assert_eq!(engine_packages(DockerSource::Distro, &facts("debian", "12", &[])), ["docker.io"]);
    }

    #[test]
    fn dockers_own_repository_and_apparmor() {
        let mut f = facts("debian", "13", &["docker.io", "docker-cli"]);
        assert_eq!(
            engine_packages(DockerSource::Docker, &f),
            ["docker-ce", "docker-ce-cli", "containerd.io"]
        );
        f.apparmor_enabled = true;
        assert_eq!(engine_packages(DockerSource::Distro, &f), ["docker.io", "docker-cli", "apparmor"]);
    }
}
