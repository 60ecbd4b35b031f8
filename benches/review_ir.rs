//! Runs one case of `benches/cases/` a given number of times and nothing else, for
//! `benches/review_ir.sh`, which counts the instructions under callgrind: a deterministic count of
//! reviews, where criterion's profiling mode runs as many as fit in its time.
//!
//! `cargo bench --bench review_ir -- CASE COUNT`, or `-- --list` for the cases' names. With
//! `--read-only`, each case's body is only read by serde_json into nothing (`read_only`): the
//! floor any review of that body pays, the baseline the review's count is given against.

use std::hint::black_box;

mod cases;

// The allocator the binaries ship with, as in `review.rs`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let cases = cases::cases();
    if let [list] = &args[..]
        && list == "--list"
    {
        cases.iter().for_each(|c| println!("{}", c.name));
        return;
    }
    let (read_only, args) = match &args[..] {
        [flag, rest @ ..] if flag == "--read-only" => (true, rest),
        rest => (false, rest),
    };
    let [name, count] = args else { usage() };
    let Ok(count) = count.parse::<usize>() else { usage() };
    let Some(case) = cases.iter().find(|c| c.name == name) else {
        eprintln!("no case named {name:?}");
        std::process::exit(2);
    };
    for _ in 0..count {
        if read_only {
            read_only_body(black_box(&case.body));
        } else {
            black_box(
                sidecar_injector::review(black_box(&case.body), &case.config).expect("checked by cases()"),
            );
        }
    }
}

/// The body read and checked by serde_json, into nothing: what any review of it costs at least.
#[inline(never)]
fn read_only_body(body: &[u8]) {
    black_box(serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("the bench's bodies are JSON"));
}

fn usage() -> ! {
    eprintln!("usage: review_ir --list | review_ir [--read-only] CASE COUNT");
    std::process::exit(2);
}
