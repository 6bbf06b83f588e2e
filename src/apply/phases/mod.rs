//! The steps of a run, in order: connect, facts, preflight, packages, swarm.

pub mod connect;
pub mod facts;
pub mod packages;
pub mod preflight;
pub mod swarm;
