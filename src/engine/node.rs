//! A node's own objects, through its Engine API: the preloaded images it lacks, and the
//! NFS-backed volumes it created with other options. One request each, where a script's
//! `docker image inspect` or `docker volume inspect` costs a process start (seconds on an
//! emulated VM).

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;

use super::objects::is_not_found;
use super::swarm::said;

/// The references of `images` that the engine behind `docker` does not have, in their order.
pub async fn missing_images(docker: &Docker, images: &[String]) -> Result<Vec<String>> {
    let mut lacking = Vec::new();
    for image in images {
        match docker.inspect_image(image).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => lacking.push(image.clone()),
            Err(e) => return Err(anyhow!("inspecting image {image}: {}", said(&e))),
        }
    }
    Ok(lacking)
}

/// An NFS-backed volume of a stack as the inventory defines it: the name `docker stack deploy`
/// gives it on each node, and its driver options.
#[derive(Debug, Clone, PartialEq)]
pub struct NfsVolume {
    pub name: String,
    pub o: String,
    pub device: String,
}

/// What became of a volume the inventory defines.
#[derive(Debug, PartialEq)]
pub enum VolumeState {
    /// Not on this node, or with the inventory's options.
    Fine,
    /// Created with other options (Docker fixes them at creation): which ones.
    Drifted(String),
    /// Drifted, and removed since no container used it: the next deploy creates it anew.
    Removed(String),
    /// Drifted, and kept: a container uses it.
    Busy(String),
}

/// Compares the node's copy of `wanted` with the inventory's options; with `recreate`, removes
/// a drifted one that no container (running or not) uses.
pub async fn check_volume(docker: &Docker, wanted: &NfsVolume, recreate: bool) -> Result<VolumeState> {
    let name = wanted.name.as_str();
    let volume = match docker.inspect_volume(name).await {
        Ok(volume) => volume,
        Err(e) if is_not_found(&e) => return Ok(VolumeState::Fine),
        Err(e) => return Err(anyhow!("inspecting volume {name}: {}", said(&e))),
    };
    let has = |key: &str| volume.options.get(key).map(String::as_str).unwrap_or_default().to_string();
    let (have_o, have_device) = (has("o"), has("device"));
    if have_o == wanted.o && have_device == wanted.device {
        return Ok(VolumeState::Fine);
    }
    let drift = format!("has o={have_o} device={have_device}");
    if !recreate {
        return Ok(VolumeState::Drifted(drift));
    }
    let filters: HashMap<String, Vec<String>> = [("volume".to_string(), vec![name.to_string()])].into();
    let users = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| anyhow!("listing the containers of volume {name}: {}", said(&e)))?;
    if !users.is_empty() {
        return Ok(VolumeState::Busy(drift));
    }
    docker
        .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await
        .map_err(|e| anyhow!("removing volume {name}: {}", said(&e)))?;
    Ok(VolumeState::Removed(drift))
}
