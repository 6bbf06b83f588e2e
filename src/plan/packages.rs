//! Which packages give a host a working Docker engine *and* the `docker` command. Chosen from
//! what the host's apt sources offer (facts), with a table of known systems for a host whose
//! package lists were never downloaded.

use super::debversion;
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

/// The engine's own packages, which `docker.version` pins together (the others, apparmor and
/// containerd.io, keep their own versions).
const ENGINE_SET: &[&str] = &["docker.io", "docker-cli", "docker-ce", "docker-ce-cli"];

/// The package list for apt, each `NAME` or, where `docker.version` pins the engine,
/// `NAME=VERSION`: the highest version the host's apt sources offer that matches the pattern
/// (`latest`: apt's candidate). Going below the installed version is refused unless
/// `allow_downgrade`. Errors say what the host offers.
pub fn pinned_packages(
    source: DockerSource,
    version: Option<&str>,
    facts: &Facts,
    allow_downgrade: bool,
) -> Result<Vec<String>, String> {
    let names = engine_packages(source, facts);
    let Some(spec) = version else {
        return Ok(names.iter().map(|n| n.to_string()).collect());
    };
    let engine = names[0];
    let offered = facts.apt_versions.get(engine).cloned().unwrap_or_default();
    if offered.is_empty() {
        return Err(format!(
            "docker.version `{spec}`: the host's apt sources offer no {engine} (are its package lists downloaded? `apt-get update`)"
        ));
    }
    let target = if spec == "latest" {
        facts.apt_candidates.get(engine).cloned()
    } else {
        offered
            .iter()
            .filter(|v| debversion::matches(spec, v))
            .max_by(|a, b| debversion::compare(a, b))
            .cloned()
    };
    let Some(target) = target else {
        return Err(format!(
            "docker.version `{spec}`: no {engine} version matches it in the host's apt sources, which offer {}",
            offered.join(", ")
        ));
    };
    if let Some(now) = facts.apt_installed.get(engine)
        && debversion::compare(&target, now) == std::cmp::Ordering::Less
        && !allow_downgrade
    {
        return Err(format!(
            "docker.version `{spec}` is {engine} {target}, older than the installed {now}: a downgrade is refused \
             (`init --allow-downgrade` goes ahead; engines of one swarm may differ while it rolls)"
        ));
    }
    Ok(names
        .iter()
        .map(|name| {
            let same = facts.apt_versions.get(*name).is_some_and(|v| v.contains(&target));
            if ENGINE_SET.contains(name) && same { format!("{name}={target}") } else { name.to_string() }
        })
        .collect())
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

    fn offering(installed: Option<&str>, versions: &[&str]) -> Facts {
        let mut f = facts("debian", "12", &["docker.io"]);
        let v: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
        f.apt_candidates
            .insert("docker.io".into(), v.iter().max_by(|a, b| debversion::compare(a, b)).unwrap().clone());
        f.apt_versions.insert("docker.io".into(), v);
        if let Some(i) = installed {
            f.apt_installed.insert("docker.io".into(), i.into());
        }
        f
    }

    const OLD: &str = "20.10.24+dfsg1-1+deb12u1";
    const NEW: &str = "20.10.24+dfsg1-1+deb12u1+lab1";

    #[test]
    fn a_version_pins_the_highest_match_and_latest_the_candidate() {
        let f = offering(Some(OLD), &[NEW, OLD]);
        let pin = |spec: Option<&str>| pinned_packages(DockerSource::Distro, spec, &f, false);
        assert_eq!(pin(None).unwrap(), ["docker.io"], "no version: installed once, never upgraded");
        assert_eq!(pin(Some("latest")).unwrap(), [format!("docker.io={NEW}")]);
        assert_eq!(pin(Some("20.10.*")).unwrap(), [format!("docker.io={NEW}")]);
        assert_eq!(pin(Some(OLD)).unwrap(), [format!("docker.io={OLD}")], "the installed one: nothing to do");
        let none = pin(Some("26.1.*")).unwrap_err();
        assert!(none.contains("no docker.io version matches") && none.contains(OLD), "{none}");
    }

    #[test]
    fn a_downgrade_is_refused_unless_allowed() {
        let f = offering(Some(NEW), &[NEW, OLD]);
        let refused = pinned_packages(DockerSource::Distro, Some(OLD), &f, false).unwrap_err();
        assert!(
            refused.contains("downgrade is refused") && refused.contains("--allow-downgrade"),
            "{refused}"
        );
        assert_eq!(
            pinned_packages(DockerSource::Distro, Some(OLD), &f, true).unwrap(),
            [format!("docker.io={OLD}")]
        );
        // A fresh host has nothing to go down from.
        let fresh = offering(None, &[NEW, OLD]);
        assert!(pinned_packages(DockerSource::Distro, Some(OLD), &fresh, false).is_ok());
    }

    #[test]
    fn the_cli_package_follows_the_engine_where_it_has_that_version_and_others_keep_theirs() {
        let mut f = facts("debian", "13", &["docker.io", "docker-cli"]);
        f.apparmor_enabled = true;
        for name in ["docker.io", "docker-cli"] {
            f.apt_versions.insert(name.into(), vec!["26.1.5+dfsg1-9+b1".into()]);
        }
        assert_eq!(
            pinned_packages(DockerSource::Distro, Some("26.1.*"), &f, false).unwrap(),
            ["docker.io=26.1.5+dfsg1-9+b1", "docker-cli=26.1.5+dfsg1-9+b1", "apparmor"]
        );
        let empty = facts("debian", "13", &[]);
        assert!(
            pinned_packages(DockerSource::Distro, Some("latest"), &empty, false)
                .unwrap_err()
                .contains("apt-get update")
        );
    }
}
