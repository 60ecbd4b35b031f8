//! Arbitrary bytes into the pure function, as a client could send them: no panic, and every
//! accepted review answered by the rules in `check`. Seeded with real reviews (see the README).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sidecar_injector::Config;

static CONFIG: LazyLock<Config> = LazyLock::new(Config::builtin);

fuzz_target!(|data: &[u8]| sidecar_injector_fuzz::check_bytes(data, &CONFIG));
