//! Planning: from the inventory and the facts (plus the swarm's node list) to the list of
//! changes, computed without touching any host. `plan` prints it; `init` carries it out.

pub mod backup;
pub mod converge;
pub mod debversion;
pub mod diff;
pub mod files;
pub mod hosts;
pub mod kernel;
pub mod packages;
pub mod roll;
pub mod services;
pub mod swarm;

use serde::Serialize;

/// The target of changes to cluster-wide objects (networks, secrets, stacks).
pub const CLUSTER: &str = "cluster";

/// One change, planned or made, attributed to a host or to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The host the change is made on, or `cluster` for cluster-wide objects.
    pub target: String,
    /// What changes (`docker`, `swarm`, `labels`, ...).
    pub area: String,
    pub what: String,
}

impl Change {
    pub fn new(target: &str, area: &str, what: impl Into<String>) -> Change {
        Change { target: target.to_string(), area: area.to_string(), what: what.into() }
    }
}
