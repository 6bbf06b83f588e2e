//! Where a cloud's credentials come from, as the `openstack` CLI finds them: an entry of
//! clouds.yaml (the first file found of `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`) with the same entry of
//! secure.yaml merged over it, or the `OS_*` variables of an openrc file. Pure: the process
//! environment and the files are read through [`Env`], so tests give their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cloud::{CloudError, Secret};

/// The process environment, as far as clouds.yaml lookup needs it.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: HashMap<String, String>,
    pub home: Option<PathBuf>,
    pub cwd: PathBuf,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().filter(|(k, _)| k.starts_with("OS_")).collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
            cwd: std::env::current_dir().unwrap_or_default(),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The files looked at, in order, for `clouds.yaml` or `secure.yaml`.
    fn candidates(&self, file: &str, explicit: &str) -> Vec<PathBuf> {
        let mut list = Vec::new();
        if let Some(path) = self.var(explicit) {
            list.push(PathBuf::from(path));
        }
        list.push(self.cwd.join(file));
        if let Some(home) = &self.home {
            list.push(home.join(".config/openstack").join(file));
        }
        list.push(Path::new("/etc/openstack").join(file));
        list
    }
}

/// A user or project: by id, or by name within a domain (by id or name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Password {
        user: Named,
        password: Secret,
        project: Option<Named>,
    },
    /// By id, or by name with its user.
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        user: Option<Named>,
        secret: Secret,
    },
}

/// One cloud, ready to authenticate against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    pub name: String,
    /// Where it was read: a file, or `the OS_* variables`.
    pub origin: String,
    /// Keystone's v3 URL (`/v3` added when the configured one lacks it).
    pub auth_url: String,
    pub auth: Auth,
    pub region: Option<String>,
    /// `public` (the default), `internal` or `admin`.
    pub interface: String,
    pub cacert: Option<PathBuf>,
}

impl CloudConfig {
    /// Who authenticates, for messages (never a secret).
    pub fn who(&self) -> String {
        match &self.auth {
            Auth::Password { user, .. } => {
                format!("user {}", user.name.as_deref().or(user.id.as_deref()).unwrap_or("?"))
            }
            Auth::ApplicationCredential { id, name, .. } => {
                format!("application credential {}", name.as_deref().or(id.as_deref()).unwrap_or("?"))
            }
        }
    }
}

/// The cloud the inventory names (else `$OS_CLOUD`), or the `OS_*` variables.
pub fn load(cloud: Option<&str>, env: &Env) -> Result<CloudConfig, CloudError> {
    let name = cloud.map(str::to_string).or_else(|| env.var("OS_CLOUD").map(str::to_string));
    let Some(name) = name else {
        if env.var("OS_AUTH_URL").is_some() {
            return from_entry("envvars", &env_entry(env), "the OS_* variables", &env.cwd);
        }
        return Err(CloudError::invalid(
            "openstack: which cloud? Set `openstack.cloud` to an entry of clouds.yaml, or OS_CLOUD, \
             or source the project's openrc file (OS_AUTH_URL, OS_USERNAME, ...)",
        ));
    };
    let candidates = env.candidates("clouds.yaml", "OS_CLIENT_CONFIG_FILE");
    let Some(file) = candidates.iter().find(|p| p.is_file()) else {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(CloudError::invalid(format!(
            "openstack: cloud `{name}`: no clouds.yaml found (looked for {})",
            looked.join(", ")
        )));
    };
    let clouds = read_yaml(file)?;
    let Some(entry) = clouds.pointer(&format!("/clouds/{}", escape(&name))) else {
        let known: Vec<&String> =
            clouds.get("clouds").and_then(Value::as_object).map(|m| m.keys().collect()).unwrap_or_default();
        let known: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
        let known = match crate::inventory::closest(&name, &known) {
            _ if known.is_empty() => "it names none".to_string(),
            Some(near) => format!("did you mean `{near}`? Its clouds: {}", known.join(", ")),
            None => format!("its clouds: {}", known.join(", ")),
        };
        return Err(CloudError::invalid(format!(
            "openstack: no cloud `{name}` in {}; {known}",
            file.display()
        )));
    };
    let mut entry = entry.clone();
    let secure = env.candidates("secure.yaml", "OS_CLIENT_SECURE_FILE").into_iter().find(|p| p.is_file());
    if let Some(secure) = secure
        && let Some(extra) = read_yaml(&secure)?.pointer(&format!("/clouds/{}", escape(&name)))
    {
        merge(&mut entry, extra);
    }
    let dir = file.parent().unwrap_or(Path::new("/"));
    from_entry(&name, &entry, &file.display().to_string(), dir)
}

fn read_yaml(file: &Path) -> Result<Value, CloudError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CloudError::invalid(format!("openstack: cannot read {}: {e}", file.display())))?;
    serde_saphyr::from_str::<Value>(&text).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        CloudError::invalid(format!("openstack: {} is not valid YAML: {first}", file.display()))
    })
}

