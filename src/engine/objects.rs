//! Cluster objects through a manager's Engine API: overlay networks, secrets, configs (the
//! secret-naming key and the records of deployed stacks) and the services that use them.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use base64::Engine as _;
use bollard::Docker;
use bollard::models::{ConfigSpec, NetworkCreateRequest, SecretSpec, Service};
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListSecretsOptions, ListServicesOptions,
};

use super::swarm::said;
use crate::plan::services::{NetworkCreate, Observed, ObservedNetwork};

/// The swarm config holding the key secret names are made with.
pub const KEY_CONFIG: &str = "clusterup-secret-key";
/// The label of the configs that record a deployed stack (its value: the stack's name).
const STACK_LABEL: &str = "clusterup.stack";
/// The label of a stack record holding the digest of what was deployed.
const SHA_LABEL: &str = "clusterup.sha256";
/// The label the docker CLI puts on everything of a stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

fn filters(pairs: &[(&str, &str)]) -> Option<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in pairs {
        map.entry(key.to_string()).or_default().push(value.to_string());
    }
    Some(map)
}

/// What exists of the objects clusterup manages, read in five requests.
pub async fn observe(docker: &Docker) -> Result<Observed> {
    let mut observed = Observed::default();
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters: filters(&[("driver", "overlay")]) }))
        .await
        .map_err(|e| anyhow!("listing the overlay networks: {}", said(&e)))?;
    observed.networks = networks
        .into_iter()
        .map(|n| ObservedNetwork {
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            attachable: n.attachable.unwrap_or(false),
            options: n.options.map(|o| o.into_iter().collect()),
        })
        .collect();
    let secrets = docker
        .list_secrets(None::<ListSecretsOptions>)
        .await
        .map_err(|e| anyhow!("listing the secrets: {}", said(&e)))?;
    observed.secrets = secrets.into_iter().filter_map(|s| s.spec?.name).collect();
    for service in services(docker).await? {
        let spec = service.spec.unwrap_or_default();
        if let Some(stack) = spec.labels.as_ref().and_then(|l| l.get(NAMESPACE_LABEL)) {
            observed.stacks.insert(stack.clone());
        }
        let template = spec.task_template.unwrap_or_default();
        let secrets = template.container_spec.and_then(|c| c.secrets).unwrap_or_default();
        observed.secrets_used.extend(secrets.into_iter().filter_map(|s| s.secret_name));
        let networks = template.networks.or(spec.networks).unwrap_or_default();
        observed.networks_used.extend(networks.into_iter().filter_map(|n| n.target));
    }
    let configs = docker
        .list_configs(None::<ListConfigsOptions>)
        .await
        .map_err(|e| anyhow!("listing the configs: {}", said(&e)))?;
    for config in configs {
        let spec = config.spec.unwrap_or_default();
        let labels = spec.labels.unwrap_or_default();
        if spec.name.as_deref() == Some(KEY_CONFIG) {
            // The list carries each config's data as the inspect does.
            observed.key = spec.data.as_deref().and_then(decode).filter(|k| !k.trim().is_empty());
            observed.key = observed.key.map(|k| k.trim().to_string());
        } else if let (Some(stack), Some(sha)) = (labels.get(STACK_LABEL), labels.get(SHA_LABEL)) {
            observed.deployed.insert(stack.clone(), sha.clone());
        }
    }
    Ok(observed)
}

/// The names of the swarm's configs.
pub async fn config_names(docker: &Docker) -> Result<Vec<String>> {
    let configs = docker
        .list_configs(None::<ListConfigsOptions>)
        .await
        .map_err(|e| anyhow!("listing the configs: {}", said(&e)))?;
    let mut names: Vec<String> = configs.into_iter().filter_map(|c| c.spec?.name).collect();
    names.sort();
    Ok(names)
}

/// Every service of the swarm, with its running and desired task counts.
pub async fn services(docker: &Docker) -> Result<Vec<Service>> {
    docker
        .list_services(Some(ListServicesOptions { filters: None, status: Some(true) }))
        .await
        .map_err(|e| anyhow!("listing the services: {}", said(&e)))
}

