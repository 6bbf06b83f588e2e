//! The order engines restart in, for a new `daemon.json` or an engine upgrade: managers one at
//! a time with the leader last (each restart of a manager takes its raft vote away; the leader's
//! causes an election, so once), then workers in batches no larger than the disruption allowed.

use std::fmt;
use std::str::FromStr;

/// A host whose running engine will restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    pub host: String,
    /// A manager of the swarm now (its engine answers for the swarm).
    pub manager: bool,
    /// The swarm's raft leader now.
    pub leader: bool,
}

/// How many workers may be out of service at once (`--disruption`): a share of the swarm's
/// workers (`10%`) or a number of nodes (`2`); always at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruption {
    Percent(u32),
    Nodes(usize),
}

impl Default for Disruption {
    fn default() -> Self {
        Disruption::Percent(10)
    }
}

impl FromStr for Disruption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("`{s}` is not a disruption: a share of the workers (10%) or a number of nodes (2)");
        match s.strip_suffix('%') {
            Some(p) => match p.parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Disruption::Percent(p)),
                _ => Err(bad()),
            },
            None => match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Disruption::Nodes(n)),
                _ => Err(bad()),
            },
        }
    }
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disruption::Percent(p) => write!(f, "{p}%"),
            Disruption::Nodes(n) => write!(f, "{n}"),
        }
    }
}

impl Disruption {
    /// Workers restarted together, out of `workers` in the swarm: rounded down, at least one.
    pub fn batch_size(self, workers: usize) -> usize {
        let n = match self {
            Disruption::Percent(p) => workers * p as usize / 100,
            Disruption::Nodes(n) => n,
        };
        n.max(1)
    }
}

/// The restarts in order, as batches: each manager alone (in the order given, the leader
/// last), then the workers, `disruption.batch_size(workers_in_swarm)` at a time.
pub fn batches(restarts: &[Restart], workers_in_swarm: usize, disruption: Disruption) -> Vec<Vec<String>> {
    let mut managers: Vec<&Restart> = restarts.iter().filter(|r| r.manager).collect();
    managers.sort_by_key(|r| r.leader); // stable: the others keep their order
    let workers: Vec<String> = restarts.iter().filter(|r| !r.manager).map(|r| r.host.clone()).collect();
    let size = disruption.batch_size(workers_in_swarm.max(workers.len()));
    managers
        .into_iter()
        .map(|r| vec![r.host.clone()])
        .chain(workers.chunks(size).map(<[String]>::to_vec))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart(host: &str, manager: bool, leader: bool) -> Restart {
        Restart { host: host.into(), manager, leader }
    }

    #[test]
    fn managers_one_by_one_leader_last_then_workers_in_batches() {
        let hosts = [
            restart("w1", false, false),
            restart("m1", true, true),
            restart("w2", false, false),
            restart("m2", true, false),
            restart("w3", false, false),
            restart("m3", true, false),
        ];
        assert_eq!(
            batches(&hosts, 3, Disruption::Nodes(2)),
            vec![vec!["m2"], vec!["m3"], vec!["m1"], vec!["w1", "w2"], vec!["w3"]]
        );
        // 10% of 3 workers rounds down to none: still one at a time.
        assert_eq!(batches(&hosts, 3, Disruption::default()).len(), 6);
    }

    #[test]
    fn the_share_is_of_the_swarms_workers_rounded_down_and_never_zero() {
        assert_eq!(Disruption::Percent(10).batch_size(17), 1);
        assert_eq!(Disruption::Percent(10).batch_size(20), 2);
        assert_eq!(Disruption::Percent(25).batch_size(10), 2);
        assert_eq!(Disruption::Percent(100).batch_size(4), 4);
        assert_eq!(Disruption::Nodes(3).batch_size(0), 3);
        // Only 2 of 20 workers restart, but the share is of the 20: both at once.
        let two = [restart("w1", false, false), restart("w2", false, false)];
        assert_eq!(batches(&two, 20, Disruption::Percent(10)), vec![vec!["w1", "w2"]]);
    }

    #[test]
    fn disruption_reads_a_share_or_a_count() {
        assert_eq!("10%".parse(), Ok(Disruption::Percent(10)));
        assert_eq!("2".parse(), Ok(Disruption::Nodes(2)));
        for bad in ["0", "0%", "101%", "x", "-1", "%"] {
            assert!(bad.parse::<Disruption>().is_err(), "{bad}");
        }
        assert_eq!(Disruption::Percent(10).to_string(), "10%");
    }
}
