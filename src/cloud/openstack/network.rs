//! Neutron: each server's ports (which security groups filter its traffic) and the project's
//! security groups with their rules, every list read page after page (`<resource>_links`
//! rel=next, as Neutron pages when its `pagination_max_limit` is set).

use serde::Deserialize;

use super::compute::list_all;
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
    list_all(http, session, network, &url, "ports", &[]).await
}

pub async fn security_groups(
    http: &Http,
    session: &Session,
    network: &str,
) -> Result<Vec<SecurityGroup>, CloudError> {
    let url = format!("{}/security-groups", v2_url(network));
    list_all(http, session, network, &url, "security_groups", &[]).await
}

/// A server id is a UUID; anything else is percent-encoded rather than trusted in a URL.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}
