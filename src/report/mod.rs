//! What the user sees and keeps: live progress, the closing summary (or JSON), the run log.

pub mod progress;
pub mod runlog;
pub mod summary;
pub mod timestamp;

pub use progress::Progress;
pub use runlog::RunLog;
pub use summary::RunReport;
