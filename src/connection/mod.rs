//! SSH connections to the hosts: one per host, opened once (directly or through a bastion),
//! host key checked per policy, and reused for every command of the run.

mod auth;
pub mod known_hosts;
mod session;

pub use session::{Output, Session, connect, status_in_words};

#[cfg(test)]
mod tests;
