pub mod runlog;
pub mod timestamp;
pub use runlog::RunLog;
