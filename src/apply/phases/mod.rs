//! The steps of a run, in order: the cloud (a managed security group), connect, facts, preflight, packages (and the NFS test
//! mount), swarm, images, services (networks, secrets, stacks, and the wait for them).

pub mod cloud;
pub mod connect;
mod convergence;
pub mod facts;
pub mod images;
pub mod nfs_probe;
pub mod packages;
pub mod preflight;
pub mod services;
pub mod swarm;
