//! The helper protocol's fingerprint: a hash of this crate's sources. A caller starts a
//! `refine-sandbox-helper` beside it only when the helper answers with the same fingerprint,
//! i.e. was built from the same sources (see `launch.rs`).

use std::path::{Path, PathBuf};

fn collect(dir: &Path, into: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, into);
        } else {
            into.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut files = vec![];
    collect(Path::new("src"), &mut files);
    files.sort();
    // FNV-1a over each file's path and bytes: no dependency, and stable across toolchains.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for b in file.to_string_lossy().bytes().chain(bytes) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=REFINE_SANDBOX_FINGERPRINT={hash:016x}");
}
