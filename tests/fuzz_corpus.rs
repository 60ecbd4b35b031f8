//! The fuzz targets' corpus, replayed through the fuzzers' own invariants: no panic; a valid
//! AdmissionReview with the request's uid for every accepted request; every patch applies; the
//! patched Pod is not patched again. The corpus (tests/fuzz/corpus/) was minimised with libFuzzer's
//! `-set_cover_merge=1`; an input that ever crashed a target is committed there and replayed here.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use sidecar_injector::Config;

#[path = "fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the {target} corpus is missing ({} inputs)", inputs.len());
    inputs
}

#[test]
fn review_bytes_corpus_keeps_the_invariants() {
    let config = Config::builtin();
    let mut accepted = 0;
    for (name, bytes) in corpus("review_bytes") {
        let outcome = std::panic::catch_unwind(|| fuzz::check(&bytes, &config));
        assert!(outcome.is_ok(), "corpus input review_bytes/{name} breaks an invariant");
        accepted += usize::from(sidecar_injector::review(&bytes, &config).is_ok());
    }
    // The corpus must reach past the parser, or the invariants after it were never exercised.
    assert!(accepted >= 10, "only {accepted} corpus inputs were accepted reviews");
}

#[test]
fn review_structured_corpus_keeps_the_invariants() {
    let mut reviewed = 0;
    for (name, bytes) in corpus("review_structured") {
        let Ok(case) = fuzz::shapes::Case::arbitrary_take_rest(Unstructured::new(&bytes)) else { continue };
        let outcome = std::panic::catch_unwind(|| {
            if let Some((config, review)) = case.review() {
                fuzz::check(&review, &config);
                true
            } else {
                false
            }
        });
        match outcome {
            Ok(was_reviewed) => reviewed += usize::from(was_reviewed),
            Err(_) => panic!("corpus input review_structured/{name} breaks an invariant"),
        }
    }
    assert!(reviewed >= 10, "only {reviewed} corpus inputs made a valid configuration");
}
