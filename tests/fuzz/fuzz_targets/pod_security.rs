//! Structure-aware, around Pod Security: a Pod and a profile varying every field a check reads,
//! reviewed and checked, the level of the injected Pod included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_injector_fuzz::{check, security::Case};

fuzz_target!(|case: Case| {
    if let Some((config, review)) = case.review() {
        check(&review, &config);
    }
});
