//! The command line: its arguments (`args`), and what the commands that need no host do.

mod args;
pub mod backup;
pub mod load;
pub mod new;
pub mod show;

pub use args::*;

/// Exit statuses, as the README documents them.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_PENDING: u8 = 2;
pub const EXIT_INVALID: u8 = 3;
