//! Keystone v3: a token (`POST /v3/auth/tokens`, the token in the `X-Subject-Token` header) and
//! the service catalog in its body, from which every other URL is taken.

use hyper::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::clouds_yaml::{Auth, CloudConfig, Named};
use crate::cloud::http::Http;
use crate::cloud::{CloudError, Secret};

/// An authenticated session: the token (memory only) and where the services are.
#[derive(Debug)]
pub struct Session {
    pub token: Secret,
    pub catalog: Vec<CatalogService>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CatalogService {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Endpoint {
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

fn named(n: &Named) -> Value {
    let mut v = serde_json::Map::new();
    if let Some(id) = &n.id {
        v.insert("id".into(), id.clone().into());
    } else if let Some(name) = &n.name {
        v.insert("name".into(), name.clone().into());
        let domain = match (&n.domain_id, &n.domain_name) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(name)) => json!({"name": name}),
            (None, None) => json!({"id": "default"}),
        };
        v.insert("domain".into(), domain);
    }
    Value::Object(v)
}

/// The request body of `POST /v3/auth/tokens` (it holds the secret: never logged).
pub fn auth_body(auth: &Auth) -> Value {
    match auth {
        Auth::Password { user, password, project } => {
            let mut user = named(user);
            user["password"] = password.expose().into();
            let mut body =
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}});
            if let Some(project) = project {
                body["auth"]["scope"] = json!({"project": named(project)});
            }
            body
        }
        Auth::ApplicationCredential { id, name, user, secret } => {
            let mut cred = serde_json::Map::new();
            match (id, name, user) {
                (Some(id), _, _) => {
                    cred.insert("id".into(), id.clone().into());
                }
                (None, Some(name), Some(user)) => {
                    cred.insert("name".into(), name.clone().into());
                    cred.insert("user".into(), named(user));
                }
                _ => {}
            }
            cred.insert("secret".into(), secret.expose().into());
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": cred}}})
        }
    }
}

/// A token and the catalog for `cloud`.
pub async fn authenticate(http: &Http, cloud: &CloudConfig) -> Result<Session, CloudError> {
    let url = format!("{}/auth/tokens", cloud.auth_url);
    let body = serde_json::to_vec(&auth_body(&cloud.auth)).unwrap_or_default();
    let reply = http
        .request(Method::POST, &url, None, &[], Some(body))
        .await
        .map_err(|e| CloudError::failed(format!("openstack: Keystone of cloud `{}`: {e}", cloud.name)))?;
    match reply.status {
        201 | 200 => {}
        401 => {
            return Err(CloudError::failed(format!(
                "openstack: Keystone ({url}) refused the credentials of cloud `{}` ({}, from {}): HTTP 401. \
                 Check the password or application credential (secure.yaml, OS_PASSWORD), the user's and \
                 project's domains, and that the credential has not expired",
                cloud.name,
                cloud.who(),
                cloud.origin
            )));
        }
        status => {
            return Err(CloudError::failed(format!(
                "openstack: Keystone ({url}) answered HTTP {status}{}",
                api_message(&reply.body, &cloud.auth)
            )));
        }
    }
    let token = reply
        .headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| {
            CloudError::failed(format!("openstack: Keystone ({url}) gave no X-Subject-Token header"))
        })?;
    let body: TokenBody = reply.json(&url).map_err(|e| CloudError::failed(format!("openstack: {e}")))?;
    Ok(Session { token, catalog: body.token.catalog })
}

/// The `message` of an OpenStack error body (`{"error": {"message": ...}}`, `{"badRequest":
/// {...}}`, `{"NeutronError": {...}}`), short, with any secret of `auth` taken out.
pub fn api_message(body: &[u8], auth: &Auth) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return String::new() };
    let message = value
        .as_object()
        .and_then(|o| o.values().find_map(|v| v.get("message").and_then(Value::as_str)))
        .unwrap_or_default();
    if message.is_empty() {
        return String::new();
    }
    let mut message: String = message.chars().take(300).collect();
    let secret = match auth {
        Auth::Password { password, .. } => password,
        Auth::ApplicationCredential { secret, .. } => secret,
    };
    if !secret.is_empty() {
        message = message.replace(secret.expose(), "<redacted>");
    }
    format!(": {message}")
}

