//! Malformed inventories, each run through the real binary: every one must be refused with exit
//! status 3 and a message naming the file (and the line, where the problem has one), quickly,
//! without a panic. A good inventory next to them must be accepted, so the table proves the
//! binary tells good from bad rather than refusing everything.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How one case runs the binary.
#[derive(Clone, Copy, Debug)]
enum Cmd {
    /// `clusterup inventory -i FILE`: parse, validate, resolve.
    Inventory,
    /// `clusterup render -i FILE`: all of the above, then render every stack's templates.
    Render,
    /// `clusterup plan -i FILE`: must refuse a bad inventory before it connects anywhere.
    /// Its cases use loopback addresses only, so even a regression contacts no other machine.
    Plan,
}

/// What a file of a case holds.
enum Body {
    /// YAML written indented in this file: the leading newline and common indentation are
    /// removed, so the first line after `r#"` is line 1.
    Yaml(&'static str),
    /// Bytes written exactly as given.
    Raw(&'static [u8]),
    /// Bytes too big or too odd to write inline.
    Make(fn() -> Vec<u8>),
    /// A directory instead of a file.
    Dir,
}

struct Case {
    name: &'static str,
    /// Files to create in the case's fresh directory: (relative path, content).
    files: &'static [(&'static str, Body)],
    command: Cmd,
    /// The file the message must name, relative to the case's directory.
    blame: &'static str,
    /// The line of `blame` the message must give, as `FILE:LINE:`, when the problem has one.
    line: Option<u32>,
    /// A stable piece of the message.
    fragment: &'static str,
}

use Body::*;
use Cmd::*;

/// The inventory every case passes with `-i`.
const INV: &str = "inventory.yml";

/// A child that runs longer than this is hung (the YAML bomb is the case that would).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Address-space limit of the child, so a runaway allocation fails instead of eating the machine.
const MEMORY_LIMIT_KIB: u64 = 2 * 1024 * 1024;

