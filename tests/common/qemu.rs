//! Helpers of the qemu lab suites (`vm-tests/vmlab`): VMs with their own kernel, reached over
//! SSH on forwarded loopback ports, and the failover read from the engines' own events.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::repo;

pub fn vmlab(args: &[&str]) -> String {
    let out = Command::new(repo().join("vm-tests/vmlab")).args(args).output().expect("run vm-tests/vmlab");
    assert!(out.status.success(), "vmlab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn vm_dir() -> PathBuf {
    std::env::var_os("CLUSTERUP_VMLAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/clusterup-vmlab".into())
}

/// The service images the lab builds (`vm-tests/lab images`), as `docker save` archives.
pub fn lab_images() -> PathBuf {
    super::lab_dir().join("images")
}

/// How a VM is reached: its address on the lab's private network, and the loopback ports
/// forwarded to its SSH, HTTP and HTTPS.
pub struct Vm {
    pub private: String,
    pub ssh: String,
    pub http: String,
    pub https: String,
}

pub fn vm(name: &str) -> Vm {
    let text = vmlab(&["addr", name]);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "vmlab addr {name}: {text}");
    Vm { private: fields[0].into(), ssh: fields[1].into(), http: fields[2].into(), https: fields[3].into() }
}

/// Runs `cmd` on VM `name` as root: whether it succeeded, and its output (stdout when it did,
/// stdout and stderr when it did not).
pub fn on(name: &str, cmd: &str) -> (bool, String) {
    let port = vm(name).ssh;
    let out = Command::new("ssh")
        .args(["-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-i"])
        .arg(vm_dir().join("id_ed25519"))
        .args(["-p", &port, "root@127.0.0.1", cmd])
        .output()
        .expect("ssh");
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    (out.status.success(), text)
}

/// `clusterup init` on `inv` with the lab's timeouts, its log kept in the lab's folder: the exit
/// code and the JSON report. `env` gives the secrets' variables.
pub fn init(inv: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let log = vm_dir().join("clusterup-test.log");
    clusterup_json(&["init", "--converge-timeout", "900", "--log", log.to_str().unwrap()], inv, env)
}

/// `clusterup ARGS -i INV --json`: the exit code and the JSON report; stderr is shown.
pub fn clusterup_json(args: &[&str], inv: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(args)
        .args(["-i", inv.to_str().unwrap(), "--json"])
        .envs(env.iter().copied())
        .output()
        .expect("run clusterup");
    eprintln!("$ clusterup {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

/// The nodes a service's tasks run on, as the manager `manager` sees it.
pub fn running_on_all(manager: &str, service: &str) -> Vec<String> {
    let (_, nodes) = on(
        manager,
        &format!("docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}}'"),
    );
    nodes.lines().map(str::to_string).collect()
}

/// The node a service's running task is on ("" if none): for a service of one task.
pub fn running_on(manager: &str, service: &str) -> String {
    running_on_all(manager, service).into_iter().next().unwrap_or_default()
}

/// `command` run in `service`'s container on `node` (false if none runs there), found by its
/// service label: a name filter would also match the idle `SERVICE-standby` container there.
pub fn exec_in(node: &str, service: &str, command: &str) -> (bool, String) {
    on(
        node,
        &format!(
            "c=$(docker ps -q -f label=com.docker.swarm.service.name={service} | head -1); [ -n \"$c\" ] && \
             docker exec $c {command}"
        ),
    )
}

/// `sql` through the psql of `service`'s container on `node`.
pub fn psql_in(node: &str, service: &str, sql: &str) -> (bool, String) {
    exec_in(node, service, &format!("psql -U app -d app -tA -c \"{sql}\""))
}

/// Waits until `check` holds, every 3 s, for at most `limit`; panics with `what` and the last
/// thing `check` said otherwise.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if start.elapsed() > limit => panic!("{what}: not within {} s: {e}", limit.as_secs()),
            Err(_) => std::thread::sleep(Duration::from_secs(3)),
        }
    }
}

/// Seconds since the Unix epoch in an RFC 3339 timestamp with nanoseconds (`docker logs -t`).
pub fn epoch(rfc3339: &str) -> Option<f64> {
    let (date, time) = rfc3339.trim_end_matches('Z').split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':');
    let (h, mi, sec) = (
        hms.next()?.parse::<f64>().ok()?,
        hms.next()?.parse::<f64>().ok()?,
        hms.next()?.parse::<f64>().ok()?,
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec)
}

/// The steps of a failover as the engines recorded them, in seconds since the epoch: the
/// manager declaring the node down, and the replacement container created, started and
/// healthy on `survivor`.
pub struct Steps {
    pub down: Option<f64>,
    pub created: Option<f64>,
    pub started: Option<f64>,
    pub healthy: Option<f64>,
}

/// Reads the failover's steps from `docker events` since `since` (the manager's clock, whole
/// seconds): the manager's node events and `survivor`'s events of `service`'s containers.
pub fn failover_steps(manager: &str, service: &str, since: &str, survivor: &str) -> Steps {
    let event = |machine: &str, filters: &str, wanted: &str| -> Option<f64> {
        let (_, text) = on(
            machine,
            &format!(
                "docker events --since {since} --until $(date +%s) {filters} --format '{{{{.TimeNano}}}} {{{{.Action}}}} {{{{json .Actor.Attributes}}}}'"
            ),
        );
        text.lines()
            .find(|l| l.contains(wanted))
            .and_then(|l| l.split(' ').next()?.parse::<f64>().ok())
            .map(|ns| ns / 1e9)
    };
    let containers =
        format!("--filter type=container --filter label=com.docker.swarm.service.name={service}");
    Steps {
        down: event(manager, "--filter type=node", "\"state.new\":\"down\""),
        created: event(survivor, &containers, " create "),
        started: event(survivor, &containers, " start "),
        healthy: event(survivor, &containers, "health_status: healthy"),
    }
}

impl Steps {
    /// The steps in seconds after `t0`, and `back` (when the service answered again) if known.
    pub fn describe(&self, t0: f64, survivor: &str, back: Option<f64>) -> String {
        let after = |t: Option<f64>| t.map_or("?".to_string(), |t| format!("{:.1} s", t - t0));
        let mut text = format!(
            "node declared down {}, container created on {survivor} {}, started {}, healthy {}",
            after(self.down),
            after(self.created),
            after(self.started),
            if self.healthy.is_some() { after(self.healthy) } else { "(none seen)".to_string() },
        );
        if back.is_some() {
            text.push_str(&format!(", answering again {}", after(back)));
        }
        text
    }
}

/// The manager's clock, in seconds since the epoch (the engines' events are on the VMs' clocks).
pub fn clock(manager: &str) -> f64 {
    let (ok, now) = on(manager, "date +%s.%N");
    assert!(ok, "reading {manager}'s clock: {now}");
    now.parse().unwrap_or_else(|_| panic!("{manager}'s clock: {now}"))
}
