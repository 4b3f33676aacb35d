//! docs/ARCHITECTURE.md's code map stays true: every path it names exists, and every source
//! file of the four crates is named, by itself or through its folder (`…/sender/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CRATES: [&str; 4] = [
    "realmq-proto",
    "realmq-common",
    "realmq-server",
    "realmq-client",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the repository root")
        .to_path_buf()
}

/// Every `backticked` token that looks like a repository path.
fn named_paths(doc: &str) -> BTreeSet<String> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| CRATES.iter().any(|c| t.starts_with(&format!("{c}/"))))
        .map(str::to_string)
        .collect()
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_code_map_names_real_files_and_every_source_file() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("the doc");
    let named = named_paths(&doc);
    assert!(named.len() > 20, "too few paths in the code map: {named:?}");
    for path in &named {
        assert!(
            root.join(path).exists(),
            "docs/ARCHITECTURE.md names `{path}`, which does not exist"
        );
    }
    let mut files = Vec::new();
    for krate in CRATES {
        source_files(&root.join(krate).join("src"), &mut files);
    }
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let covered = named
            .iter()
            .any(|n| rel == *n || (n.ends_with('/') && rel.starts_with(n.as_str())));
        assert!(
            covered,
            "docs/ARCHITECTURE.md's code map does not mention `{rel}`"
        );
    }
}
