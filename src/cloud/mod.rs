//! Dynamic inventory sources: hosts read from a cloud's APIs. The offline parse
//! (`Inventory::from_text`) never calls a cloud; the commands that need hosts call [`resolve`],
//! which adds the cloud's servers to `inventory.hosts`.

pub mod http;
pub mod openstack;

use std::fmt;

use crate::inventory::Inventory;

/// A password, application credential secret or token: kept in memory only, never shown.
/// `Debug` prints `<redacted>`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why the cloud's hosts could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudError {
    /// Every problem found, each a sentence naming what to do.
    pub messages: Vec<String>,
    /// True when the inventory or the cloud configuration is what needs fixing (exit 3); false
    /// when the cloud could not be asked (unreachable, refused credentials: exit 1).
    pub invalid_inventory: bool,
}

impl CloudError {
    pub fn invalid(message: impl Into<String>) -> CloudError {
        CloudError { messages: vec![message.into()], invalid_inventory: true }
    }

    pub fn failed(message: impl Into<String>) -> CloudError {
        CloudError { messages: vec![message.into()], invalid_inventory: false }
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages.join("\n"))
    }
}

impl std::error::Error for CloudError {}

/// Adds the hosts of the inventory's cloud sources to `inventory.hosts` (nothing to do without
/// one); returns the warnings (servers skipped, missing security group rules).
pub async fn resolve(inventory: &mut Inventory) -> Result<Vec<String>, CloudError> {
    let Some(source) = inventory.openstack.clone().filter(|s| !s.resolved) else {
        return Ok(Vec::new());
    };
    let env = openstack::clouds_yaml::Env::from_process();
    let mut found = openstack::discover(&source, &env).await?;
    let change = found.security_group.take();
    let warnings = openstack::merge(inventory, found)?;
    if let Some(s) = inventory.openstack.as_mut() {
        s.resolved = true;
        s.security_group_change = change;
    }
    Ok(warnings)
}