const CASES: &[Case] = &[
    // --- wrong types -------------------------------------------------------------------------
    Case {
        name: "port_is_a_word",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  port: twenty
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "expected a whole number from 0 to 65535",
    },
    Case {
        name: "port_out_of_range",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  port: 70000
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "expected a whole number from 0 to 65535",
    },
    Case {
        name: "roles_is_a_string",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    roles: manager
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "expected sequence",
    },
    Case {
        name: "labels_is_a_list",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    roles: [manager]
                    labels: [ssd, zone-a]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(6),
        fragment: "expected mapping",
    },
    Case {
        name: "label_value_is_a_list",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager], labels: {zone: [a, b]}}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "expected a string, number or boolean",
    },
    Case {
        name: "hosts_is_a_map",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  m1: {address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "expected sequence",
    },
    // --- unknown keys (typos) ----------------------------------------------------------------
    Case {
        name: "unknown_top_level_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hostz: []
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(2),
        fragment: "unknown key `hostz` at the top level: did you mean `hosts`?",
    },
    Case {
        name: "unknown_host_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    adress: 10.0.0.1
                    roles: [manager]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(4),
        fragment: "unknown key `adress` in `hosts[]`: did you mean `address`?",
    },
    Case {
        name: "unknown_ssh_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  usr: admin
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "unknown key `usr` in `ssh`: did you mean `user`?",
    },
    Case {
        name: "unknown_docker_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                docker:
                  sauce: distro
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "unknown key `sauce` in `docker`: known keys: source,",
    },
    Case {
        name: "unknown_stack_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                stacks:
                  - name: web
                    template: whoami
                    replicas: 2
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(7),
        fragment: "unknown key `replicas` in `stacks[]`",
    },
    // --- unknown values ----------------------------------------------------------------------
    Case {
        name: "unknown_role",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    roles: [manager, boss]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "unknown variant `boss`",
    },
    Case {
        name: "unknown_kind",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    kind: mainframe
                    roles: [manager]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "unknown variant `mainframe`",
    },
    Case {
        name: "unknown_host_key_policy",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  host_key_policy: yolo
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "unknown variant `yolo`",
    },
    // --- duplicates --------------------------------------------------------------------------
    Case {
        name: "duplicate_host_name",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                  - {name: m1, address: 10.0.0.2}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(4),
        fragment: "host name `m1` is used twice (first at line 3)",
    },
    Case {
        name: "duplicate_address",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                  - {name: w1, address: 10.0.0.1}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(4),
        fragment: "is already the address of host `m1` (line 3)",
    },
    Case {
        name: "duplicate_yaml_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    name: m2
                    roles: [manager]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "duplicate mapping key",
    },
    // --- bad values --------------------------------------------------------------------------
    Case {
        name: "address_999",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 999.1.1.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "address `999.1.1.1` of host `m1` is neither an IP address nor a DNS name",
    },
    Case {
        name: "address_with_spaces",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: "my host", roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "address `my host` of host `m1` is neither an IP address nor a DNS name",
    },
    Case {
        name: "address_octet_300",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.300, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "address `10.0.0.300` of host `m1` is neither an IP address nor a DNS name",
    },
    Case {
        name: "advertise_address_not_an_ip",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager], advertise_address: eth0}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "advertise_address `eth0` of host `m1` must be an IP address",
    },
    Case {
        name: "bad_bastion",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  bastion: "user@:0"
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "bastion `user@:0` has an invalid port `0`",
    },
    Case {
        name: "invalid_cluster_name",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: Home_Lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(1),
        fragment: "cluster name `Home_Lab` must be",
    },
    Case {
        name: "ssh_port_zero",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  port: 0
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "port 0 is not a valid SSH port",
    },
    Case {
        name: "host_ssh_user_invalid",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    roles: [manager]
                    ssh:
                      user: "ops admin"
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(7),
        fragment: "user `ops admin` is not a valid user name",
    },
    Case {
        name: "command_timeout_zero",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  command_timeout: 0
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "command_timeout must be at least 1 second",
    },
    Case {
        name: "label_key_invalid",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - name: m1
                    address: 10.0.0.1
                    roles: [manager]
                    labels:
                      zone: a
                      "disk type": ssd
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(8),
        fragment: "label `disk type` of host `m1` must be",
    },
    Case {
        name: "network_mtu_out_of_range",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                networks:
                  - {name: database, mtu: 100}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "mtu 100 is outside 576-9216",
    },
    Case {
        name: "secret_with_env_and_file",
        files: &[
            (
                INV,
                Yaml(
                    r#"
                    cluster: {name: lab}
                    hosts:
                      - {name: m1, address: 10.0.0.1, roles: [manager]}
                    secrets:
                      - {name: pg, env: PG_PASSWORD, file: ./pg}
                    "#,
                ),
            ),
            ("pg", Raw(b"hunter2\n")),
        ],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "needs exactly one of `env:`",
    },
    // --- hosts and roles ---------------------------------------------------------------------
    Case {
        name: "empty_hosts_list",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts: []
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(2),
        fragment: "`hosts` is empty",
    },
    Case {
        name: "no_manager",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: w1, address: 10.0.0.1}
                  - {name: w2, address: 10.0.0.2, roles: [worker]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "no host has the `manager` role",
    },
    Case {
        name: "manager_and_worker",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager, worker]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "host `m1` is both manager and worker",
    },
    // --- files the inventory points at -------------------------------------------------------
    Case {
        name: "missing_secret_file",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                secrets:
                  - {name: pg, file: ./secrets/pg}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "secret file `./secrets/pg` does not exist",
    },
    Case {
        name: "missing_image_archive",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                images:
                  preload: [./images/app.tar]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "image archive `./images/app.tar` does not exist",
    },
    // --- stacks and templates ----------------------------------------------------------------
    Case {
        name: "unknown_builtin_template",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                stacks:
                  - {name: web, template: nginx}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "unknown template `nginx`",
    },
    Case {
        name: "missing_template_file",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                stacks:
                  - {name: web, template: ./stacks/web.yml.tera}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "template `./stacks/web.yml.tera` does not exist",
    },
    Case {
        name: "stack_joins_undeclared_network",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                stacks:
                  - {name: db, template: postgres, networks: [database]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "joins network `database`, which is not declared",
    },
    Case {
        name: "expose_without_proxy_network",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                stacks:
                  - name: web
                    template: whoami
                    expose: [{service: web, host: web.example.com, port: 80}]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(7),
        fragment: "the proxy's network `reverse-proxy` must be declared",
    },
    Case {
        name: "undefined_template_variable",
        files: &[
            (
                INV,
                Yaml(
                    r#"
                    cluster: {name: lab}
                    hosts:
                      - {name: m1, address: 10.0.0.1, roles: [manager]}
                    stacks:
                      - {name: web, template: ./x.yml.tera}
                    "#,
                ),
            ),
            (
                "x.yml.tera",
                Yaml(
                    r#"
                    services:
                      web:
                        image: {{ vars.image }}
                    "#,
                ),
            ),
        ],
        command: Render,
        blame: "x.yml.tera",
        line: Some(3),
        fragment: "`image` is not defined",
    },
    Case {
        name: "exposed_service_not_in_template",
        files: &[
            (
                INV,
                Yaml(
                    r#"
                    cluster: {name: lab}
                    hosts:
                      - {name: m1, address: 10.0.0.1, roles: [manager]}
                    networks: [{name: reverse-proxy}]
                    stacks:
                      - name: web
                        template: ./x.yml.tera
                        expose: [{service: api, host: web.example.com, port: 80}]
                    "#,
                ),
            ),
            (
                "x.yml.tera",
                Yaml(
                    r#"
                    services:
                      web:
                        image: nginx
                    "#,
                ),
            ),
        ],
        command: Render,
        blame: INV,
        line: Some(8),
        fragment: "exposes service `api`, but its template defines only: web",
    },
    // --- found with no host at hand: every stack renders and fits the inventory -------------
    Case {
        name: "three_typos_reported_at_once",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                sssh: {user: admin}
                hosts:
                  - name: m1
                    adress: 10.0.0.1
                    role: [manager]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(6),
        fragment: "unknown key `role` in `hosts[]`: did you mean `roles`?",
    },
    Case {
        name: "template_error_stops_plan_before_any_connection",
        files: &[
            (
                INV,
                Yaml(
                    r#"
                    cluster: {name: lab}
                    hosts:
                      - {name: m1, address: 127.0.0.2, roles: [manager]}
                    stacks:
                      - {name: web, template: ./x.yml.tera}
                    "#,
                ),
            ),
            (
                "x.yml.tera",
                Yaml(
                    r#"
                    services:
                      web:
                        image: {{ vars.image }}
                    "#,
                ),
            ),
        ],
        command: Plan,
        blame: "x.yml.tera",
        line: Some(3),
        fragment: "`image` is not defined",
    },
    Case {
        name: "secret_named_by_a_stack_not_declared",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                networks: [{name: database}]
                stacks:
                  - {name: db, template: postgres, networks: [database]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(6),
        fragment: "var `password_secret` names secret `postgres_password`, which is not declared under `secrets:`",
    },
    Case {
        name: "unknown_var_of_a_builtin_template",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                stacks:
                  - {name: hello, template: whoami, vars: {replica: 2}}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "template `whoami` has no var `replica`: did you mean `replicas`?",
    },
    Case {
        name: "placement_label_no_host_carries",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                  - {name: w1, address: 10.0.0.2, labels: {zone: a}}
                stacks:
                  - {name: proxy, template: caddy, vars: {placement_label: edge}}
                "#,
            ),
        )],
        command: Render,
        blame: INV,
        line: Some(6),
        fragment: "service `caddy` fits no host of the inventory: it needs `node.labels.edge == true` (fits no host)",
    },
    Case {
        name: "placement_on_a_manager_labelled_only_on_a_worker",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                  - {name: w1, address: 10.0.0.2, labels: {edge: true}}
                networks: [{name: reverse-proxy}]
                secrets: [{name: traefik_dashboard_users, env: UNSET_IN_THIS_TEST}]
                stacks:
                  - {name: proxy, template: traefik, vars: {placement_label: edge}}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(8),
        fragment: "`node.role == manager` (fits m1) and `node.labels.edge == true` (fits w1)",
    },
    Case {
        name: "missing_identity_file_for_a_command_that_connects",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  identity_file: ./keys/id_ed25519
                hosts:
                  - {name: m1, address: 127.0.0.2, roles: [manager]}
                  - {name: w1, address: 127.0.0.3}
                "#,
            ),
        )],
        command: Plan,
        blame: INV,
        line: Some(3),
        fragment: "identity_file `./keys/id_ed25519` does not exist",
    },
    Case {
        name: "secret_value_missing_for_a_command_that_deploys",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 127.0.0.2, roles: [manager]}
                secrets: [{name: pg, env: CLUSTERUP_TEST_UNSET_VARIABLE}]
                "#,
            ),
        )],
        command: Plan,
        blame: INV,
        line: None,
        fragment: "environment variable CLUSTERUP_TEST_UNSET_VARIABLE is not set",
    },
    Case {
        name: "docker_log_size_not_a_size",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                docker:
                  log_max_size: 10 megabytes
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "docker.log_max_size `10 megabytes` is not a size",
    },
    Case {
        name: "docker_metrics_address_without_port",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                docker: {metrics_address: "0.0.0.0"}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(2),
        fragment: "docker.metrics_address `0.0.0.0` is not ADDRESS:PORT",
    },
    Case {
        name: "stateful_service_on_a_local_volume_that_may_move",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                networks: [{name: memory-store}]
                secrets: [{name: redis_password, env: CLUSTERUP_TEST_UNSET_VARIABLE}]
                stacks:
                  - {name: cache, template: redis}
                "#,
            ),
        )],
        command: Render,
        blame: INV,
        line: Some(7),
        fragment: "service `redis` keeps its state in volume `redis-data`, which stays on the node",
    },
    Case {
        name: "docker_version_with_a_space",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                docker: {version: "26.1 or newer"}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Plan,
        blame: INV,
        line: Some(2),
        fragment: "docker.version `26.1 or newer` is not a package version",
    },
    Case {
        name: "nfs_path_that_would_widen_the_export",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                  - {name: nas, address: 10.0.0.9, kind: nas}
                storage: {nfs: {server: nas, path: "/srv/data *"}}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "storage.nfs.path `/srv/data *` must be an absolute path of letters",
    },
    // --- not an inventory at all ---------------------------------------------------------------
    Case {
        name: "yaml_bomb",
        files: &[(INV, Make(billion_laughs))],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "far more nodes than an inventory has",
    },
    Case {
        name: "ten_megabytes",
        files: &[(INV, Make(ten_megabytes))],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "an inventory may be at most 1048576 bytes",
    },
    Case {
        name: "binary_garbage",
        files: &[(INV, Make(garbage))],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "is not UTF-8 text",
    },
    Case {
        name: "empty_file",
        files: &[(INV, Raw(b""))],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "unexpected end of input",
    },
    Case {
        name: "directory_instead_of_file",
        files: &[(INV, Dir)],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "not a regular file",
    },
    Case {
        name: "missing_file",
        files: &[],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "cannot read",
    },
    Case {
        name: "top_level_list",
        files: &[(
            INV,
            Yaml(
                r#"
                - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(1),
        fragment: "expected mapping",
    },
    Case {
        name: "missing_cluster",
        files: &[(
            INV,
            Yaml(
                r#"
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "missing field `cluster`",
    },
    Case {
        name: "tab_indentation",
        files: &[(
            INV,
            Raw(b"cluster:\n\tname: lab\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\n"),
        )],
        command: Inventory,
        blame: INV,
        line: Some(2),
        fragment: "tabs disallowed",
    },
    Case {
        name: "unclosed_quote",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: 'lab}
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(1),
        fragment: "unclosed quote",
    },
    Case {
        name: "alias_to_unknown_anchor",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                hosts:
                  - {name: *m1, address: 10.0.0.1, roles: [manager]}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(3),
        fragment: "unknown anchor",
    },
    Case {
        name: "deeply_nested_flow_sequence",
        files: &[(INV, Make(deep_nesting))],
        command: Inventory,
        blame: INV,
        line: Some(2),
        fragment: "recursion limit exceeded",
    },
    // --- openstack: its shape is checked offline, before any cloud is asked -------------------
    Case {
        name: "openstack_misspelt",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                openstak:
                  cloud: mycloud
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(2),
        fragment: "unknown key `openstak` at the top level: did you mean `openstack`?",
    },
    Case {
        name: "openstack_unknown_key",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                openstack:
                  cloud: mycloud
                  select: {tags: [swarm]}
                  netwrok: private
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(5),
        fragment: "unknown key `netwrok` in `openstack`: did you mean `network`?",
    },
    Case {
        name: "openstack_selects_everything",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                openstack:
                  cloud: mycloud
                  select: {}
                  network: private
                "#,
            ),
        )],
        command: Render,
        blame: INV,
        line: Some(4),
        fragment: "openstack.select needs at least one of",
    },
    Case {
        name: "openstack_bad_bastion_and_timeout",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                openstack:
                  select: {metadata: {cluster: lab}}
                  network: private
                  bastion: {server: "", port: 0}
                  timeout: 0
                "#,
            ),
        )],
        command: Plan,
        blame: INV,
        line: Some(6),
        fragment: "openstack.timeout must be at least 1 second",
    },
    Case {
        name: "openstack_bastion_twice",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                openstack:
                  select: {name_prefix: lab-}
                  network: private
                  bastion: {server: jump}
                  ssh: {bastion: admin@203.0.113.5}
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: Some(6),
        fragment: "openstack.ssh.bastion and openstack.bastion both name a jump host",
    },
    Case {
        name: "no_hosts_and_no_openstack",
        files: &[(
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                networks: [{name: database}]
                "#,
            ),
        )],
        command: Inventory,
        blame: INV,
        line: None,
        fragment: "`hosts` is empty",
    },
];

