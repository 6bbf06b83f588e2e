//! Neutron: each server's ports (which security groups filter its traffic) and the project's
//! security groups with their rules, every list read page after page (`<resource>_links`
//! rel=next, as Neutron pages when its `pagination_max_limit` is set).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::compute::{get, next_url};
use super::keystone::Session;
use crate::cloud::CloudError;
use crate::cloud::http::Http;

#[derive(Debug, Clone, Deserialize)]
pub struct Port {
    pub id: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// False: the port is not filtered at all.
    #[serde(default)]
    pub port_security_enabled: Option<bool>,
    /// Neutron's revision of the port: an update sent with it fails if the port changed since.
    #[serde(default)]
    pub revision_number: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FixedIp {
    pub ip_address: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub security_group_rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Rule {
    pub direction: String,
    #[serde(default)]
    pub ethertype: Option<String>,
    /// None: any protocol.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<u16>,
    #[serde(default)]
    pub port_range_max: Option<u16>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
}

/// A paging loop stops here whatever the links say.
const MAX_PAGES: usize = 1000;

/// The network API's versioned root: the catalog often gives `https://neutron:9696`.
pub fn v2_url(network: &str) -> String {
    let url = network.trim_end_matches('/');
    if url.ends_with("/v2.0") { url.to_string() } else { format!("{url}/v2.0") }
}

pub async fn server_ports(
    http: &Http,
    session: &Session,
    network: &str,
    server_id: &str,
) -> Result<Vec<Port>, CloudError> {
    let url = format!("{}/ports?device_id={}", v2_url(network), query_value(server_id));
    list(http, session, network, &url, "ports").await
}

pub async fn security_groups(
    http: &Http,
    session: &Session,
    network: &str,
) -> Result<Vec<SecurityGroup>, CloudError> {
    let url = format!("{}/security-groups", v2_url(network));
    list(http, session, network, &url, "security_groups").await
}

/// Every item of a Neutron list, all pages: `{"KEY": [...], "KEY_links": [{"rel": "next"}]}`.
async fn list<T: DeserializeOwned>(
    http: &Http,
    session: &Session,
    network: &str,
    first: &str,
    key: &str,
) -> Result<Vec<T>, CloudError> {
    let mut url = first.to_string();
    let mut items = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut page: Value = get(http, session, &url, &[]).await?;
        let found = serde_json::from_value::<Vec<T>>(
            page.get_mut(key).map(Value::take).unwrap_or(Value::Null),
        )
        .map_err(|e| {
            CloudError::failed(format!(
                "openstack: GET {url}: the answer's `{key}` is not what the API reference describes: {e}"
            ))
        })?;
        items.extend(found);
        let next = page
            .get(format!("{key}_links"))
            .and_then(Value::as_array)
            .and_then(|links| links.iter().find(|l| l["rel"] == "next"))
            .and_then(|l| l["href"].as_str());
        let Some(next) = next else {
            return Ok(items);
        };
        seen.push(url);
        url = next_url(network, next);
        if seen.contains(&url) {
            return Err(CloudError::failed(format!(
                "openstack: the {key} list links back to {url}: stopped"
            )));
        }
    }
    Err(CloudError::failed(format!("openstack: the {key} list has more than {MAX_PAGES} pages: stopped")))
}

/// A server id is a UUID; anything else is percent-encoded rather than trusted in a URL.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}
