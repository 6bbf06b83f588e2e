//! End-to-end tests of what clusterup does when things go wrong, on the container lab: the
//! cluster lock, unreachable hosts, role changes with quorum, node removal, a host of another
//! swarm, a connection killed mid-step, the package manager held by another process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{clusterup, lab, lab_dir, on, on_manager, wait_until};
use serde_json::Value;

fn inventory(file: &str, cluster: &str, hosts: &[(&str, &str, &str)], extra: &str) -> PathBuf {
    common::lab_inventory(file, cluster, hosts, extra)
}

fn run(args: &[&str], inv: &Path) -> (Option<i32>, Value) {
    common::run_json(args, inv)
}

fn sampling_managers<T>(work: impl FnOnce() -> T) -> (Vec<usize>, T) {
    common::sampling_engines(&["m1", "m2", "m3"], work)
}

/// Managers as the swarm reports them (a promotion shows once the node really is one).
fn managers() -> Vec<String> {
    let text = on_manager("m1", "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'");
    let mut rows: Vec<String> =
        text.lines().filter(|l| l.split_whitespace().count() > 1).map(str::to_string).collect();
    rows.sort();
    rows
}

fn hostnames() -> Vec<String> {
    let mut names: Vec<String> =
        on_manager("m1", "docker node ls --format '{{.Hostname}}'").lines().map(str::to_string).collect();
    names.sort();
    names
}

