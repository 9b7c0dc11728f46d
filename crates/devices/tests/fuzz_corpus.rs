//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same target
//! bodies libFuzzer runs (`fuzz/src/`), on stable Rust: every input the fuzzers kept must
//! still pass every invariant. Takes seconds; the fuzzing itself is in docs/fuzzing.md.

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_input_passes() {
    for &(name, run) in targets::TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: empty corpus", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            // Shown with the failure, if this input fails.
            eprintln!("{name}: {}", f.display());
            run(&data);
        }
    }
}
