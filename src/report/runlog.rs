//! The run log: every remote command of a run, its exit status and time, appended to a file.
//! Commands are logged in their display form, which never holds secret values.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::timestamp;

pub struct RunLog {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
}

impl RunLog {
    /// Opens (appending) the log at `path`; a log that cannot be opened is reported once and
    /// the run goes on without it.
    pub fn open(path: &Path, command: &str) -> RunLog {
        let file = path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| OpenOptions::new().create(true).append(true).open(path));
        let log = match file {
            Ok(file) => RunLog { path: Some(path.to_path_buf()), file: Mutex::new(Some(file)) },
            Err(e) => {
                eprintln!("warning: cannot open the log file {}: {e}", path.display());
                RunLog::disabled()
            }
        };
        log.line("-", &format!("=== clusterup {command} (pid {})", std::process::id()));
        log
    }

    pub fn disabled() -> RunLog {
        RunLog { path: None, file: Mutex::new(None) }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn line(&self, host: &str, text: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = guard.as_mut() {
            let _ = writeln!(file, "{} [{host}] {text}", timestamp::now_rfc3339_millis());
        }
    }

    pub fn block(&self, host: &str, label: &str, text: &str) {
        for line in text.lines().take(40) {
            self.line(host, &format!("  {label}: {line}"));
        }
    }
}
