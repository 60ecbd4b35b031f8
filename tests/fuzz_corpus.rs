//! The fuzz targets' corpus, replayed through the fuzzers' own invariants (tests/fuzz/src/lib.rs):
//! no panic; a valid AdmissionReview with the request's uid for every accepted request; every
//! patch applies, keeps every field and adds no name twice; the patched Pod is not patched again;
//! the patched Pod at no lower Pod Security level; and for the byte target, the HTTP edge's
//! status and the configuration loader's errors. The corpus (tests/fuzz/corpus/) was minimised with libFuzzer's
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
    let inputs = corpus("review_bytes");
    let mut accepted = 0;
    let mut patched = 0;
    for (name, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| fuzz::check_bytes(bytes, &config));
        assert!(outcome.is_ok(), "corpus input review_bytes/{name} breaks an invariant");
        if let Ok(reviewed) = sidecar_injector::review(bytes, &config) {
            accepted += 1;
            patched += usize::from(reviewed.patch.is_some());
        }
    }
    // The corpus must reach past the parser, and past the patch, or the invariants after them
    // were never exercised.
    println!("review_bytes: {} inputs, {accepted} accepted, {patched} patched", inputs.len());
    // Floors a little under the committed corpus's counts (158 and 107): most of its inputs are
    // bytes the parser refuses, which is what this target is for.
    assert!(accepted >= 150, "only {accepted} of {} inputs were accepted reviews", inputs.len());
    assert!(patched >= 100, "only {patched} inputs were patched");
}

/// How a structure-aware target makes a review of its input: the configuration and the body.
type MakeReview<C> = fn(&C) -> Option<(Config, Vec<u8>)>;

/// A structure-aware target's corpus, each input decoded as `C` and made a review by `review`,
/// through the invariants: how many had a valid configuration, and how many were patched.
fn structured<C: for<'a> Arbitrary<'a> + std::panic::RefUnwindSafe>(
    target: &str,
    review: MakeReview<C>,
) -> (usize, usize) {
    let inputs = corpus(target);
    let mut reviewed = 0;
    let mut patched = 0;
    for (name, bytes) in &inputs {
        // `arbitrary_take_rest` reads any bytes; one that does not is a corpus file to look at.
        let case = C::arbitrary_take_rest(Unstructured::new(bytes))
            .unwrap_or_else(|e| panic!("corpus input {target}/{name} does not decode: {e}"));
        let outcome = std::panic::catch_unwind(|| {
            review(&case).map(|(config, review)| {
                fuzz::check(&review, &config);
                sidecar_injector::review(&review, &config).is_ok_and(|r| r.patch.is_some())
            })
        });
        match outcome {
            Ok(Some(was_patched)) => {
                reviewed += 1;
                patched += usize::from(was_patched);
            }
            Ok(None) => {}
            Err(_) => panic!("corpus input {target}/{name} breaks an invariant"),
        }
    }
    println!("{target}: {} inputs, {reviewed} with a valid configuration, {patched} patched", inputs.len());
    (reviewed, patched)
}

#[test]
fn review_structured_corpus_keeps_the_invariants() {
    let (reviewed, patched) = structured("review_structured", fuzz::shapes::Case::review);
    // Floors a little under the committed corpus's counts (696 and 324).
    assert!(reviewed >= 650, "only {reviewed} inputs made a valid configuration");
    assert!(patched >= 300, "only {patched} inputs were patched");
}

#[test]
fn pod_security_corpus_keeps_the_invariants() {
    let (reviewed, patched) = structured("pod_security", fuzz::security::Case::review);
    // Floors a little under the committed corpus's counts (842 and 622).
    assert!(reviewed >= 800, "only {reviewed} inputs made a valid configuration");
    assert!(patched >= 600, "only {patched} inputs were patched");
}
