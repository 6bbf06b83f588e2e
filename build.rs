//! Embeds every file under `templates/` (the built-in stack templates) in the binary.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut files = Vec::new();
    let mut dirs: Vec<_> =
        std::fs::read_dir(&root).expect("templates/").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("template folder").flatten().map(|e| e.path()).collect();
        entries.sort();
        for file in entries.iter().filter(|f| f.is_file()) {
            let relative = file.strip_prefix(&root).expect("under templates/").to_string_lossy().into_owned();
            files.push((relative, file.display().to_string()));
        }
    }
    let mut code = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for (relative, absolute) in files {
        let _ = writeln!(code, "    ({relative:?}, include_str!({absolute:?})),");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(out, code).expect("write templates.rs");
}
