//! Nova: the project's servers (`GET /servers/detail`, page after page through
//! `servers_links` rel=next, with the pager Neutron's lists use too) with their addresses per network, metadata and tags; and Glance,
//! for the distribution of a server's image (its login user).

use std::collections::BTreeMap;

use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use super::keystone::Session;
use crate::cloud::CloudError;
use crate::cloud::http::Http;

/// Tags appear in a server's details from compute API microversion 2.26.
const MICROVERSION: &str = "compute 2.26";
/// A paging loop stops here whatever the links say.
const MAX_PAGES: usize = 1000;

#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub status: String,
    /// Network name -> addresses on it.
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<Address>>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `{"id": ...}`, or `""` for a server booted from a volume.
    #[serde(default)]
    pub image: Value,
}

impl Server {
    pub fn image_id(&self) -> Option<&str> {
        self.image.get("id").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub addr: String,
    #[serde(default)]
    pub version: u8,
    /// `fixed` (on the network) or `floating` (NATed from outside).
    #[serde(rename = "OS-EXT-IPS:type", default)]
    pub kind: Option<String>,
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or(url, |i| &url[..after + i])
}

/// The next page's URL: the link's path and query on the compute endpoint's own origin, so a
/// link can never send the token elsewhere (and a proxy's `http://` links still work).
pub fn next_url(compute: &str, href: &str) -> String {
    let path = if href.contains("://") { &href[origin(href).len()..] } else { href };
    format!(
        "{}{}",
        origin(compute),
        if path.starts_with('/') { path.to_string() } else { format!("/{path}") }
    )
}

/// Every server of the project, all pages.
pub async fn list_servers(http: &Http, session: &Session, compute: &str) -> Result<Vec<Server>, CloudError> {
    let url = format!("{compute}/servers/detail");
    list_all(http, session, compute, &url, "servers", &[("OpenStack-API-Version", MICROVERSION)]).await
}

/// Every item of an OpenStack list, all pages: `{"KEY": [...], "KEY_links": [{"rel": "next",
/// "href": ...}]}`, as Nova pages servers and Neutron pages when `pagination_max_limit` is
/// set. Each next page is asked for on `endpoint`'s own origin (see `next_url`).
pub async fn list_all<T: serde::de::DeserializeOwned>(
    http: &Http,
    session: &Session,
    endpoint: &str,
    first: &str,
    key: &str,
    headers: &[(&'static str, &str)],
) -> Result<Vec<T>, CloudError> {
    let mut url = first.to_string();
    let mut items = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut page: Value = get(http, session, &url, headers).await?;
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
        url = next_url(endpoint, next);
        if seen.contains(&url) {
            return Err(CloudError::failed(format!(
                "openstack: the {key} list links back to {url}: stopped"
            )));
        }
    }
    Err(CloudError::failed(format!("openstack: the {key} list has more than {MAX_PAGES} pages: stopped")))
}

#[derive(Deserialize)]
struct Image {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    os_distro: Option<String>,
}

/// The distribution of an image: its `os_distro` property, else the start of its name
/// (`debian-12-genericcloud`). None when the image service does not say.
pub async fn image_distro(http: &Http, session: &Session, image_url: &str, id: &str) -> Option<String> {
    let url = format!("{image_url}/images/{id}");
    let image: Image = get(http, session, &url, &[]).await.ok()?;
    image.os_distro.or(image.name).map(|d| d.to_ascii_lowercase())
}

/// A GET with the token, its JSON body, and errors that name the URL and status.
pub async fn get<T: serde::de::DeserializeOwned>(
    http: &Http,
    session: &Session,
    url: &str,
    headers: &[(&'static str, &str)],
) -> Result<T, CloudError> {
    let reply = http
        .request(Method::GET, url, Some(&session.token), headers, None)
        .await
        .map_err(|e| CloudError::failed(format!("openstack: {e}")))?;
    if reply.status != 200 {
        return Err(refused("GET", url, reply.status, &reply.body));
    }
    reply.json(url).map_err(|e| CloudError::failed(format!("openstack: {e}")))
}

/// A request that changes something (POST, PUT) with a JSON body; `Ok(None)` for an answer in
/// `tolerated` (e.g. 409: what was asked for exists already), the JSON answer for a 2xx.
pub async fn send(
    http: &Http,
    session: &Session,
    method: Method,
    url: &str,
    headers: &[(&'static str, &str)],
    body: &Value,
    tolerated: &[u16],
) -> Result<Option<Value>, CloudError> {
    let reply = http
        .request(method.clone(), url, Some(&session.token), headers, Some(body.to_string().into_bytes()))
        .await
        .map_err(|e| CloudError::failed(format!("openstack: {e}")))?;
    if tolerated.contains(&reply.status) {
        return Ok(None);
    }
    if !(200..300).contains(&reply.status) {
        return Err(refused(method.as_str(), url, reply.status, &reply.body));
    }
    reply.json(url).map(Some).map_err(|e| CloudError::failed(format!("openstack: {e}")))
}

/// An API's refusal, with the message of its error body (OpenStack APIs wrap it in one key).
fn refused(method: &str, url: &str, status: u16, body: &[u8]) -> CloudError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.as_object()?.values().find_map(|e| e.get("message").and_then(Value::as_str).map(str::to_string))
        })
        .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
        .unwrap_or_default();
    let hint = match status {
        401 => " (the token was refused)",
        403 => " (the credentials may not do this in the project)",
        _ => "",
    };
    CloudError::failed(format!("openstack: {method} {url}: HTTP {status}{hint}{message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_pages_stay_on_the_endpoint() {
        let compute = "https://nova.example:8774/v2.1";
        assert_eq!(
            next_url(compute, "http://nova.example:8774/v2.1/servers/detail?marker=abc"),
            "https://nova.example:8774/v2.1/servers/detail?marker=abc"
        );
        assert_eq!(
            next_url(compute, "https://evil.example/steal?marker=1"),
            "https://nova.example:8774/steal?marker=1"
        );
        assert_eq!(next_url("http://127.0.0.1:5/compute", "/compute/x"), "http://127.0.0.1:5/compute/x");
    }
}
