//! Inventory errors: each names the file and, when the problem has one, the line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl InventoryError {
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        InventoryError { file: file.to_path_buf(), line: None, column: None, message: message.into() }
    }

    pub fn at(file: &Path, location: &Location, message: impl Into<String>) -> Self {
        let known = location.line() > 0;
        InventoryError {
            file: file.to_path_buf(),
            line: known.then(|| location.line()),
            column: known.then(|| location.column()),
            message: message.into(),
        }
    }

    pub fn from_yaml(file: &Path, error: &serde_saphyr::Error) -> Self {
        // The parser's own text may carry a rendered source snippet; the first line is the
        // message, and the position is given separately.
        let text = error.to_string();
        let message = first_meaningful_line(&text);
        match error.location() {
            Some(location) => InventoryError::at(file, &location, message),
            None => InventoryError::file(file, message),
        }
    }
}

fn first_meaningful_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("invalid YAML");
    // "error: line 3 column 5: ..." -> keep only what follows the position prefix.
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let message = match line.split_once(": ") {
        Some((prefix, rest)) if prefix.starts_with("line ") => rest,
        _ => line,
    };
    plain_words(message)
}

/// The parser's words where a person would want others.
fn plain_words(message: &str) -> String {
    let message = message.split(", set DuplicateKeyPolicy").next().unwrap_or(message);
    let message = message.split(" at line ").next().unwrap_or(message);
    match message {
        "invalid u16" => "expected a whole number from 0 to 65535".into(),
        "invalid u32" | "invalid u64" => "expected a whole number, 0 or more".into(),
        m if m.starts_with("budget breached") => {
            "the YAML expands to far more nodes than an inventory has (aliases repeating aliases?); refused"
                .into()
        }
        m => m.to_string(),
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one inventory, so a user can fix them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryErrors(pub Vec<InventoryError>);

impl InventoryErrors {
    pub fn one(error: InventoryError) -> Self {
        InventoryErrors(vec![error])
    }
}

impl fmt::Display for InventoryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InventoryErrors {}
