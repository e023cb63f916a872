//! Every test file is compiled into a test binary. The test packages declare their test
//! binaries by hand (`autotests = false`), and a file that no `mod name;` reaches is never
//! compiled, let alone run, without any warning. This test walks the module tree of each
//! test binary (and of the support code) from its root file and fails naming every `.rs`
//! file the walk does not reach.
//!
//! It understands `mod name;` (with or without `pub`) resolved the way rustc does
//! (`name.rs` or `name/mod.rs` beside a root or `mod.rs` file, `stem/name.rs` beside any
//! other file); a `#[path]` attribute is not followed, so do not use one here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The folders whose `.rs` files must all be reached, each with its root file(s):
/// folder relative to the workspace root, root files relative to the folder.
const TREES: [(&str, &[&str]); 6] = [
    ("tests/integration", &["main.rs"]),
    ("tests/support", &["lib.rs"]),
    ("tests/bench", &["main.rs"]),
    ("tests/sandbox/tests", &["main.rs"]),
    ("tests/sandbox/src", &["lib.rs", "main.rs"]),
    ("cli/tests", &["main.rs"]),
];

/// The `offramp-tests` package folder: every `.rs` file in it must lie in one of [`TREES`].
const TESTS_PACKAGE: &str = "tests";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.insert(path);
        }
    }
    files
}

/// The names `file` declares as file modules: `mod name;`, `pub mod name;`, `pub(crate) mod name;`.
fn declared_modules(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub(crate) ").or_else(|| line.strip_prefix("pub ")).unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?.trim();
            name.chars().all(|c| c.is_alphanumeric() || c == '_').then(|| name.to_string())
        })
        .collect()
}

/// Where the modules that `file` declares live: beside it for a root or `mod.rs` file,
/// in the folder named after it otherwise.
fn child_folder(file: &Path, roots: &[PathBuf]) -> PathBuf {
    let folder = file.parent().unwrap().to_path_buf();
    if roots.iter().any(|root| root == file) || file.file_name().is_some_and(|name| name == "mod.rs") {
        folder
    } else {
        folder.join(file.file_stem().unwrap())
    }
}

/// The `.rs` files of `dir` that no module declaration reaches from `roots`.
fn unreached_files(dir: &Path, roots: &[&str]) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = roots.iter().map(|root| dir.join(root)).collect();
    let mut reached: BTreeSet<PathBuf> = roots.iter().cloned().collect();
    let mut pending = roots.clone();
    while let Some(file) = pending.pop() {
        let folder = child_folder(&file, &roots);
        for name in declared_modules(&file) {
            let candidates = [folder.join(format!("{name}.rs")), folder.join(&name).join("mod.rs")];
            if let Some(module) = candidates.into_iter().find(|path| path.is_file())
                && reached.insert(module.clone())
            {
                pending.push(module);
            }
        }
    }
    rust_files(dir).into_iter().filter(|file| !reached.contains(file)).collect()
}

#[test]
fn every_test_file_is_declared_as_a_module_of_a_test_binary() {
    let root = workspace();
    let mut unreached = Vec::new();
    for (dir, roots) in TREES {
        unreached.extend(unreached_files(&root.join(dir), roots));
    }
    let trees: Vec<PathBuf> = TREES.iter().map(|(dir, _)| root.join(dir)).collect();
    let outside = rust_files(&root.join(TESTS_PACKAGE))
        .into_iter()
        .filter(|file| !trees.iter().any(|tree| file.starts_with(tree)))
        .collect::<Vec<_>>();
    let name = |file: &PathBuf| file.strip_prefix(&root).unwrap_or(file).display().to_string();
    assert!(
        unreached.is_empty(),
        "these files are never compiled: declare each with `mod name;` in its folder's main.rs \
         (or in the module that owns it): {:?}",
        unreached.iter().map(name).collect::<Vec<_>>()
    );
    assert!(
        outside.is_empty(),
        "these files are outside every test tree of {TESTS_PACKAGE}/ and never compiled; \
         move them under integration/ (and declare them in integration/main.rs): {:?}",
        outside.iter().map(name).collect::<Vec<_>>()
    );
}

#[test]
fn the_walk_finds_files_no_declaration_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("main.rs", "mod declared;\npub mod folder;\n// mod commented;\nmod inline {}\n");
    write("declared.rs", "mod nested;\n");
    write("declared/nested.rs", "");
    write("declared/orphan.rs", "");
    write("folder/mod.rs", "mod inner;\n");
    write("folder/inner.rs", "");
    write("commented.rs", "");
    write("stray.rs", "");

    let unreached = unreached_files(dir.path(), &["main.rs"]);

    let names: Vec<_> =
        unreached.iter().map(|file| file.strip_prefix(dir.path()).unwrap().display().to_string()).collect();
    assert_eq!(names, ["commented.rs", "declared/orphan.rs", "stray.rs"]);
}