const FIVE: &[(&str, &str, &str)] = &[
    ("m1", "manager", ""),
    ("m2", "manager", ""),
    ("m3", "manager", ""),
    ("w1", "worker", ""),
    ("w2", "worker", ""),
];

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn faults_locks_role_changes_and_removals() {
    // A cluster in the middle of a rolling OS upgrade: m3 and w2 run Debian 13 (Docker 26), the
    // others Debian 12 (Docker 20.10); the role changes, removals and restarts below meet both.
    lab(&["up", "m1", "m2", "m3@trixie", "w1", "w2@trixie"]);
    let inv = inventory("ops.yml", "lab", FIVE, "");
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(managers().len(), 3);

    // The audit log on the managers has a line for that run; status shows it.
    let (code, status) = run(&["status"], &inv);
    assert_eq!(code, Some(0));
    assert!(status["audit"].to_string().contains("init changed="), "{status}");
    assert_eq!(status["lock"], Value::Null, "the lock is released after a run");

    // --- The cluster lock: someone else's fresh lock stops the run, naming them.
    let foreign = "mkdir -p /var/lib/clusterup && printf 'holder=other\\noperator=bob@elsewhere\\npid=7\\nstarted=2026-01-01T00:00:00Z\\ncommand=init\\n' >/var/lib/clusterup/lock";
    // Another run holds a majority of the managers (m1, m2): this one gets none of the lock.
    on("m1", foreign);
    on("m2", foreign);
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(1));
    let stopped = report["stopped"].as_str().unwrap_or_default();
    assert!(
        stopped.contains("locked by bob@elsewhere (pid 7") && stopped.contains("clusterup unlock"),
        "{stopped}"
    );
    // A lock nobody refreshed for minutes is stale: taken over, with a warning.
    on("m1", "touch -d '-5 minutes' /var/lib/clusterup/lock");
    on("m2", "touch -d '-5 minutes' /var/lib/clusterup/lock");
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["warnings"].to_string().contains("took over a stale cluster lock"), "{report}");
    // `unlock` removes a lock left behind, saying whose it was; no lock is left on any manager.
    for m in ["m1", "m2", "m3"] {
        assert_eq!(on(m, "test -e /var/lib/clusterup/lock && echo held || echo free").trim(), "free", "{m}");
    }
    on("m1", foreign);
    let out = clusterup(&["unlock", "-i", inv.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed the lock of bob@elsewhere"));
    assert_eq!(on("m1", "test -e /var/lib/clusterup/lock && echo held || echo free").trim(), "free");

    // --- Ctrl-C at the confirmation prompt (a terminal, from `script`) stops the run: it says
    //     so, changes nothing and leaves no lock.
    let labelled: Vec<(&str, &str, &str)> = FIVE
        .iter()
        .map(|h| if h.0 == "w1" { ("w1", "worker", ", labels: {prompt: test}") } else { *h })
        .collect();
    let asking = inventory("ops-prompt.yml", "lab", &labelled, "");
    let (code, said) = interrupt_at_prompt(&asking);
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("stopped before changing anything: interrupted (Ctrl-C)"), "{said}");
    assert!(said.contains("changed: 0, failed: 0"), "{said}");
    assert_eq!(on("m1", "test -e /var/lib/clusterup/lock && echo held || echo free").trim(), "free");
    assert!(!on("m1", "docker node inspect --format '{{json .Spec.Labels}}' w1").contains("prompt"));

    // --- A host down at the start: the others converge, the summary names it, exit 1; once
    //     it is back, a re-run completes the cluster.
    lab(&["stop", "w2"]);
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(1));
    assert_eq!(report["failed"], serde_json::json!(["w2"]));
    assert!(report["hosts"]["w2"]["error"].as_str().unwrap().contains("w2"), "{report}");
    assert_eq!(report["hosts"]["m1"]["status"], "unchanged");
    lab(&["start", "w2"]);
    wait_until("w2 Ready again", || {
        on_manager("m1", "docker node ls --filter name=w2 --format '{{.Status}}'").trim() == "Ready"
    });
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["changed"], 0);

    // --- Role changes: m3 becomes a worker (3 -> 2 managers keeps quorum), then a manager again.
    let m3_worker: Vec<(&str, &str, &str)> =
        FIVE.iter().map(|h| if h.0 == "m3" { ("m3", "worker", "") } else { *h }).collect();
    let demoted = inventory("ops-demote.yml", "lab", &m3_worker, "");
    let (_, plan) = run(&["plan"], &demoted);
    let (code, report) = run(&["init"], &demoted);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["hosts"]["m3"]["changes"].to_string().contains("demote to worker"), "{report}");
    assert_eq!(plan["hosts"]["m3"]["changes"], report["hosts"]["m3"]["changes"], "a demotion as planned");
    wait_until("m3 shown as a worker", || managers().len() == 2);
    let (_, plan) = run(&["plan"], &inv);
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["hosts"]["m3"]["changes"].to_string().contains("promote to manager"), "{report}");
    assert_eq!(plan["hosts"]["m3"]["changes"], report["hosts"]["m3"]["changes"], "a promotion as planned");
    wait_until("m3 a reachable manager again", || managers().iter().any(|m| m == "m3 Reachable"));

    // --- A daemon.json change rolls: sampled from outside, at least 2 of the 3 managers'
    //     engines are up at every moment; every host is restarted once, and back in the swarm.
    let bigger_logs = inventory("ops-logs.yml", "lab", FIVE, "docker: {log_max_size: 20m}\n");
    let (_, plan) = run(&["plan"], &bigger_logs);
    let (samples, (code, report)) = sampling_managers(|| run(&["init"], &bigger_logs));
    assert_eq!(code, Some(0), "{report}");
    for host in ["m1", "m2", "m3", "w1", "w2"] {
        assert!(
            report["hosts"][host]["changes"].to_string().contains("restart docker for the new daemon.json"),
            "{host}: {report}"
        );
        assert_eq!(plan["hosts"][host]["changes"], report["hosts"][host]["changes"], "{host}: as planned");
    }
    assert!(samples.len() >= 10, "too few samples to judge: {samples:?}");
    let fewest = samples.iter().min().copied().unwrap_or(0);
    assert!(fewest >= 2, "at some moment only {fewest} of 3 managers' engines were up: {samples:?}");
    assert_eq!(managers().len(), 3);
    // The workers were drained for their restart and take tasks again.
    let availability = on("m1", "docker node ls --format '{{.Hostname}} {{.Availability}}'");
    assert!(availability.lines().all(|l| l.ends_with(" Active")), "{availability}");
    let (code, report) = run(&["init"], &inv);
    assert_eq!(code, Some(0), "{report}");

    // --- Quorum: with m3 down, making m2 a worker would leave 2 managers, 1 reachable: refused.
    lab(&["stop", "m3"]);
    wait_until("m3 unreachable", || managers().iter().any(|m| m.starts_with("m3 Unreachable")));
    let m2_worker: Vec<(&str, &str, &str)> =
        FIVE.iter().map(|h| if h.0 == "m2" { ("m2", "worker", "") } else { *h }).collect();
    let risky = inventory("ops-risky.yml", "lab", &m2_worker, "");
    let (_, report) = run(&["init"], &risky);
    assert!(
        report["warnings"].to_string().contains("demoting m2 would leave 2 manager(s) of which 1 reachable"),
        "{report}"
    );
    assert_eq!(managers().len(), 3, "m2 must still be a manager");
    lab(&["start", "m3"]);
    wait_until("m3 reachable", || managers().iter().any(|m| m.starts_with("m3 Reachable")));

    // --- Removal: w2 marked absent is drained and leaves; m3, a manager whose machine is dead,
    //     is removed: the two managers left are both reachable, a majority.
    let w2_absent: Vec<(&str, &str, &str)> =
        FIVE.iter().map(|h| if h.0 == "w2" { ("w2", "worker", ", state: absent") } else { *h }).collect();
    let without_w2 = inventory("ops-absent.yml", "lab", &w2_absent, "");
    let (_, plan) = run(&["plan"], &without_w2);
    let (code, report) = run(&["init"], &without_w2);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report["hosts"]["w2"]["changes"].to_string().contains("remove from the swarm (drain, leave"),
        "{report}"
    );
    assert_eq!(plan["hosts"]["w2"]["changes"], report["hosts"]["w2"]["changes"], "a removal as planned");
    wait_until("w2 gone from the node list", || hostnames() == ["m1", "m2", "m3", "w1"]);
    assert_eq!(on("w2", "docker info --format '{{.Swarm.LocalNodeState}}'").trim(), "inactive");
    lab(&["stop", "m3"]);
    wait_until("m3 unreachable", || managers().iter().any(|m| m.starts_with("m3 Unreachable")));
    let (code, report) = run(&["remove", "m3", "--yes"], &without_w2);
    assert_eq!(code, Some(0), "removing a dead manager keeps quorum: {report}");
    assert!(
        report["warnings"].to_string().contains("m3 is marked absent and could not be reached"),
        "{report}"
    );
    wait_until("m3 gone from the node list", || hostnames() == ["m1", "m2", "w1"]);
    assert_eq!(managers().len(), 2);

    // --- A host of another swarm is refused, never moved.
    lab(&["up", "x1"]);
    let other = inventory("other.yml", "other", &[("x1", "manager", "")], "");
    let (code, _) = run(&["init"], &other);
    assert_eq!(code, Some(0));
    let mut with_x1: Vec<(&str, &str, &str)> =
        vec![("m1", "manager", ""), ("m2", "manager", ""), ("w1", "worker", ""), ("x1", "worker", "")];
    let joined = inventory("ops-x1.yml", "lab", &with_x1, "");
    let (code, report) = run(&["init"], &joined);
    assert_eq!(code, Some(1));
    assert_eq!(report["failed"], serde_json::json!(["x1"]));
    assert!(
        report["hosts"]["x1"]["error"].as_str().unwrap().contains("already belongs to another swarm"),
        "{report}"
    );
    assert_eq!(on("x1", "docker node ls --format '{{.Hostname}}'").trim(), "x1", "x1 must stay in its swarm");

    // --- The package manager held by another process: a bounded wait, then a clear error.
    lab(&["up", "w4"]);
    with_x1.pop();
    with_x1.push(("w4", "worker", ""));
    let with_w4 = inventory("ops-w4.yml", "lab", &with_x1, "apt: {lock_timeout: 5}\n");
    let holder = hold_dpkg_lock("w4", 40);
    let (code, report) = run(&["init"], &with_w4);
    assert_eq!(code, Some(1));
    assert_eq!(report["failed"], serde_json::json!(["w4"]));
    assert!(report["hosts"]["w4"]["error"].as_str().unwrap().contains("lock"), "{report}");
    drop(holder);
    on("w4", "pkill -f 'hold-[d]pkg-lock' || true");

    // --- Ctrl-C while a step waits on the host (apt-get for the dpkg lock): the run ends, and
    //     what it started on the host is stopped too, not left running behind it.
    let patient = inventory("ops-w4-patient.yml", "lab", &with_x1, "");
    let holder = hold_dpkg_lock("w4", 120);
    let child = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(["init", "-i", patient.to_str().unwrap(), "--json", "--log"])
        .arg(lab_dir().join("clusterup-test.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waiting_apt = "pgrep -f '[D]Pkg::Lock::Timeout' >/dev/null && echo y || echo n";
    wait_until("apt-get waiting for the lock on w4", || on("w4", waiting_apt).trim() == "y");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(out.status.code(), Some(0), "{report}");
    assert!(report["stopped"].to_string().contains("interrupted"), "{report}");
    assert_eq!(on("w4", waiting_apt).trim(), "n", "the interrupted run left apt-get running on w4");
    drop(holder);
    on("w4", "pkill -f 'hold-[d]pkg-lock' || true");

    // --- The SSH connection killed in the middle of the package installation: the run fails
    //     for that host; a re-run converges, and no file was left half-written.
    let child = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(["init", "-i", with_w4.to_str().unwrap(), "--json", "--log"])
        .arg(lab_dir().join("clusterup-test.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("apt-get running on w4", || {
        on("w4", "pgrep -f '[a]pt-get.*install' >/dev/null && echo y || echo n").trim() == "y"
    });
    // The per-connection sshd process: `sshd: admin` (Debian 12), `sshd-session: admin` (13).
    on("w4", "pkill -f '[s]shd(-session)?: admin' || true");
    let out = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report["failed"].to_string().contains("w4"), "{report}");
    // apt may well go on without its connection: let it finish before the re-run.
    wait_until("apt-get done on w4", || {
        on("w4", "pgrep apt-get >/dev/null && echo y || echo n").trim() == "n"
    });
    let (code, report) = run(&["init", "--lock-wait", "120"], &with_w4);
    assert_eq!(code, Some(0), "re-run after the killed connection: {report}");
    let daemon = on("w4", "cat /etc/docker/daemon.json");
    assert!(serde_json::from_str::<Value>(&daemon).is_ok(), "daemon.json is not whole: {daemon}");
    assert!(hostnames().contains(&"w4".to_string()));
}