/// Nine levels of nine aliases each: 9^9 strings once expanded, a few hundred bytes written.
/// `vars` takes any YAML value, so nothing stops the expansion before the parser's own limits.
fn billion_laughs() -> Vec<u8> {
    let mut text = String::from(
        "cluster: {name: lab}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\n\
         stacks:\n  - name: web\n    template: whoami\n    vars:\n      a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
    for pair in levels.windows(2) {
        let (prev, this) = (pair[0], pair[1]);
        let aliases = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("      {this}: &{this} [{aliases}]\n"));
    }
    text.into_bytes()
}

/// A valid inventory followed by 10 MB of comments: refused for its size, before parsing.
fn ten_megabytes() -> Vec<u8> {
    let mut text =
        String::from("cluster: {name: lab}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\n");
    let comment = format!("#{}\n", "x".repeat(99));
    while text.len() < 10_000_000 {
        text.push_str(&comment);
    }
    text.into_bytes()
}

/// 4 KiB of pseudo-random bytes (xorshift, fixed seed), starting with a byte UTF-8 never has.
fn garbage() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = vec![0xff, 0xfe, 0x00, 0xc3, 0x28];
    while bytes.len() < 4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push(state as u8);
    }
    bytes
}

/// `hosts:` as 10000 nested flow sequences.
fn deep_nesting() -> Vec<u8> {
    format!("cluster: {{name: lab}}\nhosts: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()
}

/// What one run of the binary did.
struct Outcome {
    /// None when killed by a signal (or by the timeout).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

/// A fresh, empty directory for one case, under cargo's scratch folder for integration tests.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_inventories").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the leading newline and the indentation common to every non-blank line.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| if l.len() >= indent { &l[indent..] } else { l.trim_start() })
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
        + "\n"
}

fn write_files(dir: &Path, files: &[(&str, Body)]) {
    for (name, body) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        match body {
            Yaml(text) => fs::write(&path, dedent(text)).unwrap(),
            Raw(bytes) => fs::write(&path, bytes).unwrap(),
            Make(make) => fs::write(&path, make()).unwrap(),
            Dir => fs::create_dir_all(&path).unwrap(),
        }
    }
}

