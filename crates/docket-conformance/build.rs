//! Writes `driver_test_suite!` from the behaviours themselves: every `pub async fn` at the
//! start of a line in `src/suite/*.rs` is a behaviour, so writing one is all it takes to run it
//! on every backend (no list to keep, none to forget).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new("src/suite");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("src/suite")
        .map(|e| e.expect("src/suite entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    let mut names = Vec::new();
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let text = std::fs::read_to_string(file).expect("suite file");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(!name.is_empty(), "{}: {line}", file.display());
                names.push(name);
            }
        }
    }
    assert!(!names.is_empty(), "no behaviours found in src/suite");
    let mut tests = String::new();
    for name in &names {
        writeln!(
            tests,
            "        #[tokio::test(flavor = \"multi_thread\", worker_threads = 2)]\n        \
             async fn {name}() {{\n            let db = $make.await;\n            \
             $crate::{name}(&db).await;\n        }}"
        )
        .expect("write");
    }
    let out = format!(
        "/// Expands to one `#[tokio::test]` per conformance behaviour ({count} of them: every\n\
         /// public async function of the suite), each running the behaviour on a fresh database\n\
         /// made by `$make` (an expression evaluating to a future of a [`harness::TestDb`], e.g.\n\
         /// `docket_conformance::harness::postgres()`).\n\
         ///\n\
         /// The crate invoking it needs `tokio` (with the `macros` and `rt-multi-thread`\n\
         /// features) as a dependency.\n\
         #[macro_export]\n\
         macro_rules! driver_test_suite {{\n    ($make:expr) => {{\n{tests}    }};\n}}\n",
        count = names.len()
    );
    let path = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("suite.rs");
    std::fs::write(path, out).expect("write suite.rs");
}