/// The URL of service `kind` (`compute`, `network`, `image`) for the cloud's interface and
/// region; an error that lists what the catalog has when it is not there.
pub fn endpoint(catalog: &[CatalogService], kind: &str, cloud: &CloudConfig) -> Result<String, CloudError> {
    let region_ok = |e: &Endpoint| {
        cloud
            .region
            .as_deref()
            .is_none_or(|r| e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r))
    };
    let found = catalog
        .iter()
        .filter(|s| s.kind == kind)
        .flat_map(|s| &s.endpoints)
        .find(|e| e.interface == cloud.interface && region_ok(e));
    if let Some(e) = found {
        return Ok(e.url.trim_end_matches('/').to_string());
    }
    let region = cloud.region.as_deref().map(|r| format!(" in region {r}")).unwrap_or_default();
    if catalog.is_empty() {
        return Err(CloudError::invalid(format!(
            "openstack: cloud `{}`: the token has an empty service catalog (no `{kind}` endpoint): \
             is it scoped to a project? Set auth.project_name (or project_id) in clouds.yaml",
            cloud.name
        )));
    }
    let have: Vec<String> = catalog
        .iter()
        .flat_map(|s| {
            s.endpoints.iter().map(move |e| {
                format!(
                    "{} {} {}",
                    s.kind,
                    e.interface,
                    e.region_id.as_deref().or(e.region.as_deref()).unwrap_or("-")
                )
            })
        })
        .collect();
    Err(CloudError::invalid(format!(
        "openstack: cloud `{}`: the service catalog has no `{kind}` endpoint with interface {}{region} \
         (set region_name / interface in clouds.yaml); it has: {}",
        cloud.name,
        cloud.interface,
        have.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(region: Option<&str>) -> CloudConfig {
        CloudConfig {
            name: "c".into(),
            origin: "test".into(),
            auth_url: "http://k/v3".into(),
            auth: Auth::ApplicationCredential {
                id: Some("ac".into()),
                name: None,
                user: None,
                secret: Secret::new("s3cr3t"),
            },
            region: region.map(str::to_string),
            interface: "public".into(),
            cacert: None,
        }
    }

    fn catalog() -> Vec<CatalogService> {
        serde_json::from_value(json!([
            {"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "one", "url": "http://nova-int/v2.1"},
                {"interface": "public", "region_id": "one", "url": "http://nova-one/v2.1/"},
                {"interface": "public", "region_id": "two", "url": "http://nova-two/v2.1"}]},
            {"type": "network", "endpoints": [{"interface": "public", "region_id": "one", "url": "http://neutron"}]}
        ]))
        .unwrap()
    }

    #[test]
    fn endpoints_follow_the_region_and_interface() {
        assert_eq!(endpoint(&catalog(), "compute", &cloud(Some("two"))).unwrap(), "http://nova-two/v2.1");
        assert_eq!(endpoint(&catalog(), "compute", &cloud(Some("one"))).unwrap(), "http://nova-one/v2.1");
        let e = endpoint(&catalog(), "network", &cloud(Some("two"))).unwrap_err().to_string();
        assert!(e.contains("no `network` endpoint with interface public in region two"), "{e}");
        assert!(e.contains("network public one"), "{e}");
    }

    #[test]
    fn auth_bodies_follow_the_identity_api() {
        let password = Auth::Password {
            user: Named {
                name: Some("alice".into()),
                domain_name: Some("Default".into()),
                ..Named::default()
            },
            password: Secret::new("pw"),
            project: Some(Named {
                name: Some("demo".into()),
                domain_id: Some("default".into()),
                ..Named::default()
            }),
        };
        assert_eq!(
            auth_body(&password),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user":
                    {"name": "alice", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
        );
        assert_eq!(
            auth_body(&cloud(None).auth),
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": "ac", "secret": "s3cr3t"}}}})
        );
        assert_eq!(format!("{:?}", cloud(None).auth).matches("s3cr3t").count(), 0);
    }

    #[test]
    fn error_messages_never_echo_the_secret() {
        let body = br#"{"error": {"message": "bad secret s3cr3t given", "code": 400}}"#;
        assert_eq!(api_message(body, &cloud(None).auth), ": bad secret <redacted> given");
    }
}