/// Runs `clusterup ARGS` in `dir` with a time and memory limit; output goes to files, so a
/// chatty child cannot block on a full pipe while we wait for it.
fn clusterup(dir: &Path, args: &[&str]) -> Outcome {
    let stdout_path = dir.join(".stdout");
    let stderr_path = dir.join(".stderr");
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_clusterup"))
        .args(args)
        .current_dir(dir)
        // glibc reserves 64 MiB of address space per malloc arena; keep that out of the limit.
        .env("MALLOC_ARENA_MAX", "2")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start clusterup");
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Outcome {
        code: status.code(),
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
        elapsed,
        timed_out,
    }
}

fn subcommand(cmd: Cmd) -> &'static str {
    match cmd {
        Inventory => "inventory",
        Render => "render",
        Plan => "plan",
    }
}

/// Runs one case; returns what is wrong with the binary's answer, if anything.
fn check(case: &Case) -> Vec<String> {
    let dir = fresh_dir(case.name);
    write_files(&dir, case.files);
    let inventory = dir.join(INV);
    let run = clusterup(&dir, &[subcommand(case.command), "-i", inventory.to_str().unwrap()]);
    // `./x` relative to the inventory's folder may be shown as `DIR/./x`: the same file.
    let stderr = run.stderr.replace("/./", "/");
    let blamed = dir.join(case.blame).display().to_string();

    let mut problems = Vec::new();
    if run.timed_out {
        problems.push(format!("still running after {TIMEOUT:?}: killed"));
    }
    if run.code != Some(3) {
        problems.push(format!("exit status {:?}, expected 3", run.code));
    }
    if !stderr.contains(&blamed) {
        problems.push(format!("stderr does not name {blamed}"));
    }
    if let Some(line) = case.line {
        let at = format!("{blamed}:{line}:");
        if !stderr.contains(&at) {
            problems.push(format!("stderr does not contain `{at}`"));
        }
    }
    if !stderr.contains(case.fragment) {
        problems.push(format!("stderr does not contain `{}`", case.fragment));
    }
    for bad in ["panicked", "RUST_BACKTRACE"] {
        if run.stderr.contains(bad) {
            problems.push(format!("stderr contains `{bad}`"));
        }
    }
    if problems.is_empty() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        problems.push(format!(
            "ran in {:.2?}: clusterup {} -i {}\n      stderr: {}\n      stdout: {}",
            run.elapsed,
            subcommand(case.command),
            inventory.display(),
            run.stderr.trim_end().replace('\n', "\n              "),
            run.stdout.chars().take(300).collect::<String>().trim_end(),
        ));
    }
    problems
}