/// A JSON pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// secure.yaml over clouds.yaml: mappings merged key by key, anything else replaced.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The `OS_*` variables as a clouds.yaml entry.
fn env_entry(env: &Env) -> Value {
    let mut auth = serde_json::Map::new();
    let pairs = [
        ("auth_url", "OS_AUTH_URL"),
        ("username", "OS_USERNAME"),
        ("user_id", "OS_USER_ID"),
        ("password", "OS_PASSWORD"),
        ("project_name", "OS_PROJECT_NAME"),
        ("project_name", "OS_TENANT_NAME"),
        ("project_id", "OS_PROJECT_ID"),
        ("project_id", "OS_TENANT_ID"),
        ("user_domain_name", "OS_USER_DOMAIN_NAME"),
        ("user_domain_id", "OS_USER_DOMAIN_ID"),
        ("project_domain_name", "OS_PROJECT_DOMAIN_NAME"),
        ("project_domain_id", "OS_PROJECT_DOMAIN_ID"),
        ("application_credential_id", "OS_APPLICATION_CREDENTIAL_ID"),
        ("application_credential_name", "OS_APPLICATION_CREDENTIAL_NAME"),
        ("application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET"),
    ];
    for (key, var) in pairs {
        if let Some(value) = env.var(var)
            && !auth.contains_key(key)
        {
            auth.insert(key.into(), value.into());
        }
    }
    let mut entry = serde_json::Map::new();
    entry.insert("auth".into(), Value::Object(auth));
    for (key, var) in [
        ("auth_type", "OS_AUTH_TYPE"),
        ("region_name", "OS_REGION_NAME"),
        ("interface", "OS_INTERFACE"),
        ("cacert", "OS_CACERT"),
        ("identity_api_version", "OS_IDENTITY_API_VERSION"),
    ] {
        if let Some(value) = env.var(var) {
            entry.insert(key.into(), value.into());
        }
    }
    Value::Object(entry)
}

/// A scalar as text (YAML may give a project id as a number).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A clouds.yaml entry (secure.yaml merged) as a [`CloudConfig`].
pub fn from_entry(name: &str, entry: &Value, origin: &str, dir: &Path) -> Result<CloudConfig, CloudError> {
    let bad = |what: String| CloudError::invalid(format!("openstack: cloud `{name}` ({origin}): {what}"));
    let auth = entry.get("auth").cloned().unwrap_or(Value::Null);
    let get = |key: &str| text(auth.get(key));
    let Some(auth_url) = get("auth_url") else {
        return Err(bad("no auth.auth_url".into()));
    };
    if let Some(version) = text(entry.get("identity_api_version"))
        && version.trim_start_matches('v') != "3"
    {
        return Err(bad(format!("identity_api_version {version}: only Keystone v3 is supported")));
    }
    if entry.get("verify") == Some(&Value::Bool(false)) {
        return Err(bad(
            "verify: false is not supported: give the cloud's CA certificate as `cacert: FILE` instead"
                .into(),
        ));
    }
    // A user's domain: given, else the project's, else `domain_*`, else Keystone's `default`.
    let domain = |prefix: &str| -> (Option<String>, Option<String>) {
        let id = get(&format!("{prefix}_domain_id")).or_else(|| get("domain_id"));
        let name = get(&format!("{prefix}_domain_name")).or_else(|| get("domain_name"));
        if id.is_none() && name.is_none() { (Some("default".into()), None) } else { (id, name) }
    };
    let (user_domain_id, user_domain_name) = domain("user");
    let user = Named {
        id: get("user_id"),
        name: get("username"),
        domain_id: user_domain_id,
        domain_name: user_domain_name,
    };
    let has_user = user.id.is_some() || user.name.is_some();
    let auth_type = text(entry.get("auth_type")).unwrap_or_else(|| {
        if get("application_credential_secret").is_some() { "v3applicationcredential" } else { "password" }
            .into()
    });
    let auth = match auth_type.as_str() {
        "password" | "v3password" => {
            if !has_user {
                return Err(bad("no auth.username (or auth.user_id)".into()));
            }
            let Some(password) = get("password") else {
                return Err(bad(
                    "no auth.password (put it in secure.yaml beside clouds.yaml, or OS_PASSWORD)".into(),
                ));
            };
            let (project_domain_id, project_domain_name) = domain("project");
            let project = Named {
                id: get("project_id"),
                name: get("project_name"),
                domain_id: project_domain_id,
                domain_name: project_domain_name,
            };
            let scoped = project.id.is_some() || project.name.is_some();
            Auth::Password { user, password: Secret::new(password), project: scoped.then_some(project) }
        }
        "v3applicationcredential" | "applicationcredential" => {
            let Some(secret) = get("application_credential_secret") else {
                return Err(bad("no auth.application_credential_secret".into()));
            };
            let id = get("application_credential_id");
            let cred_name = get("application_credential_name");
            if id.is_none() && (cred_name.is_none() || !has_user) {
                return Err(bad(
                    "an application credential needs auth.application_credential_id, or its name and username".into(),
                ));
            }
            Auth::ApplicationCredential {
                id,
                name: cred_name,
                user: has_user.then_some(user),
                secret: Secret::new(secret),
            }
        }
        other => {
            return Err(bad(format!(
                "auth_type `{other}` is not supported (password, v3applicationcredential)"
            )));
        }
    };
    let interface = text(entry.get("interface")).unwrap_or_else(|| "public".into());
    let interface = interface.trim_end_matches("URL").to_string();
    if !["public", "internal", "admin"].contains(&interface.as_str()) {
        return Err(bad(format!("interface `{interface}` is not public, internal or admin")));
    }
    Ok(CloudConfig {
        name: name.to_string(),
        origin: origin.to_string(),
        auth_url: v3_url(&auth_url),
        auth,
        region: text(entry.get("region_name")),
        interface,
        cacert: text(entry.get("cacert")).map(|c| crate::inventory::expand_path(dir, &c)),
    })
}

/// Keystone's v3 root: `https://k:5000` and `https://k:5000/` become `https://k:5000/v3`.
pub fn v3_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/v3") { url.to_string() } else { format!("{url}/v3") }
}
