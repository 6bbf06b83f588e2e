use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::facts::{ClusterInfo, SwarmInfo};
use crate::inventory::Inventory;

fn inventory() -> Inventory {
    Inventory::from_text(
        Path::new("/inv/t.yml"),
        "cluster: {name: t}\nhosts:\n\
         - {name: m1, address: 10.0.0.1, roles: [manager], labels: {zone: a}}\n\
         - {name: w1, address: 10.0.0.2, roles: [worker]}\n\
         - {name: m2, address: 10.0.0.3, roles: [manager]}\n\
         - {name: w2, address: 10.0.0.4, roles: [worker], labels: {disk: ssd}}\n",
    )
    .unwrap()
}

fn fresh(addr: &str) -> Facts {
    Facts { os_id: "debian".into(), route_addr: Some(addr.into()), ..Default::default() }
}

fn joined(addr: &str, node: &str, cluster: Option<&str>, manager: bool) -> Facts {
    Facts {
        swarm: Some(SwarmInfo {
            node_id: node.into(),
            node_addr: addr.into(),
            local_node_state: "active".into(),
            control_available: manager,
            error: String::new(),
            cluster: cluster.map(|id| ClusterInfo { id: id.into() }),
        }),
        ..fresh(addr)
    }
}

/// The four hosts of `inventory()` in one swarm (m1 and m2 managers).
fn all_joined() -> [Facts; 4] {
    [
        joined("10.0.0.1", "n1", Some("c1"), true),
        joined("10.0.0.2", "n2", None, false),
        joined("10.0.0.3", "n3", Some("c1"), true),
        joined("10.0.0.4", "n4", None, false),
    ]
}

fn node(id: &str, labels: &[(&str, &str)]) -> SwarmNode {
    let mut n = SwarmNode { id: id.into(), ..Default::default() };
    n.spec.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    // As clusterup leaves a node it labelled: the keys it manages, listed.
    if !labels.is_empty() {
        let keys: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        n.spec.labels.insert(MANAGED_LABELS.into(), keys.join(","));
    }
    n
}

fn members<'a>(inv: &'a Inventory, facts: &'a [Facts]) -> Vec<Member<'a>> {
    inv.hosts.iter().zip(facts).map(|(host, facts)| Member { host, facts }).collect()
}

#[test]
fn fresh_hosts_init_on_first_manager_then_managers_join_before_workers() {
    let inv = inventory();
    let facts = [fresh("10.0.0.1"), fresh("10.0.0.2"), fresh("10.0.0.3"), fresh("10.0.0.4")];
    let plan = plan(&members(&inv, &facts), &[], false, &[]);
    assert_eq!(plan.leader.as_deref(), Some("m1"));
    let order: Vec<String> = plan.steps.iter().map(|s| format!("{}:{}", s.host(), s.describe())).collect();
    assert_eq!(
        order,
        [
            "m1:create the swarm (advertise 10.0.0.1)",
            "m2:join the swarm as manager (advertise 10.0.0.3)",
            "w1:join the swarm as worker (advertise 10.0.0.2)",
            "w2:join the swarm as worker (advertise 10.0.0.4)",
            "m1:set node label zone=a",
            "m1:set node label clusterup.labels=zone",
            "w2:set node label disk=ssd",
            "w2:set node label clusterup.labels=disk",
        ]
    );
    assert!(plan.refused.is_empty());
}

