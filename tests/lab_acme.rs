//! Automatic TLS against a real ACME server on the container lab: Pebble (Let's Encrypt's test
//! CA, from Debian's package) on the lab network's gateway, its DNS stand-in sending every name
//! to the proxy's machine. The caddy template, pointed at it by vars, gets a certificate for a
//! public-looking name over HTTP-01, and the chain verifies against Pebble's root.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{clusterup, json, lab, lab_dir, three_machines_with_proxy};

const HOST: &str = "shop.clusterup-lab.example";

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn caddy_gets_a_certificate_from_an_acme_server_over_http_01() {
    lab(&["images"]);
    common::lab_up_with_engine(&["m1", "w1", "w2"]);
    let w1 = lab(&["addr", "w1"]).trim().to_string();
    let started = lab(&["acme", &w1]);
    let (directory, listener_cert) = started.trim().split_once(' ').expect("directory and certificate");
    let listener_pem = std::fs::read_to_string(listener_cert).unwrap();

    let indented: String = listener_pem.lines().map(|l| format!("        {l}\n")).collect();
    let text = three_machines_with_proxy("networks:\n  - name: reverse-proxy\n", &["caddy.tar", "app.tar"])
        .replace(
            "vars: {image: \"clusterup-lab/caddy:lab\", endpoint_mode: dnsrr, placement_label: proxy}",
            &format!(
                "vars:\n      image: clusterup-lab/caddy:lab\n      endpoint_mode: dnsrr\n      placement_label: proxy\n      \
                 email: ops@clusterup-lab.example\n      acme_ca: {directory}\n      acme_challenge: http\n      \
                 acme_ca_root: |\n{indented}"
            ),
        )
        + &format!(
            "  - name: shop\n    template: whoami\n    vars: {{image: \"clusterup-lab/app:lab\", replicas: 1, endpoint_mode: dnsrr}}\n    \
             expose: [{{service: web, host: {HOST}, port: 8080}}]\n"
        );
    let inv = lab_dir().join("acme.yml");
    std::fs::write(&inv, text).unwrap();
    let out = clusterup(&["init", "-i", inv.to_str().unwrap(), "--json", "--converge-timeout", "240"]);
    let report = json(&out);
    assert!(out.status.success(), "{report}");

    // Pebble's issuing root (new at each start of Pebble), to verify the chain with.
    let root = lab_dir().join("acme/issuing-root.pem");
    let fetched = Command::new("curl")
        .args(["-sS", "--cacert", listener_cert, "-o"])
        .arg(&root)
        .arg(directory.replace(":14000/dir", ":15000/roots/0"))
        .status()
        .unwrap();
    assert!(fetched.success());
    // Caddy asks for the certificate when it starts; HTTPS with Pebble's root verifies once
    // it has it.
    let resolve = format!("{HOST}:443:{w1}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let body = loop {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&root)
            .args(["--resolve", &resolve, &format!("https://{HOST}/")])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no verified HTTPS within 120 s: {}\npebble's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(lab_dir().join("acme/pebble.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(body.contains("clusterup-lab-app"), "{body}");
    let pebble_log = std::fs::read_to_string(lab_dir().join("acme/pebble.log")).unwrap();
    assert!(
        pebble_log.contains(&format!("validate w/ HTTP: http://{HOST}:80/.well-known/acme-challenge/")),
        "validated over HTTP-01: {pebble_log}"
    );
    assert!(!pebble_log.contains("validate w/ TLS-ALPN"), "only HTTP-01 was asked for: {pebble_log}");
    assert_eq!(pebble_log.matches("Issued certificate serial").count(), 1, "{pebble_log}");
    let chain = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo | openssl s_client -connect {w1}:443 -servername {HOST} 2>/dev/null | openssl x509 -noout -issuer -subject -ext subjectAltName"
        ))
        .output()
        .unwrap();
    let chain = String::from_utf8_lossy(&chain.stdout);
    assert!(chain.contains("Pebble") && chain.contains(HOST), "{chain}");
}
