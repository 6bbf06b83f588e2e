//! The commands that touch no host, run through the real binary: `render` (as a YAML stream on
//! stdout, and as deployed files with `--out`), `new` and `completions`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A homelab like `inventories/homelab.yml`, plus a ShinyProxy stack (a YAML file beside its
/// compose file). No identity_file, so no SSH key is needed; secret values come from the
/// environment `clusterup` gets.
const INVENTORY: &str = r#"
cluster: {name: homelab}
ssh: {user: admin}
hosts:
  - {name: m1, address: 192.0.2.21, roles: [manager], labels: {zone: a}}
  - {name: w1, address: 192.0.2.31, roles: [worker], labels: {zone: a, edge: true}}
  - {name: w2, address: 192.0.2.32, roles: [worker], labels: {zone: b}}
  - {name: nas, address: 192.0.2.10, kind: nas, roles: [nfs-server]}
storage:
  nfs: {server: nas, path: /srv/clusterup}
networks:
  - name: reverse-proxy
  - {name: database, encrypted: true}
  - name: object-store
secrets:
  - {name: postgres_password, env: CLUSTERUP_TEST_PG}
  - {name: minio_root_password, env: CLUSTERUP_TEST_MINIO}
  - {name: shinyproxy_client_secret, env: CLUSTERUP_TEST_SHINY}
stacks:
  - name: proxy
    template: caddy
    vars: {email: ops@example.com, placement_label: edge}
  - name: db
    template: postgres
    networks: [database]
    vars: {user: app, db: app}
  - name: s3
    template: minio
    networks: [object-store]
    expose: [{service: minio, host: s3.example.com, port: 9000}]
  - name: whoami
    template: whoami
    expose: [{service: web, host: whoami.home.arpa, port: 80}]
  - name: apps
    template: shinyproxy
    vars:
      auth: openid
      openid: {auth_url: "https://sso.example.com/auth", token_url: "https://sso.example.com/token",
               jwks_url: "https://sso.example.com/certs", client_id: shinyproxy}
      apps: [{id: hello, display_name: Hello, image: "openanalytics/shinyproxy-demo", port: 3838}]
    expose: [{service: shinyproxy, host: apps.example.com, port: 8080, sticky: true}]
"#;

/// A fresh, empty directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clusterup-cli-offline-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn clusterup(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(args)
        .current_dir(dir)
        .env("CLUSTERUP_TEST_PG", "pg-secret-value")
        .env("CLUSTERUP_TEST_MINIO", "minio-secret-value")
        .env("CLUSTERUP_TEST_SHINY", "shiny-secret-value")
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run clusterup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(what: &str, out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{what} failed:\n{}", text(&out.stderr));
    text(&out.stdout)
}

