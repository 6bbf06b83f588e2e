//! clusterup: from an inventory of hosts to a Docker Swarm cluster, over SSH.
//!
//! inventory (what the user wants) -> connection (SSH to each host) -> facts (what each host
//! is) -> plan (the difference) -> apply (the phases that remove it). `commands` builds what
//! runs on a host, `roles` holds it, `templates` renders stacks, `report` is what the user sees.

pub mod apply;
pub mod cloud;
pub mod commands;
pub mod connection;
pub mod engine;
pub mod facts;
pub mod images;
pub mod inventory;
pub mod plan;
pub mod report;
pub mod roles;
pub mod starter;
pub mod status;
pub mod templates;