#[test]
fn converged_cluster_plans_nothing() {
    let inv = inventory();
    let facts = all_joined();
    let nodes =
        [node("n1", &[("zone", "a")]), node("n2", &[]), node("n3", &[]), node("n4", &[("disk", "ssd")])];
    let plan = plan(&members(&inv, &facts), &nodes, false, &[]);
    assert_eq!(plan.steps, vec![]);
    assert_eq!(plan.leader.as_deref(), Some("m1"));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn only_missing_hosts_join_and_changed_labels_are_set() {
    let inv = inventory();
    let facts = [
        joined("10.0.0.1", "n1", Some("c1"), true),
        joined("10.0.0.2", "n2", None, false),
        fresh("10.0.0.3"),
        fresh("10.0.0.4"),
    ];
    let nodes = [node("n1", &[("zone", "b")]), node("n2", &[])];
    let plan = plan(&members(&inv, &facts), &nodes, false, &[]);
    let hosts: Vec<(&str, String)> = plan.steps.iter().map(|s| (s.host(), s.describe())).collect();
    assert!(matches!(&plan.steps[0], Step::Join { host, manager: true, .. } if host == "m2"));
    assert!(matches!(&plan.steps[1], Step::Join { host, manager: false, .. } if host == "w2"));
    assert_eq!(hosts[2], ("m1", "set node label zone=a".to_string()));
    assert_eq!(hosts[3], ("w2", "set node label disk=ssd".to_string()));
    assert_eq!(hosts[4], ("w2", "set node label clusterup.labels=disk".to_string()));
    assert_eq!(plan.steps.len(), 5);
}

#[test]
fn labels_clusterup_set_are_removed_with_the_inventory_others_are_left() {
    let inv = inventory();
    let facts = all_joined();
    // n1 still has `rack` from an earlier inventory, and `team` set by someone else.
    let mut n1 = node("n1", &[("zone", "a"), ("rack", "3")]);
    n1.spec.labels.insert("team".into(), "ops".into());
    // n2's inventory entry lost every label.
    let n2 = node("n2", &[("old", "x")]);
    let nodes = [n1, n2, node("n3", &[]), node("n4", &[("disk", "ssd")])];
    let plan = plan(&members(&inv, &facts), &nodes, false, &[]);
    let steps: Vec<String> = plan.steps.iter().map(|s| format!("{}:{}", s.host(), s.describe())).collect();
    assert_eq!(
        steps,
        [
            "m1:remove node label rack (no longer in the inventory)",
            "m1:set node label clusterup.labels=zone",
            "w1:remove node label old (no longer in the inventory)",
            "w1:remove node label clusterup.labels (no longer in the inventory)",
        ]
    );
}

#[test]
fn a_host_of_another_swarm_is_refused_not_rejoined() {
    let inv = inventory();
    let facts = [
        joined("10.0.0.1", "n1", Some("c1"), true),
        fresh("10.0.0.2"),
        joined("10.0.0.3", "x9", Some("other"), true),
        fresh("10.0.0.4"),
    ];
    let plan = plan(&members(&inv, &facts), &[node("n1", &[("zone", "a")])], false, &[]);
    assert_eq!(plan.refused.len(), 1);
    assert_eq!(plan.refused[0].0, "m2");
    assert!(plan.refused[0].1.contains("another swarm (cluster other)"), "{}", plan.refused[0].1);
    assert!(plan.steps.iter().all(|s| s.host() != "m2"));
}

#[test]
fn workers_of_an_unknown_swarm_are_refused_when_no_manager_has_one() {
    let inv = inventory();
    let facts =
        [fresh("10.0.0.1"), joined("10.0.0.2", "z", None, false), fresh("10.0.0.3"), fresh("10.0.0.4")];
    let plan = plan(&members(&inv, &facts), &[], false, &[]);
    assert_eq!(plan.refused[0].0, "w1");
    assert!(matches!(&plan.steps[0], Step::Init { host, .. } if host == "m1"));
}

#[test]
fn without_a_reachable_manager_nobody_joins() {
    let inv = inventory();
    let facts = [fresh("10.0.0.2"), fresh("10.0.0.4")];
    let hosts: Vec<Member> = vec![
        Member { host: &inv.hosts[1], facts: &facts[0] },
        Member { host: &inv.hosts[3], facts: &facts[1] },
    ];
    let plan = plan(&hosts, &[], false, &[]);
    assert!(plan.steps.is_empty());
    assert_eq!(plan.refused.len(), 2);
    assert!(plan.refused[0].1.contains("no manager"), "{}", plan.refused[0].1);
}

#[test]
fn pending_state_is_refused_with_the_fix() {
    let inv = inventory();
    let mut odd = joined("10.0.0.2", "n2", None, false);
    odd.swarm.as_mut().unwrap().local_node_state = "pending".into();
    let facts = [
        joined("10.0.0.1", "n1", Some("c1"), true),
        odd,
        joined("10.0.0.3", "n3", Some("c1"), true),
        joined("10.0.0.4", "n4", None, false),
    ];
    let plan = plan(
        &members(&inv, &facts),
        &[node("n1", &[("zone", "a")]), node("n3", &[]), node("n4", &[("disk", "ssd")])],
        false,
        &[],
    );
    assert_eq!(plan.refused, vec![("w1".to_string(), plan.refused[0].1.clone())]);
    assert!(plan.refused[0].1.contains("docker swarm leave --force"));
}

#[test]
fn swarm_members_are_left_alone_while_managers_are_unreachable() {
    let inv = inventory();
    let facts = [joined("10.0.0.2", "n2", None, false), fresh("10.0.0.4")];
    let hosts = vec![
        Member { host: &inv.hosts[1], facts: &facts[0] },
        Member { host: &inv.hosts[3], facts: &facts[1] },
    ];
    let plan = plan(&hosts, &[], true, &[]);
    assert_eq!(plan.refused.len(), 1, "{:?}", plan.refused);
    assert_eq!(plan.refused[0].0, "w2");
    assert!(plan.warnings[0].contains("w1 is in a swarm"), "{:?}", plan.warnings);
}

fn manager(id: &str, reachable: bool) -> SwarmNode {
    let mut n = node(id, &[]);
    n.manager_status = Some(ManagerStatus {
        leader: false,
        reachability: if reachable { "reachable" } else { "unreachable" }.into(),
    });
    n
}

#[test]
fn a_worker_listed_as_manager_is_promoted() {
    let inv = inventory();
    let facts = [
        joined("10.0.0.1", "n1", Some("c1"), true),
        joined("10.0.0.2", "n2", None, false),
        joined("10.0.0.3", "n3", None, false),
        joined("10.0.0.4", "n4", None, false),
    ];
    let mut n1 = manager("n1", true);
    n1.spec.labels = node("n1", &[("zone", "a")]).spec.labels;
    let n4 = node("n4", &[("disk", "ssd")]);
    let plan = plan(&members(&inv, &facts), &[n1, node("n2", &[]), node("n3", &[]), n4], false, &[]);
    assert_eq!(plan.steps, vec![Step::Promote { host: "m2".into(), node: "n3".into() }]);
}

fn three_managers() -> Inventory {
    Inventory::from_text(
        Path::new("/inv/q.yml"),
        "cluster: {name: q}\nhosts:\n\
         - {name: a, address: 10.0.0.1, roles: [manager]}\n\
         - {name: b, address: 10.0.0.2, roles: [manager]}\n\
         - {name: c, address: 10.0.0.3, roles: [worker]}\n",
    )
    .unwrap()
}

#[test]
fn demotion_keeps_quorum_or_is_refused() {
    let inv = three_managers();
    let facts = [
        joined("10.0.0.1", "n1", Some("q"), true),
        joined("10.0.0.2", "n2", Some("q"), true),
        joined("10.0.0.3", "n3", Some("q"), true),
    ];
    // Three managers, all reachable: c may become a worker (2 of 2 remain).
    let nodes = [manager("n1", true), manager("n2", true), manager("n3", true)];
    let p = plan(&members(&inv, &facts), &nodes, false, &[]);
    assert_eq!(p.steps, vec![Step::Demote { host: "c".into(), node: "n3".into() }]);
    // With b unreachable, demoting c would leave 2 managers and 1 reachable: refused.
    let nodes = [manager("n1", true), manager("n2", false), manager("n3", true)];
    let p = plan(&members(&inv, &facts), &nodes, false, &[]);
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert!(p.warnings[0].contains("majority (2)"), "{:?}", p.warnings);
}

#[test]
fn absent_hosts_are_removed_managers_only_with_quorum() {
    let inv = three_managers();
    let facts = [joined("10.0.0.1", "n1", Some("q"), true), joined("10.0.0.2", "n2", Some("q"), true)];
    let members: Vec<Member> =
        inv.hosts[..2].iter().zip(&facts).map(|(host, facts)| Member { host, facts }).collect();
    let worker_gone = [Absent { host: "old".into(), node: Some("n9".into()), reachable: false }];
    let nodes = [manager("n1", true), manager("n2", true), node("n9", &[])];
    let p = plan(&members, &nodes, false, &worker_gone);
    assert_eq!(
        p.steps,
        vec![Step::Remove { host: "old".into(), node: "n9".into(), manager: false, reachable: false }]
    );
    assert!(p.warnings.is_empty(), "a node being removed is not a stranger: {:?}", p.warnings);

    // Removing a manager of two, the other unreachable: refused.
    let manager_gone = [Absent { host: "old".into(), node: Some("n9".into()), reachable: true }];
    let nodes = [manager("n1", true), manager("n2", false), manager("n9", true)];
    let p = plan(&members, &nodes, false, &manager_gone);
    assert!(p.steps.iter().all(|s| !matches!(s, Step::Remove { .. })));
    assert!(p.refused[0].1.contains("removing old"), "{:?}", p.refused);

    // A dead manager of three is removed: the two left are both reachable, a majority.
    let dead = [Absent { host: "old".into(), node: Some("n9".into()), reachable: false }];
    let nodes = [manager("n1", true), manager("n2", true), manager("n9", false)];
    let p = plan(&members, &nodes, false, &dead);
    assert_eq!(
        p.steps,
        vec![Step::Remove { host: "old".into(), node: "n9".into(), manager: true, reachable: false }],
        "{:?}",
        p.refused
    );
    // But removing a live manager while another is dead loses the majority: refused.
    let live = [Absent { host: "old".into(), node: Some("n9".into()), reachable: true }];
    let nodes = [manager("n1", true), manager("n2", false), manager("n9", true)];
    let p = plan(&members, &nodes, false, &live);
    assert!(p.refused[0].1.contains("1 reachable"), "{:?}", p.refused);

    // An absent host that is not in the swarm needs nothing.
    let p = plan(&members, &nodes[..2], false, &[Absent { host: "x".into(), node: None, reachable: true }]);
    assert!(p.steps.is_empty());
}

#[test]
fn the_driver_is_a_manager_that_stays_one() {
    let inv = Inventory::from_text(
        Path::new("/inv/d.yml"),
        "cluster: {name: d}\nhosts:\n\
         - {name: a, address: 10.0.0.1, roles: [worker]}\n\
         - {name: b, address: 10.0.0.2, roles: [manager]}\n\
         - {name: c, address: 10.0.0.3, roles: [manager]}\n",
    )
    .unwrap();
    let facts = [
        joined("10.0.0.1", "n1", Some("d"), true),
        joined("10.0.0.2", "n2", Some("d"), true),
        joined("10.0.0.3", "n3", Some("d"), true),
    ];
    let nodes = [manager("n1", true), manager("n2", true), manager("n3", true)];
    let p = plan(&members(&inv, &facts), &nodes, false, &[]);
    assert_eq!(p.leader.as_deref(), Some("b"), "a is being demoted: it must not drive");
    assert_eq!(p.steps, vec![Step::Demote { host: "a".into(), node: "n1".into() }]);
}

#[test]
fn manager_endpoints_bracket_ipv6() {
    assert_eq!(manager_endpoint("10.0.0.1"), "10.0.0.1:2377");
    assert_eq!(manager_endpoint("fd00::1"), "[fd00::1]:2377");
}

#[test]
fn the_heartbeat_changes_only_when_the_inventory_asks_for_another() {
    use std::time::Duration;
    let five = Some(Duration::from_secs(5));
    let two = Some(Duration::from_secs(2));
    assert_eq!(HeartbeatChange::of(None, five), None, "not asked: left as the swarm has it");
    assert_eq!(HeartbeatChange::of(two, two), None);
    let change = HeartbeatChange::of(two, five).unwrap();
    assert_eq!(change.describe(), "set the dispatcher heartbeat from 5s to 2s");
    assert_eq!(
        HeartbeatChange::of(two, None).unwrap().describe(),
        "set the dispatcher heartbeat from unset to 2s"
    );
}
