//! The steps of a run, in order: connect, facts, preflight, packages, swarm, images,
//! services (networks, secrets, stacks).

pub mod connect;
mod convergence;
pub mod facts;
pub mod images;
pub mod packages;
pub mod preflight;
pub mod services;
pub mod swarm;
