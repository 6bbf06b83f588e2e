//! Arbitrary bytes through the inventory parser, validation and resolution: every input must
//! end in `Ok` or `Err`, never a panic, a hang or unbounded memory.
#![no_main]

use std::path::Path;

use clusterup::inventory::Inventory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The binary refuses non-UTF-8 files before parsing, so only text reaches the parser;
    // lossy decoding still gives the parser text shaped by the rest of the input.
    let text = match std::str::from_utf8(data) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(data),
    };
    let _ = Inventory::from_text(Path::new("/fuzz/inventory.yml"), &text);
});