/// Creates the attachable overlay network `n`; with `n.recreate`, the one of that name (which
/// no service used when observed) is removed first; the swarm refuses that if a service has
/// started using it since. Returns the change made, in the plan's words.
pub async fn create_network(docker: &Docker, n: &NetworkCreate) -> Result<String> {
    let mut done = "created";
    let existing = docker
        .list_networks(Some(ListNetworksOptions { filters: filters(&[("name", &n.name)]) }))
        .await
        .map_err(|e| anyhow!("looking for network {}: {}", n.name, said(&e)))?;
    // The name filter matches prefixes too: only the exact name counts.
    if let Some(id) = existing.iter().find(|e| e.name.as_deref() == Some(&n.name)).and_then(|e| e.id.clone())
    {
        if !n.recreate {
            return Err(anyhow!("network {} exists already", n.name));
        }
        docker
            .remove_network(&id)
            .await
            .map_err(|e| anyhow!("removing network {} to create it again: {}", n.name, said(&e)))?;
        done = "removed and created again";
    }
    let mut options = HashMap::from([("com.docker.network.driver.mtu".to_string(), n.mtu.to_string())]);
    if n.encrypted {
        options.insert("encrypted".to_string(), String::new());
    }
    let request = NetworkCreateRequest {
        name: n.name.clone(),
        driver: Some("overlay".into()),
        attachable: Some(true),
        options: Some(options),
        ..Default::default()
    };
    docker.create_network(request).await.map_err(|e| anyhow!("creating network {}: {}", n.name, said(&e)))?;
    Ok(format!("{done} network {}", n.name))
}

/// Keeps the cluster's secret-naming key (hex) in the config [`KEY_CONFIG`]. Created once; an
/// existing one is never replaced, which would rename every secret.
pub async fn create_key(docker: &Docker, key: &str) -> Result<()> {
    let spec = ConfigSpec {
        name: Some(KEY_CONFIG.into()),
        labels: Some(HashMap::from([("clusterup.secret-key".into(), "1".into())])),
        data: Some(encode(key.as_bytes())),
        ..Default::default()
    };
    docker.create_config(spec).await.map_err(|e| {
        let said = said(&e);
        if said.contains("already exists") || said.contains("AlreadyExists") {
            anyhow!("the swarm already has a secret-naming key")
        } else {
            anyhow!("creating {KEY_CONFIG}: {said}")
        }
    })?;
    Ok(())
}

/// Creates the swarm secret `swarm_name` (of the inventory's secret `name`) holding `value`,
/// sent in the request body. `false` when it exists already.
pub async fn create_secret(docker: &Docker, name: &str, swarm_name: &str, value: &str) -> Result<bool> {
    if docker.inspect_secret(swarm_name).await.is_ok() {
        return Ok(false);
    }
    let spec = SecretSpec {
        name: Some(swarm_name.into()),
        labels: Some(HashMap::from([("clusterup.secret".into(), name.into())])),
        data: Some(encode(value.as_bytes())),
        ..Default::default()
    };
    // The engine's error never repeats the data; bollard's Debug of the spec would, so only
    // the engine's words are used.
    docker.create_secret(spec).await.map_err(|e| anyhow!("creating secret {swarm_name}: {}", said(&e)))?;
    Ok(true)
}

/// Removes the secret `name`; the swarm refuses when a service uses it.
pub async fn remove_secret(docker: &Docker, name: &str) -> Result<()> {
    docker.delete_secret(name).await.map_err(|e| anyhow!("removing secret {name}: {}", said(&e)))
}

fn record_name(stack: &str) -> String {
    format!("clusterup-stack-{stack}")
}

/// Records `stack` as deployed once its services converged: a config labelled with the stack
/// and the digest, holding the deployed files (for `plan --diff`). A stack that failed keeps
/// its previous record, so the next run deploys it again instead of trusting it.
pub async fn record_stack(docker: &Docker, stack: &str, sha256: &str, content: &str) -> Result<()> {
    forget_stack(docker, stack).await?;
    let spec = ConfigSpec {
        name: Some(record_name(stack)),
        labels: Some(HashMap::from([
            (STACK_LABEL.to_string(), stack.to_string()),
            (SHA_LABEL.to_string(), sha256.to_string()),
        ])),
        data: Some(encode(content.as_bytes())),
        ..Default::default()
    };
    docker.create_config(spec).await.map_err(|e| anyhow!("recording stack {stack}: {}", said(&e)))?;
    Ok(())
}

/// Removes the record of `stack`, if there is one.
pub async fn forget_stack(docker: &Docker, stack: &str) -> Result<()> {
    match docker.delete_config(&record_name(stack)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(anyhow!("removing the record of stack {stack}: {}", said(&e))),
    }
}

/// The files recorded as deployed for `stack`; `None` without a record.
pub async fn deployed(docker: &Docker, stack: &str) -> Result<Option<String>> {
    match docker.inspect_config(&record_name(stack)).await {
        Ok(config) => Ok(config.spec.and_then(|s| s.data).as_deref().and_then(decode)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(anyhow!("reading the record of stack {stack}: {}", said(&e))),
    }
}

pub(super) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// Standard base64 with padding, as the Engine API carries config and secret data.
fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The text base64 `data` holds; `None` when it is not base64 of UTF-8.
fn decode(data: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
    String::from_utf8(bytes).ok()
}