fn write_inventory(dir: &Path) -> String {
    let path = dir.join("homelab.yml");
    fs::write(&path, INVENTORY).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn render_prints_one_yaml_document_per_yaml_file() {
    let dir = fresh_dir("render-stdout");
    let inv = write_inventory(&dir);
    let stdout = succeeded("render", &clusterup(&dir, &["render", "-i", &inv]));

    let documents: Vec<Value> = serde_saphyr::from_multiple(&stdout)
        .unwrap_or_else(|e| panic!("render's stdout is not a YAML stream: {e}\n{stdout}"));
    // Five compose files and ShinyProxy's application.yml; not the Caddyfile.
    assert_eq!(documents.len(), 6, "{stdout}");
    assert_eq!(stdout.lines().filter(|l| *l == "---").count(), 6, "{stdout}");
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# stack ")).collect();
    let expected = [
        "# stack proxy: stack.yml (sha256 ",
        "# stack proxy: Caddyfile (not YAML): shown with --out DIR",
        "# stack db: stack.yml (sha256 ",
        "# stack s3: stack.yml (sha256 ",
        "# stack whoami: stack.yml (sha256 ",
        "# stack apps: stack.yml (sha256 ",
        "# stack apps: application.yml, deployed beside stack.yml as a swarm config",
    ];
    assert_eq!(headers.len(), expected.len(), "{headers:#?}");
    for (header, expected) in headers.iter().zip(expected) {
        assert!(header.starts_with(expected), "`{header}` is not `{expected}...`");
    }
    // Each `---` is followed by the comment naming its document.
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, _) in lines.iter().enumerate().filter(|(_, l)| **l == "---") {
        assert!(lines.get(i + 1).is_some_and(|l| l.starts_with("# stack ")), "line {}: {stdout}", i + 2);
    }
    for (i, doc) in documents.iter().enumerate() {
        let is_compose = doc.get("services").is_some();
        assert!(is_compose || i == 5, "document {i} has no services: {doc}");
    }
    assert!(documents[5].get("proxy").is_some(), "application.yml: {}", documents[5]);
    // The Caddyfile (routes, global options) stays out of stdout.
    assert!(!stdout.contains("reverse_proxy") && !stdout.contains("admin off"), "{stdout}");
    // No secret value in the output, only the secrets' names.
    assert!(!stdout.contains("secret-value"), "{stdout}");

    // One stack: only its documents.
    let one = succeeded("render apps", &clusterup(&dir, &["render", "-i", &inv, "apps"]));
    let documents: Vec<Value> = serde_saphyr::from_multiple(&one).unwrap();
    assert_eq!(documents.len(), 2, "{one}");
    assert!(!one.contains("# stack proxy"), "{one}");

    let missing = clusterup(&dir, &["render", "-i", &inv, "nope"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(text(&missing.stderr).contains("no stack `nope`"), "{}", text(&missing.stderr));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn render_out_writes_the_files_as_deployed() {
    let dir = fresh_dir("render-out");
    let inv = write_inventory(&dir);
    let out = dir.join("rendered");
    // A stale file is overwritten.
    fs::create_dir_all(out.join("proxy")).unwrap();
    fs::write(out.join("proxy/Caddyfile"), "stale\n").unwrap();

    let run = clusterup(&dir, &["render", "-i", &inv, "--out", out.to_str().unwrap()]);
    assert!(succeeded("render --out", &run).is_empty(), "nothing on stdout with --out");
    let stderr = text(&run.stderr);

    let expected = [
        "proxy/stack.yml",
        "proxy/Caddyfile",
        "db/stack.yml",
        "s3/stack.yml",
        "whoami/stack.yml",
        "apps/stack.yml",
        "apps/application.yml",
    ];
    for file in expected {
        let path = out.join(file);
        assert!(path.is_file(), "{} not written; stderr:\n{stderr}", path.display());
        assert!(
            stderr.contains(&path.display().to_string()),
            "{} not named on stderr:\n{stderr}",
            path.display()
        );
    }
    let mut written: Vec<String> = Vec::new();
    for stack in fs::read_dir(&out).unwrap().flatten() {
        for file in fs::read_dir(stack.path()).unwrap().flatten() {
            written.push(format!(
                "{}/{}",
                stack.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            ));
        }
    }
    written.sort();
    let mut expected_sorted: Vec<String> = expected.iter().map(ToString::to_string).collect();
    expected_sorted.sort();
    assert_eq!(written, expected_sorted);

    // Every compose file parses, and each `file: ./NAME` it names is beside it.
    for stack in ["proxy", "db", "s3", "whoami", "apps"] {
        let folder = out.join(stack);
        let compose = fs::read_to_string(folder.join("stack.yml")).unwrap();
        let doc: Value = serde_saphyr::from_str(&compose)
            .unwrap_or_else(|e| panic!("{stack}/stack.yml does not parse: {e}\n{compose}"));
        assert!(doc.get("services").and_then(Value::as_object).is_some_and(|s| !s.is_empty()), "{compose}");
        let configs = doc.get("configs").and_then(Value::as_object).cloned().unwrap_or_default();
        for (name, config) in configs {
            let file = config.get("file").and_then(Value::as_str).expect("a config from a file");
            assert!(folder.join(file).is_file(), "{stack}: config {name} names {file}, not written");
        }
    }
    let caddyfile = fs::read_to_string(out.join("proxy/Caddyfile")).unwrap();
    assert!(caddyfile.contains("whoami.home.arpa {") && caddyfile.contains("tls internal"), "{caddyfile}");
    let application: Value =
        serde_saphyr::from_str(&fs::read_to_string(out.join("apps/application.yml")).unwrap()).unwrap();
    assert!(application.get("proxy").is_some(), "{application}");

    // The compose written is the one stdout shows (same stack digest and text).
    let stdout = succeeded("render proxy", &clusterup(&dir, &["render", "-i", &inv, "proxy"]));
    let compose = fs::read_to_string(out.join("proxy/stack.yml")).unwrap();
    assert!(stdout.contains(&compose), "stdout:\n{stdout}\nfile:\n{compose}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn new_writes_a_starter_inventory_that_loads_and_renders() {
    let dir = fresh_dir("new");
    let file = dir.join("home.yml");
    let file_arg = file.to_str().unwrap();
    let args = [
        "new",
        "--out",
        file_arg,
        "--cluster",
        "home",
        "--user",
        "admin",
        "--manager",
        "m1=192.0.2.21",
        "--worker",
        "w1=192.0.2.31",
        "--worker",
        "w2=192.0.2.32",
        "--nas",
        "nas=192.0.2.10",
        "--domain",
        "example.com",
    ];
    let run = clusterup(&dir, &args);
    assert!(succeeded("new", &run).is_empty(), "nothing on stdout with --out");
    let written = fs::read_to_string(&file).unwrap();
    assert!(written.contains("host: whoami.example.com"), "{written}");

    // The same text on stdout without --out.
    let stdout_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--out" && *a != file_arg).collect();
    let stdout = succeeded("new (stdout)", &clusterup(&dir, &stdout_args));
    assert_eq!(stdout.replace("inventory.yml", "home.yml"), written);

    // It does not overwrite without --force.
    fs::write(&file, "mine\n").unwrap();
    let again = clusterup(&dir, &args);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
    assert_eq!(fs::read_to_string(&file).unwrap(), "mine\n");
    let mut forced = args.to_vec();
    forced.push("--force");
    succeeded("new --force", &clusterup(&dir, &forced));
    assert_eq!(fs::read_to_string(&file).unwrap(), written);

    // What it wrote is an inventory clusterup takes, and its stacks render.
    let json = succeeded("inventory", &clusterup(&dir, &["inventory", "-i", file_arg, "--json"]));
    let inv: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(inv["cluster"], "home");
    assert_eq!(inv["hosts"].as_array().map(Vec::len), Some(4));
    let rendered = succeeded("render", &clusterup(&dir, &["render", "-i", file_arg]));
    let documents: Vec<Value> = serde_saphyr::from_multiple(&rendered).unwrap();
    assert_eq!(documents.len(), 2, "{rendered}");

    // Arguments are checked, with the reason.
    let bad = clusterup(&dir, &["new", "--manager", "m1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("`m1` is not NAME=ADDR"), "{}", text(&bad.stderr));
    let twice = clusterup(&dir, &["new", "--manager", "m1=192.0.2.1", "--worker", "m1=192.0.2.2"]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(text(&twice.stderr).contains("host name `m1` is given twice"), "{}", text(&twice.stderr));
    let none = clusterup(&dir, &["new", "--worker", "w1=192.0.2.2"]);
    assert_eq!(none.status.code(), Some(2), "a manager is required");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn completions_name_the_commands() {
    let dir = fresh_dir("completions");
    let bash = succeeded("completions bash", &clusterup(&dir, &["completions", "bash"]));
    assert!(bash.contains("clusterup") && bash.contains("render"), "{bash}");
    assert!(bash.contains("--recreate-volumes") && bash.contains("--manager"), "{bash}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = succeeded(shell, &clusterup(&dir, &["completions", shell]));
        assert!(script.contains("render"), "{shell}: {script}");
    }
    assert_eq!(clusterup(&dir, &["completions", "tcsh"]).status.code(), Some(2));
    let _ = fs::remove_dir_all(&dir);
}
