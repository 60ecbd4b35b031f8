//! Arbitrary bytes into the pure function, as a client could send them: no panic, and every
//! accepted review answered by the rules in `check`. Seeded with real reviews (see the README).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sidecar_injector::Config;
use sidecar_injector::engine::http_answer as http;

static CONFIG: LazyLock<Config> = LazyLock::new(Config::builtin);

fuzz_target!(|data: &[u8]| {
    sidecar_injector_fuzz::check(data, &CONFIG);
    // The adapters' entry point: a status and a body for every input.
    let request = http::HttpRequest { method: "POST", content_type: Some("application/json"), body: Some(data) };
    let answer = http::answer(request, &CONFIG);
    assert!(matches!(answer.status, 200 | 400 | 413), "status {}", answer.status);
    // The same bytes as a configuration file: an error with a message, never a panic.
    if let Err(error) = Config::from_slice(data) {
        assert!(!error.to_string().is_empty());
    }
});