// Patterns given to pgrep/pkill below are written `[x]yz` so they do not match the shell
// that runs them.

/// Holds the dpkg frontend lock on `machine` (as apt does, with fcntl) for `seconds`.
fn hold_dpkg_lock(machine: &str, seconds: u32) -> std::process::Child {
    let perl = format!(
        "use Fcntl; $0 = 'hold-dpkg-lock'; open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die; \
         my $l = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $l) or die \"lock: $!\"; \
         print \"held\\n\"; sleep {seconds};"
    );
    let child = Command::new("docker")
        .args(["exec", &format!("clusterup-lab-{machine}"), "perl", "-e", &perl])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("dpkg lock held", || {
        on(machine, "pgrep -f 'hold-[d]pkg-lock' >/dev/null && echo y || echo n").trim() == "y"
    });
    child
}

/// Starts `init` on a terminal (`script` gives it one), waits for its question, sends it
/// SIGINT, and returns its exit status and what it printed. One still at its prompt 30 s later
/// did not take the interrupt: the test fails rather than hang.
fn interrupt_at_prompt(inv: &Path) -> (Option<i32>, String) {
    let output = lab_dir().join("prompt.out");
    let command = format!(
        "{} init -i {} --log {}",
        env!("CARGO_BIN_EXE_clusterup"),
        inv.display(),
        lab_dir().join("clusterup-test.log").display()
    );
    // A file left by an earlier run already holds the question: it must not be mistaken for
    // this run's.
    let _ = std::fs::remove_file(&output);
    let mut child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command])
        .arg(&output)
        .stdin(Stdio::piped()) // kept open and silent: the question stays unanswered
        .stdout(Stdio::null())
        .spawn()
        .expect("start script");
    wait_until("the confirmation question", || {
        std::fs::read_to_string(&output).is_ok_and(|t| t.contains("Apply them? [y/N]"))
    });
    let pid = Command::new("pgrep").args(["-f", &format!("^{command}")]).output().unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout).lines().next().unwrap_or_default().trim().to_string();
    assert!(!pid.is_empty(), "clusterup not found among the processes");
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), std::fs::read_to_string(&output).unwrap_or_default());
        }
        if sent.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("init still at its prompt 30 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