#[test]
fn bad_inventories_are_refused_with_file_line_and_reason() {
    assert!(CASES.len() >= 30, "the table should hold at least 30 cases");
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names must be unique (each gets its own folder)");

    let mut failures = Vec::new();
    for case in CASES {
        let problems = check(case);
        if !problems.is_empty() {
            failures.push(format!("case `{}`:\n    {}", case.name, problems.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inventories were not refused as they should be:\n\n{}\n",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// The positive control: an inventory that uses every feature the bad cases break (types,
/// ssh, docker, labels, bastion, identity file, secret file, image archive, networks, a
/// built-in and a user template, routes) is accepted by both commands.
#[test]
fn good_inventory_is_accepted() {
    const GOOD: &[(&str, Body)] = &[
        (
            INV,
            Yaml(
                r#"
                cluster: {name: lab}
                ssh:
                  user: ops
                  port: 2222
                  identity_file: ./keys/id_ed25519
                  host_key_policy: strict
                  bastion: admin@203.0.113.5:22
                  command_timeout: 600
                docker:
                  source: docker
                  log_max_size: 20m
                hosts:
                  - {name: m1, address: 10.0.0.1, roles: [manager], labels: {zone: a, ssd: true, rack: 3}}
                  - name: w1
                    address: w1.example.com
                    kind: openstack
                    roles: [worker]
                    ssh: {port: 22, user: debian}
                  - {name: nas, address: 10.0.0.10, kind: nas}
                networks:
                  - name: reverse-proxy
                  - {name: database, encrypted: true, mtu: 1400}
                secrets:
                  - {name: pg, file: ./secrets/pg}
                images:
                  preload: [./images/app.tar]
                  resolve: never
                stacks:
                  - {name: hello, template: whoami, vars: {replicas: 1}}
                  - name: web
                    template: ./x.yml.tera
                    vars: {image: "nginx:1.27"}
                    networks: [database]
                    expose: [{service: web, host: web.example.com, port: 80}]
                "#,
            ),
        ),
        (
            "x.yml.tera",
            Yaml(
                r#"
                services:
                  web:
                    image: {{ vars.image | json }}
                "#,
            ),
        ),
        ("keys/id_ed25519", Raw(b"not really a key; only its existence is checked\n")),
        ("secrets/pg", Raw(b"hunter2\n")),
        ("images/app.tar", Raw(b"")),
    ];
    let dir = fresh_dir("good_inventory");
    write_files(&dir, GOOD);
    let inventory = dir.join(INV);
    for cmd in [Inventory, Render] {
        let run = clusterup(&dir, &[subcommand(cmd), "-i", inventory.to_str().unwrap()]);
        assert_eq!(
            run.code,
            Some(0),
            "clusterup {} refused a good inventory:\n{}",
            subcommand(cmd),
            run.stderr
        );
        assert!(!run.stderr.contains("error"), "unexpected error output:\n{}", run.stderr);
        assert!(!run.timed_out);
    }
    let run = clusterup(&dir, &["render", "-i", inventory.to_str().unwrap()]);
    assert!(run.stdout.contains("nginx:1.27"), "render output:\n{}", run.stdout);
    let _ = fs::remove_dir_all(&dir);
}

/// `inventory` and `render` only show: they work with neither the SSH key nor the secrets'
/// values at hand, say so once, and show the secrets' names as placeholders.
#[test]
fn offline_commands_need_neither_the_key_nor_secret_values() {
    const FILES: &[(&str, Body)] = &[(
        INV,
        Yaml(
            r#"
            cluster: {name: lab}
            ssh: {identity_file: ./keys/absent}
            hosts:
              - {name: m1, address: 10.0.0.1, roles: [manager]}
              - {name: w1, address: 10.0.0.2, labels: {db: true}}
            networks: [{name: database}]
            secrets: [{name: postgres_password, env: CLUSTERUP_TEST_UNSET_PASSWORD}]
            stacks:
              - {name: db, template: postgres, networks: [database], vars: {placement_label: db}}
            "#,
        ),
    )];
    let dir = fresh_dir("offline_commands");
    write_files(&dir, FILES);
    let inventory = dir.join(INV);
    for cmd in [Inventory, Render] {
        let run = clusterup(&dir, &[subcommand(cmd), "-i", inventory.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "clusterup {}:\n{}", subcommand(cmd), run.stderr);
        assert_eq!(
            run.stderr.matches("identity_file `./keys/absent` does not exist").count(),
            1,
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("CLUSTERUP_TEST_UNSET_PASSWORD is not set"), "{}", run.stderr);
        assert!(!run.stderr.contains("error"), "{}", run.stderr);
    }
    let run = clusterup(&dir, &["render", "-i", inventory.to_str().unwrap()]);
    assert!(
        run.stdout.contains("postgres_password_<value of $CLUSTERUP_TEST_UNSET_PASSWORD>"),
        "{}",
        run.stdout
    );
    let _ = fs::remove_dir_all(&dir);
}
