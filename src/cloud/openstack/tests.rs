use std::path::Path;

use serde_json::json;

use super::clouds_yaml::{Auth, Env, load};
use super::*;

fn server(value: serde_json::Value) -> Server {
    let mut base = json!({"id": "id-x", "name": "x", "status": "ACTIVE"});
    clouds_yaml::merge(&mut base, &value);
    serde_json::from_value(base).unwrap()
}

/// A temporary HOME with the given clouds.yaml and secure.yaml.
fn home(name: &str, clouds: &str, secure: Option<&str>) -> Env {
    let dir = std::env::temp_dir().join(format!("clusterup-clouds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = dir.join(".config/openstack");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("clouds.yaml"), clouds).unwrap();
    if let Some(secure) = secure {
        std::fs::write(config.join("secure.yaml"), secure).unwrap();
    }
    Env { vars: Default::default(), home: Some(dir.clone()), cwd: dir.join("elsewhere") }
}

const CLOUDS: &str = "clouds:
  mycloud:
    auth:
      auth_url: https://keystone.example:5000
      username: alice
      project_name: demo
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionOne
    interface: internal
    cacert: ca.pem
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example/v3/
      application_credential_id: ac-1
      application_credential_secret: s3cr3t
";

#[test]
fn clouds_yaml_with_secure_yaml_merged() {
    let env = home("merge", CLOUDS, Some("clouds:\n  mycloud:\n    auth:\n      password: hunter2\n"));
    let cloud = load(Some("mycloud"), &env).unwrap();
    assert_eq!(cloud.auth_url, "https://keystone.example:5000/v3");
    assert_eq!(cloud.region.as_deref(), Some("RegionOne"));
    assert_eq!(cloud.interface, "internal");
    assert_eq!(
        cloud.cacert.as_deref(),
        Some(env.home.as_ref().unwrap().join(".config/openstack/ca.pem").as_path())
    );
    let Auth::Password { user, password, project } = &cloud.auth else { panic!("{:?}", cloud.auth) };
    assert_eq!(user.name.as_deref(), Some("alice"));
    assert_eq!(user.domain_name.as_deref(), Some("Default"));
    assert_eq!(password.expose(), "hunter2");
    assert_eq!(project.as_ref().unwrap().domain_id.as_deref(), Some("default"));
    // Never in Debug output, so never in a log line made from it.
    assert!(!format!("{cloud:?}").contains("hunter2"));

    let cloud = load(Some("appcred"), &env).unwrap();
    assert_eq!(cloud.auth_url, "https://keystone.example/v3");
    assert!(matches!(&cloud.auth, Auth::ApplicationCredential { id: Some(id), .. } if id == "ac-1"));
}

#[test]
fn a_password_only_in_clouds_yaml_is_missing_without_secure_yaml() {
    let env = home("nopw", CLOUDS, None);
    let e = load(Some("mycloud"), &env).unwrap_err().to_string();
    assert!(e.contains("no auth.password"), "{e}");
}

#[test]
fn unknown_cloud_names_the_known_ones() {
    let env = home("unknown", CLOUDS, None);
    let e = load(Some("mycluod"), &env).unwrap_err();
    assert!(e.invalid_inventory);
    assert!(e.to_string().contains("no cloud `mycluod` in"), "{e}");
    assert!(e.to_string().contains("did you mean `mycloud`? Its clouds: appcred, mycloud"), "{e}");
    let mut env = env;
    env.vars.insert("OS_CLOUD".into(), "appcred".into());
    assert_eq!(load(None, &env).unwrap().name, "appcred");
}

#[test]
fn os_variables_without_a_cloud_name() {
    let mut env = Env { cwd: Path::new("/nonexistent").into(), ..Env::default() };
    assert!(load(None, &env).unwrap_err().to_string().contains("which cloud?"));
    for (k, v) in [
        ("OS_AUTH_URL", "https://k.example:5000/v3"),
        ("OS_USERNAME", "bob"),
        ("OS_PASSWORD", "pw"),
        ("OS_PROJECT_NAME", "p"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_REGION_NAME", "r2"),
        ("OS_INTERFACE", "publicURL"),
    ] {
        env.vars.insert(k.into(), v.into());
    }
    let cloud = load(None, &env).unwrap();
    assert_eq!(cloud.origin, "the OS_* variables");
    assert_eq!(cloud.region.as_deref(), Some("r2"));
    assert_eq!(cloud.interface, "public");
    let Auth::Password { user, project, .. } = &cloud.auth else { panic!() };
    assert_eq!(user.name.as_deref(), Some("bob"));
    assert_eq!(project.as_ref().unwrap().domain_id.as_deref(), Some("default"));
}

#[test]
fn selection_by_metadata_prefix_and_tags() {
    let servers = [
        server(
            json!({"name": "m1", "metadata": {"cluster": "homelab", "role": "manager"}, "tags": ["swarm"]}),
        ),
        server(json!({"name": "w1", "metadata": {"cluster": "homelab"}, "tags": []})),
        server(json!({"name": "other", "metadata": {"cluster": "prod"}, "tags": ["swarm"]})),
    ];
    let names =
        |sel: &OpenstackSelection| select(&servers, sel).iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let by_meta =
        OpenstackSelection { metadata: vec![("cluster".into(), "homelab".into())], ..Default::default() };
    assert_eq!(names(&by_meta), ["m1", "w1"]);
    let with_tag = OpenstackSelection { tags: vec!["swarm".into()], ..by_meta.clone() };
    assert_eq!(names(&with_tag), ["m1"]);
    let prefix = OpenstackSelection { name_prefix: Some("ot".into()), ..Default::default() };
    assert_eq!(names(&prefix), ["other"]);
    assert_eq!(describe(&with_tag), "metadata cluster=homelab, tag swarm");
}

#[test]
fn roles_from_metadata() {
    let s = |role: &str| server(json!({"name": "n1", "metadata": {"role": role}}));
    assert_eq!(roles(&s("manager"), "role").unwrap(), [Role::Manager]);
    assert_eq!(roles(&s("worker, nfs-server"), "role").unwrap(), [Role::Worker, Role::NfsServer]);
    assert!(roles(&s("boss"), "role").unwrap_err().contains("`boss` is not manager, worker or nfs-server"));
    assert!(roles(&s("manager,worker"), "role").is_err());
    let e = roles(&server(json!({"name": "n1"})), "swarm_role").unwrap_err();
    assert!(e.contains("has no `swarm_role` metadata"), "{e}");
    assert!(e.contains("openstack server set --property swarm_role=worker n1"), "{e}");
}

#[test]
fn address_choice_fixed_on_the_network_floating_anywhere() {
    let s = server(json!({"addresses": {
        "public": [{"addr": "203.0.113.9", "version": 4, "OS-EXT-IPS:type": "fixed"}],
        "private": [
            {"addr": "fd00::5", "version": 6, "OS-EXT-IPS:type": "fixed"},
            {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
            {"addr": "198.51.100.5", "version": 4, "OS-EXT-IPS:type": "floating"}]}}));
    let (fixed, floating) = addresses(&s, "private").unwrap();
    assert_eq!(fixed.to_string(), "10.0.0.5");
    assert_eq!(floating.unwrap().to_string(), "198.51.100.5");
    let (fixed, floating) = addresses(&s, "public").unwrap();
    assert_eq!(
        (fixed.to_string(), floating.unwrap().to_string()),
        ("203.0.113.9".into(), "198.51.100.5".into())
    );
    let e = addresses(&s, "storage").unwrap_err();
    assert!(e.contains("no address on network `storage`; its networks: private, public"), "{e}");
}

#[test]
fn login_users_of_cloud_images() {
    assert_eq!(login_user("debian"), Some("debian"));
    assert_eq!(login_user("Debian-12-genericcloud-amd64"), Some("debian"));
    assert_eq!(login_user("ubuntu"), Some("ubuntu"));
    assert_eq!(login_user("centos"), None);
}

/// The shipped example loads offline: its servers are not asked for until a command needs them.
#[test]
fn the_cloud_example_loads_offline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/openstack-cloud.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let inv = crate::inventory::Inventory::from_text(&path, &text).unwrap();
    assert!(inv.hosts.is_empty());
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let source = inv.openstack.unwrap();
    assert_eq!(source.cloud.as_deref(), Some("mycloud"));
    assert_eq!(source.select.metadata, [("cluster".to_string(), "prod".to_string())]);
    assert_eq!((source.role_key.as_str(), source.network.as_str()), ("role", "private"));
    assert_eq!(source.bastion.unwrap().server, "bastion");
    assert!(!source.ssh_user_given && !source.resolved);
    assert_eq!(source.timeout, std::time::Duration::from_secs(30));
}
